// CPU linear attention, causal float on the build's vectors: banded, register-blocked chunk products.
//
// Where the build has vector instructions (simd::kLanes > 1), a causal float op runs the same
// chunk recurrences through small_gemm.h in blocks of kRB rows, skipping what the causal mask
// zeroes instead of computing and discarding it: the masked scores A = Qc Kc^T and Bm = Gc V1c^T
// are formed only in the columns up to each row block's last row (the entries above the diagonal
// inside that block are then zeroed), a product with a masked matrix stops at (A V1c, Bm Kc) or
// starts from (A^T Gc, Bm^T Qc) the row block's diagonal. That is a little over half of the
// intra-chunk multiply-adds of full C x C products. The right-hand matrices are row-major: K^T and
// V1^T are packed per chunk, the dphiq sweep carries S'^T [(d+1) x m] instead of S', the reverse
// sweep R and its transpose. Every output element is one fixed fma chain (small_gemm.h): the
// results depend neither on the thread count nor on the other rows of a block.
#include <algorithm>

#include "linear_attention_impl.h"
#include "small_gemm.h"

namespace wersa::cpu::linattn {

namespace {

constexpr int64_t kRB = small_gemm_detail::kRows;

enum class Band { Full, Lower, Upper };

// out[r, :N] = (or += with acc) sum over k of x(r, k) W[k, :N] for the rows r of [0, n), k in
// [0, K) (Full), below the end of r's row block (Lower), from the start of r's block (Upper).
template <class X>
void prod(int64_t n, int64_t K, int64_t N, Band band, X x, const float* W, int64_t ldw, float* out,
          int64_t ldo, bool acc) {
  auto id = [](auto v) { return v; };
  for (int64_t r = 0; r < n; r += kRB) {
    const int64_t rb = std::min(kRB, n - r);
    const int64_t k0 = band == Band::Upper ? r : 0;
    const int64_t k1 = band == Band::Lower ? std::min(K, r + rb) : K;
    const X xs = x.from(k0);
    const float* Ws = W + k0 * ldw;
    if (rb == kRB) {
      small_gemm_rows_vec<kRB>(r, k1 - k0, N, xs, Ws, ldw, 1.f, out, ldo, acc, id);
    } else {
      for (int64_t i = r; i < r + rb; ++i)
        small_gemm_rows_vec<1>(i, k1 - k0, N, xs, Ws, ldw, 1.f, out, ldo, acc, id);
    }
  }
}

// Masked scores out[i, j] = sum over k < K of x(i, k) W[k, j] for j <= i, over the rows of [0, n):
// each row block computes the columns up to its last row, then zeroes its entries with j > i.
template <class X>
void scores(int64_t n, int64_t K, X x, const float* W, int64_t ldw, float* out, int64_t ldo) {
  auto id = [](auto v) { return v; };
  for (int64_t r = 0; r < n; r += kRB) {
    const int64_t rb = std::min(kRB, n - r);
    if (rb == kRB) {
      small_gemm_rows_vec<kRB>(r, K, r + rb, x, W, ldw, 1.f, out, ldo, false, id);
    } else {
      for (int64_t i = r; i < r + rb; ++i)
        small_gemm_rows_vec<1>(i, K, r + rb, x, W, ldw, 1.f, out, ldo, false, id);
    }
    for (int64_t i = r; i < r + rb; ++i) std::fill(out + i * ldo + i + 1, out + i * ldo + r + rb, 0.f);
  }
}

// x(r, k) = M[r * ld + k] (a row-major matrix) and = M[k * ld + r] (its transpose).
struct Rows {
  const float* M;
  int64_t ld;
  float operator()(int64_t r, int64_t k) const { return M[r * ld + k]; }
  Rows from(int64_t k0) const { return {M + k0, ld}; }  // x(r, k + k0)
};
struct Cols {
  const float* M;
  int64_t ld;
  float operator()(int64_t r, int64_t k) const { return M[k * ld + r]; }
  Cols from(int64_t k0) const { return {M + k0 * ld, ld}; }
};

// Mt [c x ld] = M^T for M [r x c] with row stride ms (r <= ld).
void transpose(int64_t r, int64_t c, const float* M, int64_t ms, float* Mt, int64_t ld) {
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) Mt[j * ld + i] = M[i * ms + j];
}

// V1^T [(d+1) x C] of positions [c0, c0+n): v^T, then a row of ones.
void load_v1t(const Geo& G, const float* v, int64_t c0, int64_t n, float* V1t) {
  transpose(n, G.d, v + c0 * G.vs(), G.vs(), V1t, G.C);
  std::fill(V1t + G.d * G.C, V1t + G.d * G.C + n, 1.f);
}

// Per-thread scratch: forward V1, Out [C x (d+1)], K^T [m x C], S' [m x (d+1)], A [C x C];
// backward the larger of the dphiq sweep (Gc, V1^T, S'^T, Bm) and the reverse sweep (Gc, V1^T,
// K^T, R, R^T, Bm, Am).
}  // namespace

int64_t vec_fwd_scratch(const Geo& G) {
  const int64_t dp = G.d + 1;
  return 2 * G.C * dp + G.m * G.C + G.m * dp + G.C * G.C;
}
int64_t vec_bwd_scratch(const Geo& G) {
  const int64_t dp = G.d + 1, C = G.C;
  return 2 * C * dp + G.m * C + 2 * G.m * dp + 2 * C * C;
}

void vec_fwd_head(const Geo& G, const LinearAttnFwd& a, int64_t b, int64_t h, float* work) {
  const HeadRows<float> R(G, a.phiq.ptr<float>(), a.phik.ptr<float>(), a.v.ptr<float>(), b, h);
  float* o = a.o.ptr<float>() + (b * G.T * G.H + h) * G.d;
  float* den = a.den.ptr<float>() + b * G.T * G.H + h;
  const float eps = float(a.eps);
  const int64_t m = G.m, dp = G.d + 1, C = G.C;
  float* V1 = work;
  float* Out = V1 + C * dp;
  float* Kt = Out + C * dp;
  float* S = Kt + m * C;
  float* A = S + m * dp;
  load_state(G, a, b, h, S);
  for (int64_t c0 = 0; c0 < G.T; c0 += C) {
    const int64_t n = std::min(C, G.T - c0);
    const Rows Qc{R.q + c0 * G.qs(), G.qs()};
    load_v1(G, R.v, c0, n, V1);
    transpose(n, m, R.k + c0 * G.ks(), G.ks(), Kt, C);
    scores(n, m, Qc, Kt, C, A, C);                                    // A = Qc Kc^T, masked
    prod(n, n, dp, Band::Lower, Rows{A, C}, V1, dp, Out, dp, false);  // Out = A V1c
    prod(n, m, dp, Band::Full, Qc, S, dp, Out, dp, true);             //   + Qc S'
    for (int64_t i = 0; i < n; ++i)
      finish_row(G, Out + i * dp, eps, o + (c0 + i) * G.os(), den + (c0 + i) * G.H);
    prod(m, n, dp, Band::Full, Rows{Kt, C}, V1, dp, S, dp, true);  // S' += Kc^T V1c
  }
}

void vec_bwd_dq_head(const Geo& G, const LinearAttnBwd& a, int64_t b, int64_t h, float* work) {
  const HeadRows<float> R(G, a.phiq.ptr<float>(), a.phik.ptr<float>(), a.v.ptr<float>(), b, h);
  const HeadOut<float> Y(G, a, b, h);
  float* dq = a.dphiq.ptr<float>() + (b * G.T * G.H + h) * G.m;
  const int64_t m = G.m, dp = G.d + 1, C = G.C;
  float* Gc = work;
  float* V1t = Gc + C * dp;
  float* St = V1t + dp * C;
  float* Bm = St + dp * m;
  std::fill(St, St + dp * m, 0.f);
  for (int64_t c0 = 0; c0 < G.T; c0 += C) {
    const int64_t n = std::min(C, G.T - c0);
    const float* Kc = R.k + c0 * G.ks();
    float* dQc = dq + c0 * G.qs();
    load_g(G, Y, c0, n, Gc);
    load_v1t(G, R.v, c0, n, V1t);
    scores(n, dp, Rows{Gc, dp}, V1t, C, Bm, C);                               // Bm = Gc V1c^T, masked
    prod(n, n, m, Band::Lower, Rows{Bm, C}, Kc, G.ks(), dQc, G.qs(), false);  // dQc = Bm Kc
    prod(n, dp, m, Band::Full, Rows{Gc, dp}, St, m, dQc, G.qs(), true);       //    + Gc S'^T
    prod(dp, n, m, Band::Full, Rows{V1t, C}, Kc, G.ks(), St, m, true);        // S'^T += V1c^T Kc
  }
}

void vec_bwd_dkv_group(const Geo& G, const LinearAttnBwd& a, int64_t b, int64_t gk, float* work) {
  const int64_t m = G.m, d = G.d, dp = d + 1, C = G.C;
  float* dk = a.dphik.ptr<float>() + (b * G.T * G.Hkv + gk) * m;
  float* dv = a.dv.ptr<float>() + (b * G.T * G.Hkv + gk) * d;
  float* Gc = work;
  float* V1t = Gc + C * dp;
  float* Kt = V1t + dp * C;
  float* Rs = Kt + m * C;   // R [m x (d+1)]
  float* Rt = Rs + m * dp;  // R^T [(d+1) x m]
  float* Bm = Rt + dp * m;
  float* Am = Bm + C * C;
  const int64_t nch = (G.T + C - 1) / C;
  for (int64_t j = 0; j < G.rep(); ++j) {
    const int64_t h = gk * G.rep() + j;
    const HeadRows<float> R(G, a.phiq.ptr<float>(), a.phik.ptr<float>(), a.v.ptr<float>(), b, h);
    const HeadOut<float> Y(G, a, b, h);
    std::fill(Rs, Rs + m * dp, 0.f);
    std::fill(Rt, Rt + dp * m, 0.f);
    // Chunks from the last to the first, R holding the sum over later chunks.
    for (int64_t c = nch - 1; c >= 0; --c) {
      const int64_t c0 = c * C, n = std::min(C, G.T - c0);
      const float* Qp = R.q + c0 * G.qs();
      const Rows Qc{Qp, G.qs()};
      float* dKc = dk + c0 * G.ks();
      float* dVc = dv + c0 * G.vs();
      load_g(G, Y, c0, n, Gc);
      load_v1t(G, R.v, c0, n, V1t);
      transpose(n, m, R.k + c0 * G.ks(), G.ks(), Kt, C);
      scores(n, dp, Rows{Gc, dp}, V1t, C, Bm, C);  // Bm = Gc V1c^T, masked
      // The group's first head writes dKc, dVc (every row of a chunk gets its band's products,
      // the last row at least its diagonal entry), the others add.
      const bool add = j > 0;
      prod(n, n, m, Band::Upper, Cols{Bm, C}, Qp, G.qs(), dKc, G.ks(), add);  // dKc (+)= Bm^T Qc
      scores(n, m, Qc, Kt, C, Am, C);                                         // Am = Qc Kc^T, masked
      prod(n, n, d, Band::Upper, Cols{Am, C}, Gc, dp, dVc, G.vs(), add);      // dVc (+)= Am^T Gc[:, :d]
      // The later chunks, through R.
      prod(n, dp, m, Band::Full, Cols{V1t, C}, Rt, m, dKc, G.ks(), true);  // dKc += V1c R^T
      prod(n, m, d, Band::Full, Rows{R.k + c0 * G.ks(), G.ks()}, Rs, dp, dVc, G.vs(), true);  // dVc += Kc R
      if (c > 0) {  // R gains this chunk for the earlier ones
        prod(m, n, dp, Band::Full, Cols{Qp, G.qs()}, Gc, dp, Rs, dp, true);  // R += Qc^T Gc
        transpose(m, dp, Rs, dp, Rt, m);
      }
    }
  }
}

}  // namespace wersa::cpu::linattn

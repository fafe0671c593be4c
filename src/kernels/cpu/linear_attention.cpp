// CPU chunked linear attention (see include/wersa/ops/linear_attention.h for the math).
// Layout: phiq [B,T,H,m], phik [B,T,Hkv,m], v [B,T,Hkv,d]: a row of one head is contiguous, rows of
// successive positions are H*m (or Hkv*m, Hkv*d) apart. Every inner loop runs over a contiguous
// row (m, d+1 or a chunk's positions) as an axpy, so it vectorises without fast-math. Zero
// features (ReLU) are skipped, which changes no result. States are kept in T (fp32 for float).
// Scratch: one slice per thread holding the chunk buffers of one (b, head) task (fwd_scratch,
// bwd_scratch elements), carved by the task.
// With `advance`, the forward continues from (S0, z0) and then advances them: one position of one
// sequence through linear_attention_step (update, then query), longer chunks through the chunked
// kernel followed by linear_attention_state with accumulate.
#include "wersa/ops/linear_attention.h"

#include <algorithm>

#include "kernels.h"
#include "reduce.h"

namespace wersa::cpu {

namespace {

// Below this many multiply-adds an op runs on one thread: a parallel region costs more.
constexpr int64_t kParallelWork = int64_t(1) << 16;

struct Geo {
  int64_t B, T, H, Hkv, m, d, C;
  int64_t rep() const { return H / Hkv; }
  int64_t work() const { return B * H * T * (C + m) * (d + 1); }
  // Row strides between successive positions.
  int64_t qs() const { return H * m; }
  int64_t ks() const { return Hkv * m; }
  int64_t vs() const { return Hkv * d; }
  int64_t os() const { return H * d; }
};

Geo geo(const Tensor& phiq, const Tensor& phik, const Tensor& v, int chunk) {
  // A chunk longer than the sequence computes the same thing as one of length T; clamping it keeps
  // the scratch O(T).
  const int64_t T = phiq.dim(1);
  return Geo{phiq.dim(0),
             T,
             phiq.dim(2),
             phik.dim(2),
             phiq.dim(3),
             v.dim(3),
             std::min<int64_t>(chunk, std::max<int64_t>(T, 1))};
}

// Pointers to the first row of (b, query head h) and of its kv head.
template <class T>
struct HeadRows {
  const T *q, *k, *v;
  HeadRows(const Geo& G, const T* q0, const T* k0, const T* v0, int64_t b, int64_t h) {
    const int64_t g = h / G.rep();
    q = q0 + (b * G.T * G.H + h) * G.m;
    k = k0 + (b * G.T * G.Hkv + g) * G.m;
    v = v0 + (b * G.T * G.Hkv + g) * G.d;
  }
};

// Chunk [c0, c0+n) of phik transposed into KT [m x C] and v' = [v, 1] into V1 [n x (d+1)].
template <class T>
void load_kv(const Geo& G, const T* k, const T* v, int64_t c0, int64_t n, T* KT, T* V1) {
  const int64_t m = G.m, d = G.d, dp = d + 1, C = G.C;
  for (int64_t s = 0; s < n; ++s) {
    const T* kr = k + (c0 + s) * G.ks();
    for (int64_t kk = 0; kk < m; ++kk) KT[kk * C + s] = kr[kk];
    const T* vr = v + (c0 + s) * G.vs();
    std::copy(vr, vr + d, V1 + s * dp);
    V1[s * dp + d] = T(1);
  }
}

// S [m x (d+1)] += KT[:, 0:n] V1[0:n, :].
template <class T>
void add_state(const Geo& G, int64_t n, const T* KT, const T* V1, T* S) {
  const int64_t dp = G.d + 1;
  for (int64_t kk = 0; kk < G.m; ++kk) {
    const T* kt = KT + kk * G.C;
    T* sr = S + kk * dp;
    for (int64_t s = 0; s < n; ++s)
      if (kt[s] != T(0)) axpy_row(dp, kt[s], V1 + s * dp, sr);
  }
}

// out[0:d+1] += q S for one query row q [m].
template <class T>
void add_query_state(const Geo& G, const T* q, const T* S, T* out) {
  const int64_t dp = G.d + 1;
  for (int64_t kk = 0; kk < G.m; ++kk)
    if (q[kk] != T(0)) axpy_row(dp, q[kk], S + kk * dp, out);
}

// o = num / den from the augmented row out = [num, den - eps].
template <class T>
void finish_row(const Geo& G, const T* out, T eps, T* o, T* den) {
  const T dn = out[G.d] + eps;
  *den = dn;
  for (int64_t e = 0; e < G.d; ++e) o[e] = out[e] / dn;
}

// g = [dout / den, -(dout . o) / den], d+1 wide.
template <class T>
void grad_row(int64_t d, const T* dout, const T* o, T den, T* g) {
  double dot = 0;
  for (int64_t e = 0; e < d; ++e) dot += double(dout[e]) * double(o[e]);
  for (int64_t e = 0; e < d; ++e) g[e] = dout[e] / den;
  g[d] = T(-dot / double(den));
}

// ---- forward -----------------------------------------------------------------------------------

// Per-thread scratch of fwd_head: KT [m x C], V1 [C x (d+1)], S [m x (d+1)], A [C], out [d+1].
int64_t fwd_scratch(const Geo& G) {
  const int64_t dp = G.d + 1;
  return G.m * G.C + G.C * dp + G.m * dp + G.C + dp;
}

template <class T>
void fwd_head(const Geo& G, const LinearAttnFwd& a, int64_t b, int64_t h, T* work) {
  const HeadRows<T> R(G, a.phiq.ptr<T>(), a.phik.ptr<T>(), a.v.ptr<T>(), b, h);
  T* o = a.o.ptr<T>() + (b * G.T * G.H + h) * G.d;
  T* den = a.den.ptr<T>() + b * G.T * G.H + h;
  const T eps = T(a.eps);
  const int64_t m = G.m, dp = G.d + 1, C = G.C;
  T* KT = work;
  T* V1 = KT + m * C;
  T* S = V1 + C * dp;
  T* A = S + m * dp;
  T* out = A + C;
  std::fill(S, S + m * dp, T(0));
  if (a.S0.defined()) {  // continue a sequence: S' = [S0, z0] of this kv head
    const int64_t g = h / G.rep();
    const T* S0 = a.S0.ptr<T>() + (b * G.Hkv + g) * m * G.d;
    const T* z0 = a.z0.ptr<T>() + (b * G.Hkv + g) * m;
    for (int64_t kk = 0; kk < m; ++kk) {
      std::copy(S0 + kk * G.d, S0 + (kk + 1) * G.d, S + kk * dp);
      S[kk * dp + G.d] = z0[kk];
    }
  }
  if (!a.causal) {
    for (int64_t c0 = 0; c0 < G.T; c0 += C) {
      const int64_t n = std::min(C, G.T - c0);
      load_kv(G, R.k, R.v, c0, n, KT, V1);
      add_state(G, n, KT, V1, S);
    }
    for (int64_t t = 0; t < G.T; ++t) {
      std::fill(out, out + dp, T(0));
      add_query_state(G, R.q + t * G.qs(), S, out);
      finish_row(G, out, eps, o + t * G.os(), den + t * G.H);
    }
    return;
  }
  for (int64_t c0 = 0; c0 < G.T; c0 += C) {
    const int64_t n = std::min(C, G.T - c0);
    load_kv(G, R.k, R.v, c0, n, KT, V1);
    for (int64_t i = 0; i < n; ++i) {
      const T* q = R.q + (c0 + i) * G.qs();
      // A[s] = q . phik[c0+s] for s <= i (the causal mask: later positions are never read).
      std::fill(A, A + i + 1, T(0));
      for (int64_t kk = 0; kk < m; ++kk)
        if (q[kk] != T(0)) axpy_row(i + 1, q[kk], KT + kk * C, A);
      std::fill(out, out + dp, T(0));
      for (int64_t s = 0; s <= i; ++s)
        if (A[s] != T(0)) axpy_row(dp, A[s], V1 + s * dp, out);
      add_query_state(G, q, S, out);
      finish_row(G, out, eps, o + (c0 + i) * G.os(), den + (c0 + i) * G.H);
    }
    add_state(G, n, KT, V1, S);
  }
}

// ---- backward: dphiq, one forward sweep per (b, query head) -----------------------------------

// Per-thread scratch of the backward: the larger of bwd_dq_head's VT [(d+1) x C], ST [(d+1) x m],
// Bv [C], g [d+1], acc [m] and bwd_dkv_group's Rm [m x d], RT [(d+1) x m], Gc [C x (d+1)],
// GT [(d+1) x C], QT [m x C], bv [C], av [C], acck [m], accv [d+1].
int64_t bwd_scratch(const Geo& G) {
  const int64_t m = G.m, d = G.d, dp = d + 1, C = G.C;
  const int64_t dq = dp * C + dp * m + C + dp + m;
  const int64_t dkv = m * d + dp * m + C * dp + dp * C + m * C + 2 * C + m + dp;
  return std::max(dq, dkv);
}

template <class T>
void bwd_dq_head(const Geo& G, const LinearAttnBwd& a, int64_t b, int64_t h, T* work) {
  const HeadRows<T> R(G, a.phiq.ptr<T>(), a.phik.ptr<T>(), a.v.ptr<T>(), b, h);
  const int64_t off = (b * G.T * G.H + h) * G.d;
  const T* dout = a.dout.ptr<T>() + off;
  const T* o = a.o.ptr<T>() + off;
  const T* den = a.den.ptr<T>() + b * G.T * G.H + h;
  T* dq = a.dphiq.ptr<T>() + (b * G.T * G.H + h) * G.m;
  const int64_t m = G.m, d = G.d, dp = d + 1, C = G.C;
  T* VT = work;         // v' of the chunk, transposed [(d+1) x C]
  T* ST = VT + dp * C;  // S' transposed [(d+1) x m]
  T* Bv = ST + dp * m;
  T* g = Bv + C;
  T* acc = g + dp;
  std::fill(ST, ST + dp * m, T(0));
  if (!a.causal) {  // bidirectional: the state over all T first
    for (int64_t s = 0; s < G.T; ++s) {
      const T* kr = R.k + s * G.ks();
      const T* vr = R.v + s * G.vs();
      for (int64_t e = 0; e < d; ++e)
        if (vr[e] != T(0)) axpy_row(m, vr[e], kr, ST + e * m);
      axpy_row(m, T(1), kr, ST + d * m);
    }
  }
  for (int64_t c0 = 0; c0 < G.T; c0 += C) {
    const int64_t n = std::min(C, G.T - c0);
    if (a.causal) {
      for (int64_t s = 0; s < n; ++s) {
        const T* vr = R.v + (c0 + s) * G.vs();
        for (int64_t e = 0; e < d; ++e) VT[e * C + s] = vr[e];
        VT[d * C + s] = T(1);
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t t = c0 + i;
      grad_row(d, dout + t * G.os(), o + t * G.os(), den[t * G.H], g);
      std::fill(acc, acc + m, T(0));
      if (a.causal) {
        // Bv[s] = g . v'[c0+s] for s <= i, then acc = sum_s Bv[s] phik[c0+s].
        std::fill(Bv, Bv + i + 1, T(0));
        for (int64_t e = 0; e < dp; ++e)
          if (g[e] != T(0)) axpy_row(i + 1, g[e], VT + e * C, Bv);
        for (int64_t s = 0; s <= i; ++s)
          if (Bv[s] != T(0)) axpy_row(m, Bv[s], R.k + (c0 + s) * G.ks(), acc);
      }
      for (int64_t e = 0; e < dp; ++e)
        if (g[e] != T(0)) axpy_row(m, g[e], ST + e * m, acc);
      std::copy(acc, acc + m, dq + t * G.qs());
    }
    if (a.causal) {
      for (int64_t e = 0; e < dp; ++e) {
        const T* vt = VT + e * C;
        T* st = ST + e * m;
        for (int64_t s = 0; s < n; ++s)
          if (vt[s] != T(0)) axpy_row(m, vt[s], R.k + (c0 + s) * G.ks(), st);
      }
    }
  }
}

// ---- backward: dphik, dv, one reverse sweep per query head of the group, per (b, kv head) ------

template <class T>
void bwd_dkv_group(const Geo& G, const LinearAttnBwd& a, int64_t b, int64_t gk, T* work) {
  const int64_t m = G.m, d = G.d, dp = d + 1, C = G.C;
  T* dk = a.dphik.ptr<T>() + (b * G.T * G.Hkv + gk) * m;
  T* dv = a.dv.ptr<T>() + (b * G.T * G.Hkv + gk) * d;
  for (int64_t t = 0; t < G.T; ++t) {
    std::fill(dk + t * G.ks(), dk + t * G.ks() + m, T(0));
    std::fill(dv + t * G.vs(), dv + t * G.vs() + d, T(0));
  }
  T* Rm = work;         // R[:, 0:d]      [m x d]
  T* RT = Rm + m * d;   // R transposed   [(d+1) x m]
  T* Gc = RT + dp * m;  // g rows of the chunk [C x (d+1)]
  T* GT = Gc + C * dp;  // transposed      [(d+1) x C]
  T* QT = GT + dp * C;  // phiq transposed [m x C]
  T* bv = QT + m * C;
  T* av = bv + C;
  T* acck = av + C;
  T* accv = acck + m;
  const int64_t nch = (G.T + C - 1) / C;
  for (int64_t j = 0; j < G.rep(); ++j) {
    const int64_t h = gk * G.rep() + j;
    const HeadRows<T> R(G, a.phiq.ptr<T>(), a.phik.ptr<T>(), a.v.ptr<T>(), b, h);
    const int64_t off = (b * G.T * G.H + h) * d;
    const T* dout = a.dout.ptr<T>() + off;
    const T* o = a.o.ptr<T>() + off;
    const T* den = a.den.ptr<T>() + b * G.T * G.H + h;
    std::fill(Rm, Rm + m * d, T(0));
    std::fill(RT, RT + dp * m, T(0));
    // Causal: chunks from the last to the first, R holding the sum over later chunks. Bidirectional:
    // R over all positions first, then every position reads it (no intra-chunk part).
    for (int pass = a.causal ? 1 : 0; pass < 2; ++pass) {
      for (int64_t c = nch - 1; c >= 0; --c) {
        const int64_t c0 = c * C, n = std::min(C, G.T - c0);
        // R gains this chunk after its positions have read it (causal; not needed after the
        // first chunk), or during the first pass (bidirectional).
        const bool update_r = a.causal ? c > 0 : pass == 0;
        for (int64_t i = 0; i < n && (a.causal || pass == 0); ++i) {
          const int64_t t = c0 + i;
          grad_row(d, dout + t * G.os(), o + t * G.os(), den[t * G.H], Gc + i * dp);
          for (int64_t e = 0; e < dp; ++e) GT[e * C + i] = Gc[i * dp + e];
          const T* qr = R.q + t * G.qs();
          for (int64_t kk = 0; kk < m; ++kk) QT[kk * C + i] = qr[kk];
        }
        if (pass == 1) {
          for (int64_t s = 0; s < n; ++s) {
            const T* kr = R.k + (c0 + s) * G.ks();
            const T* vr = R.v + (c0 + s) * G.vs();
            std::fill(acck, acck + m, T(0));
            std::fill(accv, accv + d, T(0));
            if (a.causal) {
              // bv[i] = g[i] . v'[s], av[i] = phiq[i] . phik[s] for i >= s within the chunk.
              std::fill(bv + s, bv + n, T(0));
              std::fill(av + s, av + n, T(0));
              for (int64_t e = 0; e < d; ++e)
                if (vr[e] != T(0)) axpy_row(n - s, vr[e], GT + e * C + s, bv + s);
              axpy_row(n - s, T(1), GT + d * C + s, bv + s);
              for (int64_t kk = 0; kk < m; ++kk)
                if (kr[kk] != T(0)) axpy_row(n - s, kr[kk], QT + kk * C + s, av + s);
              for (int64_t i = s; i < n; ++i) {
                if (bv[i] != T(0)) axpy_row(m, bv[i], R.q + (c0 + i) * G.qs(), acck);
                if (av[i] != T(0)) axpy_row(d, av[i], Gc + i * dp, accv);
              }
            }
            // The later chunks (causal) or all positions (bidirectional), through R.
            for (int64_t e = 0; e < d; ++e)
              if (vr[e] != T(0)) axpy_row(m, vr[e], RT + e * m, acck);
            axpy_row(m, T(1), RT + d * m, acck);
            for (int64_t kk = 0; kk < m; ++kk)
              if (kr[kk] != T(0)) axpy_row(d, kr[kk], Rm + kk * d, accv);
            axpy_row(m, T(1), acck, dk + (c0 + s) * G.ks());
            axpy_row(d, T(1), accv, dv + (c0 + s) * G.vs());
          }
        }
        if (update_r) {  // R += phiq[chunk]^T g[chunk]
          for (int64_t kk = 0; kk < m; ++kk) {
            const T* qt = QT + kk * C;
            for (int64_t i = 0; i < n; ++i)
              if (qt[i] != T(0)) axpy_row(d, qt[i], Gc + i * dp, Rm + kk * d);
          }
          for (int64_t e = 0; e < dp; ++e) {
            const T* gt = GT + e * C;
            for (int64_t i = 0; i < n; ++i)
              if (gt[i] != T(0)) axpy_row(m, gt[i], R.q + (c0 + i) * G.qs(), RT + e * m);
          }
        }
      }
    }
  }
}

}  // namespace

template <class T>
void linear_attention_fwd(Ctx& ctx, const LinearAttnFwd& a) {
  const Geo G = geo(a.phiq, a.phik, a.v, a.chunk);
  if (a.advance && G.B == 1 && G.T == 1) {  // one position of one sequence: the step
    const LinearAttnStep s{a.o.view({G.H, G.d}),
                           a.S0.view({G.Hkv, G.m, G.d}),
                           a.z0.view({G.Hkv, G.m}),
                           a.phiq.view({G.H, G.m}),
                           a.phik.view({G.Hkv, G.m}),
                           a.v.view({G.Hkv, G.d}),
                           a.eps,
                           a.den.view({G.H})};
    return linear_attention_step<T>(ctx, s);
  }
  const auto work = ctx.per_thread<T>(fwd_scratch(G));
  if (ctx.planning()) return;
  const int64_t n = G.B * G.H;
#pragma omp parallel for schedule(static) if (G.work() > kParallelWork)
  for (int64_t bh = 0; bh < n; ++bh) fwd_head<T>(G, a, bh / G.H, bh % G.H, mine(work));
  if (a.advance) linear_attention_state<T>(ctx, LinearAttnState{a.S0, a.z0, a.phik, a.v, true});
}

template <class T>
void linear_attention_bwd(Ctx& ctx, const LinearAttnBwd& a) {
  const Geo G = geo(a.phiq, a.phik, a.v, a.chunk);
  const auto work = ctx.per_thread<T>(bwd_scratch(G));
  if (ctx.planning()) return;
  const int64_t nq = G.B * G.H, nk = G.B * G.Hkv;
  const bool par = G.work() > kParallelWork;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t bh = 0; bh < nq; ++bh) bwd_dq_head<T>(G, a, bh / G.H, bh % G.H, mine(work));
#pragma omp parallel for schedule(static) if (par)
  for (int64_t bg = 0; bg < nk; ++bg) bwd_dkv_group<T>(G, a, bg / G.Hkv, bg % G.Hkv, mine(work));
}

template <class T>
void linear_attention_step(Ctx& ctx, const LinearAttnStep& a) {
  const int64_t H = a.phiq.dim(0), m = a.phiq.dim(1), Hkv = a.phik.dim(0), d = a.v.dim(1);
  const auto nums = ctx.per_thread<T>(d);
  if (ctx.planning()) return;
  const int64_t rep = H / Hkv;
  T* S = a.S.ptr<T>();
  T* z = a.z.ptr<T>();
  const T* phik = a.phik.ptr<T>();
  const T* v = a.v.ptr<T>();
  T* den = a.den.defined() ? a.den.ptr<T>() : nullptr;
  const bool par = H * m * d > kParallelWork;
#pragma omp parallel for schedule(static) if (par)
  for (int64_t g = 0; g < Hkv; ++g) {
    const T* kr = phik + g * m;
    for (int64_t kk = 0; kk < m; ++kk) {
      if (kr[kk] == T(0)) continue;
      axpy_row(d, kr[kk], v + g * d, S + (g * m + kk) * d);
      z[g * m + kk] += kr[kk];
    }
  }
#pragma omp parallel for schedule(static) if (par)
  for (int64_t h = 0; h < H; ++h) {
    const int64_t g = h / rep;
    const T* q = a.phiq.ptr<T>() + h * m;
    T* num = mine(nums);
    std::fill(num, num + d, T(0));
    T dn = T(0);
    for (int64_t kk = 0; kk < m; ++kk) {
      if (q[kk] == T(0)) continue;
      axpy_row(d, q[kk], S + (g * m + kk) * d, num);
      dn += q[kk] * z[g * m + kk];
    }
    dn += T(a.eps);
    if (den) den[h] = dn;
    T* o = a.o.ptr<T>() + h * d;
    for (int64_t e = 0; e < d; ++e) o[e] = num[e] / dn;
  }
}

template <class T>
void linear_attention_state(Ctx&, const LinearAttnState& a) {
  const int64_t B = a.phik.dim(0), Tn = a.phik.dim(1), Hkv = a.phik.dim(2), m = a.phik.dim(3);
  const int64_t d = a.v.dim(3);
  const int64_t n = B * Hkv;
#pragma omp parallel for schedule(static) if (n * Tn * m * d > kParallelWork)
  for (int64_t bg = 0; bg < n; ++bg) {
    const int64_t b = bg / Hkv, g = bg % Hkv;
    T* S = a.S.ptr<T>() + bg * m * d;
    T* z = a.z.ptr<T>() + bg * m;
    if (!a.accumulate) {
      std::fill(S, S + m * d, T(0));
      std::fill(z, z + m, T(0));
    }
    const T* k = a.phik.ptr<T>() + (b * Tn * Hkv + g) * m;
    const T* v = a.v.ptr<T>() + (b * Tn * Hkv + g) * d;
    for (int64_t t = 0; t < Tn; ++t) {
      const T* kr = k + t * Hkv * m;
      const T* vr = v + t * Hkv * d;
      for (int64_t kk = 0; kk < m; ++kk) {
        if (kr[kk] == T(0)) continue;
        axpy_row(d, kr[kk], vr, S + kk * d);
        z[kk] += kr[kk];
      }
    }
  }
}

template void linear_attention_fwd<float>(Ctx&, const LinearAttnFwd&);
template void linear_attention_fwd<double>(Ctx&, const LinearAttnFwd&);
template void linear_attention_bwd<float>(Ctx&, const LinearAttnBwd&);
template void linear_attention_bwd<double>(Ctx&, const LinearAttnBwd&);
template void linear_attention_step<float>(Ctx&, const LinearAttnStep&);
template void linear_attention_step<double>(Ctx&, const LinearAttnStep&);
template void linear_attention_state<float>(Ctx&, const LinearAttnState&);
template void linear_attention_state<double>(Ctx&, const LinearAttnState&);

}  // namespace wersa::cpu

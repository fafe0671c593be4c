// The ops that generation adds: the one-position steps (causal conv window, Haar ring) and the
// chunk continuations (Haar analysis from a state, linear attention from (S0, z0), softmax over a
// KV cache), each against the parallel op over the whole sequence; the one-row (GEMV) matmul;
// bad arguments.
#include <cmath>

#include "testutil.h"
#include "wersa/backend/backend.h"
#include "wersa/ops/conv.h"
#include "wersa/ops/haar.h"
#include "wersa/ops/linear_attention.h"
#include "wersa/ops/matmul.h"
#include "wersa/ops/softmax_attention.h"

using namespace wersa;
using namespace wersa::test;

namespace {

double tol_for(DType dt) { return dt == DType::F64 ? 1e-12 : 2e-6; }

// Row t of a [1, T, C] (or [T, ...]) buffer as a [C] view.
Tensor row_view(const Buf& b, int64_t t, int64_t C) {
  const size_t es = dtype_size(b.t.dtype);
  return Tensor(static_cast<char*>(b.t.data) + size_t(t * C) * es, b.t.dtype, Device::CPU, Shape{C}, "row");
}

// Rows [t0, t0 + n) of a buffer whose rows hold `inner` elements, with the given shape.
Tensor rows_view(const Buf& b, int64_t t0, int64_t inner, Shape s) {
  const size_t es = dtype_size(b.t.dtype);
  return Tensor(static_cast<char*>(b.t.data) + size_t(t0 * inner) * es, b.t.dtype, Device::CPU, s, "rows");
}

// Chunk lengths that cover T with awkward sizes.
std::vector<int64_t> chunks_of(int64_t T, uint64_t seed) {
  std::vector<int64_t> out;
  for (int64_t t = 0, i = 0; t < T; ++i) {
    const int64_t n = std::min<int64_t>(T - t, 1 + int64_t(rng_bits(seed, 7, uint64_t(i)) % 11));
    out.push_back(n);
    t += n;
  }
  return out;
}

}  // namespace

TEST(DecodeOps, ConvStepReproducesTheCausalConv) {
  for (DType dt : {DType::F64, DType::F32})
    for (int64_t K : {1, 2, 5, 33})
      for (int64_t T : {1, 7, 40}) {
        const int64_t C = 13;
        Buf x(dt, {1, T, C}), w(dt, {C, K}), b(dt, {C}), y(dt, {1, T, C});
        x.randn(1 + uint64_t(T));
        w.randn(2 + uint64_t(K));
        b.randn(3);
        depthwise_conv_fwd(ctx(), {y, x, w, b, true});
        Buf win(dt, {std::max<int64_t>(K - 1, 1), C}), ys(dt, {C});
        const Tensor window = K > 1 ? win.t.view({K - 1, C}) : Tensor();
        for (int64_t t = 0; t < T; ++t) {
          depthwise_conv_step(ctx(), {ys, window, row_view(x, t, C), w, b, t});
          for (int64_t c = 0; c < C; ++c)
            ASSERT_EQ(ys.get(c), y.get(t * C + c))
                << dtype_name(dt) << " K " << K << " T " << T << " t " << t;
        }
      }
}

TEST(DecodeOps, HaarStepReproducesAnalysisAndSynthesis) {
  for (DType dt : {DType::F64, DType::F32})
    for (int L = 1; L <= 5; ++L)
      for (int64_t T : {1, 7, 33, 100}) {
        const int64_t C = 11;
        Buf x(dt, {1, T, C}), gamma(dt, {1, T, L + 1}), coef(dt, {L + 1, 1, T, C}), y(dt, {1, T, C});
        x.randn(10 + uint64_t(L));
        gamma.uniform(20 + uint64_t(T), 0.1, 1.5);
        haar_analysis_fwd(ctx(), {coef, x, L});
        haar_synthesis_fwd(ctx(), {y, coef, gamma, L});
        Buf ring(dt, {(int64_t(1) << L) - 1, C}), ys(dt, {C});
        double err = 0, scale = 0;
        for (int64_t t = 0; t < T; ++t) {
          haar_step(ctx(), {ys, ring, row_view(x, t, C), row_view(gamma, t, L + 1), L, t});
          for (int64_t c = 0; c < C; ++c) {
            err = std::max(err, std::fabs(ys.get(c) - y.get(t * C + c)));
            scale = std::max(scale, std::fabs(y.get(t * C + c)));
          }
        }
        EXPECT_LE(err, tol_for(dt) * scale) << dtype_name(dt) << " L " << L << " T " << T;
      }
}

TEST(DecodeOps, HaarAnalysisInChunksEqualsOneShot) {
  const int64_t B = 2, C = 40, T = 57;  // C > one channel block of the kernel
  for (DType dt : {DType::F64, DType::F32})
    for (int L : {1, 3, 5}) {
      Buf x(dt, {B, T, C}), full(dt, {L + 1, B, T, C});
      x.randn(30 + uint64_t(L));
      haar_analysis_fwd(ctx(), {full, x, L});
      const int64_t P = (int64_t(1) << L) - 1;
      Buf state(dt, {B, P, C});
      double err = 0, scale = 0;
      int64_t t0 = 0;
      for (int64_t n : chunks_of(T, uint64_t(L))) {
        Buf xc(dt, {B, n, C}), cc(dt, {L + 1, B, n, C});
        for (int64_t b = 0; b < B; ++b)
          for (int64_t t = 0; t < n; ++t)
            for (int64_t c = 0; c < C; ++c) xc.set((b * n + t) * C + c, x.get((b * T + t0 + t) * C + c));
        haar_analysis_fwd(ctx(), {cc, xc, L, state, t0});
        for (int l = 0; l <= L; ++l)
          for (int64_t b = 0; b < B; ++b)
            for (int64_t t = 0; t < n; ++t)
              for (int64_t c = 0; c < C; ++c) {
                const double want = full.get(((l * B + b) * T + t0 + t) * C + c);
                err = std::max(err, std::fabs(cc.get(((l * B + b) * n + t) * C + c) - want));
                scale = std::max(scale, std::fabs(want));
              }
        t0 += n;
      }
      EXPECT_LE(err, tol_for(dt) * scale) << dtype_name(dt) << " L " << L;
      // The state reached chunk by chunk equals the one reached by steps (sequence 1).
      Buf ring(dt, {P, C});
      for (int64_t t = 0; t < T; ++t)
        haar_step(ctx(), {Tensor(), ring, row_view(x, T + t, C), Tensor(), L, t});
      double serr = 0;
      for (int64_t i = 0; i < P * C; ++i)
        serr = std::max(serr, std::fabs(ring.get(i) - state.get(P * C + i)));
      EXPECT_LE(serr, tol_for(dt) * scale) << dtype_name(dt) << " L " << L;
    }
}

TEST(DecodeOps, LinearAttentionFromAStateEqualsOneShot) {
  const int64_t B = 2, T = 45, H = 4, Hkv = 2, m = 6, d = 5;
  for (DType dt : {DType::F64, DType::F32}) {
    Buf q(dt, {B, T, H, m}), k(dt, {B, T, Hkv, m}), v(dt, {B, T, Hkv, d});
    q.uniform(1, 0.0, 1.0);
    k.uniform(2, 0.0, 1.0);
    v.randn(3);
    Buf o(dt, {B, T, H, d}), den(dt, {B, T, H});
    linear_attention_fwd(ctx(), {o, den, q, k, v, 8, 1e-6, true});
    Buf S(dt, {B, Hkv, m, d}), z(dt, {B, Hkv, m});
    double err = 0;
    int64_t t0 = 0;
    for (int64_t n : chunks_of(T, 5)) {
      Buf qc(dt, {B, n, H, m}), kc(dt, {B, n, Hkv, m}), vc(dt, {B, n, Hkv, d});
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t i = 0; i < n * H * m; ++i) qc.set(b * n * H * m + i, q.get((b * T + t0) * H * m + i));
        for (int64_t i = 0; i < n * Hkv * m; ++i)
          kc.set(b * n * Hkv * m + i, k.get((b * T + t0) * Hkv * m + i));
        for (int64_t i = 0; i < n * Hkv * d; ++i)
          vc.set(b * n * Hkv * d + i, v.get((b * T + t0) * Hkv * d + i));
      }
      Buf oc(dt, {B, n, H, d}), dc(dt, {B, n, H});
      linear_attention_fwd(ctx(), {oc, dc, qc, kc, vc, 4, 1e-6, true, S, z});
      linear_attention_state(ctx(), {S, z, kc, vc, true});
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < n * H * d; ++i)
          err = std::max(err, std::fabs(oc.get(b * n * H * d + i) - o.get((b * T + t0) * H * d + i)));
      t0 += n;
    }
    EXPECT_LE(err, dt == DType::F64 ? 1e-12 : 1e-5) << dtype_name(dt);
    // The accumulated state equals the state of the whole sequence.
    Buf S1(dt, {B, Hkv, m, d}), z1(dt, {B, Hkv, m});
    linear_attention_state(ctx(), {S1, z1, k, v});
    EXPECT_LE(rel_err(S, S1), tol_for(dt) * 10);
    EXPECT_LE(rel_err(z, z1), tol_for(dt) * 10);
  }
}

TEST(DecodeOps, SoftmaxPrefillInChunksEqualsForward) {
  const int64_t T = 41, H = 6, Hkv = 2, d = 9, Tmax = 50;
  for (DType dt : {DType::F64, DType::F32}) {
    Buf q(dt, {1, T, H, d}), k(dt, {1, T, Hkv, d}), v(dt, {1, T, Hkv, d}), o(dt, {1, T, H, d}),
        lse(dt, {1, T, H});
    q.randn(1);
    k.randn(2);
    v.randn(3);
    const double scale = 1.0 / 3.0;
    softmax_attention_fwd(ctx(), {o, lse, q, k, v, scale, true});
    Buf kc(dt, {Tmax, Hkv, d}), vc(dt, {Tmax, Hkv, d});
    for (int64_t i = 0; i < T * Hkv * d; ++i) kc.set(i, k.get(i)), vc.set(i, v.get(i));
    double err = 0;
    int64_t t0 = 0;
    for (int64_t n : chunks_of(T, 9)) {
      Buf oc(dt, {n, H, d});
      softmax_attention_prefill(ctx(), {oc, rows_view(q, t0, H * d, Shape{n, H, d}), kc, vc, t0, scale});
      for (int64_t i = 0; i < n * H * d; ++i)
        err = std::max(err, std::fabs(oc.get(i) - o.get(t0 * H * d + i)));
      t0 += n;
    }
    EXPECT_LE(err, dt == DType::F64 ? 1e-13 : 1e-6) << dtype_name(dt);
  }
}

TEST(DecodeOps, SoftmaxDecodeMatchesTheDefinitionForAnyGrouping) {
  // Query heads per kv head 1, 3, 6, 8 (the multi-query kernels' 4 + 2 + 1 split) and head widths
  // that are not multiples of the vector width.
  const int64_t n = 37;
  for (DType dt : {DType::F64, DType::F32})
    for (auto [H, Hkv, d] :
         {std::tuple<int64_t, int64_t, int64_t>{3, 3, 40}, {6, 2, 21}, {12, 2, 16}, {8, 1, 64}}) {
      Buf q(dt, {H, d}), kc(dt, {n + 3, Hkv, d}), vc(dt, {n + 3, Hkv, d}), o(dt, {H, d});
      q.randn(1);
      kc.randn(2);
      vc.randn(3);
      const double scale = 0.3;
      softmax_attention_decode(ctx(), {o, q, kc, vc, n, scale});
      double err = 0;
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / Hkv);
        std::vector<double> s(static_cast<size_t>(n));
        double mx = -1e300, l = 0;
        for (int64_t j = 0; j < n; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += q.get(h * d + e) * kc.get((j * Hkv + g) * d + e);
          s[size_t(j)] = scale * dot;
          mx = std::max(mx, s[size_t(j)]);
        }
        for (double& x : s) l += x = std::exp(x - mx);
        for (int64_t e = 0; e < d; ++e) {
          double want = 0;
          for (int64_t j = 0; j < n; ++j) want += s[size_t(j)] * vc.get((j * Hkv + g) * d + e);
          err = std::max(err, std::fabs(o.get(h * d + e) - want / l));
        }
      }
      EXPECT_LT(err, dt == DType::F64 ? 1e-13 : 1e-5)
          << dtype_name(dt) << " H " << H << " Hkv " << Hkv << " d " << d;
    }
}

TEST(DecodeOps, OneRowMatmulEqualsTheBatchedRows) {
  const int64_t N = 5, I = 37, O = 29;
  for (DType dt : {DType::F64, DType::F32})
    for (bool bias : {false, true})
      for (bool acc : {false, true}) {
        Buf x(dt, {N, I}), w(dt, {O, I}), b(dt, {O}), y(dt, {N, O}), y1(dt, {1, O});
        x.randn(1);
        w.randn(2);
        b.randn(3);
        y.randn(4);
        const Tensor bt = bias ? b.t : Tensor();
        for (int64_t r = 0; r < N; ++r) {
          y1.zero();
          for (int64_t o = 0; o < O; ++o) y1.set(o, y.get(r * O + o));
          matmul_fwd(ctx(), {y1, rows_view(x, r, I, Shape{1, I}), w, bt, acc});
          for (int64_t o = 0; o < O; ++o) {
            double want = acc ? y.get(r * O + o) : 0.0;
            if (bias) want += b.get(o);
            for (int64_t i = 0; i < I; ++i) want += x.get(r * I + i) * w.get(o * I + i);
            ASSERT_NEAR(y1.get(o), want, dt == DType::F64 ? 1e-12 : 1e-4)
                << "bias " << bias << " acc " << acc;
          }
        }
      }
}

TEST(DecodeOps, OneRowKernelsDoNotDependOnTheThreadCount) {
  // Large enough that the GEMV and the softmax decode split their work between threads.
  const int64_t I = 768, O = 1000, Tmax = 3000, H = 4, Hkv = 2, d = 64;
  Buf x(DType::F32, {1, I}), w(DType::F32, {O, I}), b(DType::F32, {O}), q(DType::F32, {H, d});
  Buf kc(DType::F32, {Tmax, Hkv, d}), vc(DType::F32, {Tmax, Hkv, d});
  x.randn(1);
  w.randn(2);
  b.randn(3);
  q.randn(4);
  kc.randn(5);
  vc.randn(6);
  std::vector<std::vector<double>> outs;
  for (int threads : {1, 2, 1}) {
    set_cpu_threads(threads);
    Buf y(DType::F32, {1, O}), o(DType::F32, {H, d});
    matmul_fwd(ctx(), {y, x, w, b});
    softmax_attention_decode(ctx(), {o, q, kc, vc, Tmax, 0.125});
    std::vector<double> v;
    for (int64_t i = 0; i < O; ++i) v.push_back(y.get(i));
    for (int64_t i = 0; i < H * d; ++i) v.push_back(o.get(i));
    outs.push_back(v);
  }
  set_cpu_threads(0);
  EXPECT_EQ(outs[0], outs[1]);
  EXPECT_EQ(outs[0], outs[2]);
}

TEST(DecodeOps, BadArgumentsAreErrors) {
  const DType dt = DType::F32;
  Buf x(dt, {8}), w(dt, {8, 5}), y(dt, {8}), win(dt, {3, 8});
  EXPECT_THROW(depthwise_conv_step(ctx(), {y, win, x, w, Tensor(), 0}), Error);  // window must be [K-1, C]
  EXPECT_THROW(depthwise_conv_step(ctx(), {y, Tensor(), x, w, Tensor(), 0}), Error);  // K > 1 needs a window
  Buf ring(dt, {3, 8}), gamma(dt, {3});
  EXPECT_THROW(haar_step(ctx(), {y, ring, x, gamma, 3, 0}), Error);     // L = 3 needs 7 ring rows
  EXPECT_THROW(haar_step(ctx(), {y, ring, x, Tensor(), 2, 0}), Error);  // y needs gamma
  Buf xs(dt, {1, 4, 8}), coef(dt, {3, 1, 4, 8}), st(dt, {1, 2, 8});
  EXPECT_THROW(haar_analysis_fwd(ctx(), {coef, xs, 2, st, 0}), Error);  // state must be [B, 3, C]
  Buf q(dt, {1, 4, 2, 3}), k(dt, {1, 4, 2, 3}), v(dt, {1, 4, 2, 5}), o(dt, {1, 4, 2, 5}), den(dt, {1, 4, 2});
  Buf S(dt, {1, 2, 3, 5}), z(dt, {1, 2, 3});
  EXPECT_THROW(linear_attention_fwd(ctx(), {o, den, q, k, v, 4, 1e-6, false, S, z}), Error);  // not causal
  EXPECT_THROW(linear_attention_fwd(ctx(), {o, den, q, k, v, 4, 1e-6, true, S, Tensor()}), Error);
  Buf qq(dt, {4, 2, 3}), kc(dt, {6, 1, 3}), vc(dt, {6, 1, 3}), oo(dt, {4, 2, 3});
  EXPECT_THROW(softmax_attention_prefill(ctx(), {oo, qq, kc, vc, 3, 1.0}), Error);  // 3 + 4 rows > 6
  EXPECT_NO_THROW(softmax_attention_prefill(ctx(), {oo, qq, kc, vc, 2, 1.0}));
}

// Ops that continue a sequence from a state, chunk by chunk, against the op over the whole
// sequence: the causal conv with a window, linear attention with `advance`, softmax attention over
// a KV cache, the gated Haar filter with a history state (and its backward against finite
// differences); the reductions loss_sum_fwd and copy_fwd.
#include <cmath>
#include <cstring>

#include "testutil.h"
#include "wersa/ops/conv.h"
#include "wersa/ops/cross_entropy.h"
#include "wersa/ops/elementwise.h"
#include "wersa/ops/haar.h"
#include "wersa/ops/linear_attention.h"
#include "wersa/ops/softmax_attention.h"

using namespace wersa;
using namespace wersa::test;

namespace {

// Positions [t0, t0 + n) of x [B, T, ...] as a new buffer [B, n, ...].
Buf slice_t(const Buf& x, int64_t t0, int64_t n) {
  Shape s = x.t.shape;
  const int64_t B = s[0], T = s[1], inner = x.n() / (B * T);
  s.dim[1] = n;
  Buf out(x.t.dtype, s, "chunk");
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < n * inner; ++i) out.set(b * n * inner + i, x.get((b * T + t0) * inner + i));
  return out;
}

// Element i of chunk c [B, n, ...] against element (b, t0 + t) of the whole [B, T, ...].
double max_diff_t(const Buf& chunk, const Buf& whole, int64_t t0) {
  const int64_t B = whole.t.dim(0), T = whole.t.dim(1), n = chunk.t.dim(1), inner = whole.n() / (B * T);
  double err = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < n * inner; ++i)
      err = std::max(err, std::fabs(chunk.get(b * n * inner + i) - whole.get((b * T + t0) * inner + i)));
  return err;
}

bool bitwise_equal_t(const Buf& chunk, const Buf& whole, int64_t t0) {
  const int64_t B = whole.t.dim(0), T = whole.t.dim(1), n = chunk.t.dim(1), inner = whole.n() / (B * T);
  const size_t es = dtype_size(whole.t.dtype);
  for (int64_t b = 0; b < B; ++b)
    if (std::memcmp(static_cast<const char*>(chunk.t.data) + size_t(b * n * inner) * es,
                    static_cast<const char*>(whole.t.data) + size_t((b * T + t0) * inner) * es,
                    size_t(n * inner) * es) != 0)
      return false;
  return true;
}

// Chunk lengths covering T: 1, 2, 7, around `around` (K - 1 and beyond), then 1-position chunks
// again, repeated.
std::vector<int64_t> chunks_of(int64_t T, int64_t around) {
  const int64_t pattern[] = {1, 2, 7, std::max<int64_t>(1, around - 1), around, around + 1, 1, 1, 3};
  std::vector<int64_t> out;
  for (int64_t t = 0, i = 0; t < T; ++i) {
    const int64_t n = std::min(T - t, pattern[i % 9]);
    out.push_back(n);
    t += n;
  }
  return out;
}

// Row t of a [T, C] buffer (or sequence b of a [B, T, C] one, row b * T + t) as a [C] view.
Tensor row_view(const Buf& b, int64_t row, int64_t C) {
  const size_t es = dtype_size(b.t.dtype);
  return Tensor(static_cast<char*>(b.t.data) + size_t(row * C) * es, b.t.dtype, Device::CPU, Shape{C}, "row");
}

}  // namespace

TEST(OpState, ConvWithAWindowInChunksEqualsOneShot) {
  for (DType dt : {DType::F64, DType::F32})
    for (int64_t K : {1, 2, 5, 33})
      for (int64_t B : {1, 2}) {
        SCOPED_TRACE(testing::Message() << dtype_name(dt) << " K " << K << " B " << B);
        const int64_t T = 80, C = 13, W = K - 1;
        Buf x(dt, {B, T, C}), w(dt, {C, K}), b(dt, {C}), y(dt, {B, T, C});
        x.randn(1 + uint64_t(K)), w.randn(2), b.randn(3);
        depthwise_conv_fwd(ctx(), {y, x, w, b, true});
        Buf win(dt, {B, W, C});
        int64_t t0 = 0;
        for (int64_t n : chunks_of(T, K)) {
          Buf xc = slice_t(x, t0, n), yc(dt, {B, n, C});
          yc.randn(9);  // overwritten
          depthwise_conv_fwd(ctx(), {yc, xc, w, b, true, win, t0});
          ASSERT_TRUE(bitwise_equal_t(yc, y, t0)) << "chunk at " << t0 << " of " << n;
          t0 += n;
        }
        // The window equals the ring that the steps reach.
        for (int64_t bb = 0; bb < B && W > 0; ++bb) {
          Buf ring(dt, {W, C}), ys(dt, {C});
          for (int64_t t = 0; t < T; ++t)
            depthwise_conv_step(ctx(), {ys, ring, row_view(x, bb * T + t, C), w, b, t});
          for (int64_t i = 0; i < W * C; ++i)
            ASSERT_EQ(win.get(bb * W * C + i), ring.get(i)) << bb << " " << i;
        }
      }
}

TEST(OpState, ConvWindowRulesAreChecked) {
  const DType dt = DType::F32;
  Buf x(dt, {2, 4, 3}), w(dt, {3, 5}), y(dt, {2, 4, 3}), win(dt, {2, 4, 3}), bad(dt, {2, 3, 3});
  EXPECT_NO_THROW(depthwise_conv_fwd(ctx(), {y, x, w, {}, true, win, 4}));
  EXPECT_THROW(depthwise_conv_fwd(ctx(), {y, x, w, {}, true, bad, 4}), Error);   // [B, K-1, C]
  EXPECT_THROW(depthwise_conv_fwd(ctx(), {y, x, w, {}, false, win, 4}), Error);  // causal only
  EXPECT_THROW(depthwise_conv_fwd(ctx(), {y, x, w, {}, true, win, -1}), Error);
  // K = 1 keeps no history: no window, or an empty one.
  Buf w1(dt, {3, 1}), win0(dt, {2, 0, 3});
  EXPECT_NO_THROW(depthwise_conv_fwd(ctx(), {y, x, w1, {}, true, win0, 4}));
}

// The state kernels that the routed ops run, called directly: depthwise_conv_window advances a
// window as a forward with it does; kv_cache_append writes cache rows pos0 .. pos0 + T - 1.
TEST(OpState, ConvWindowAndCacheAppendOnTheirOwn) {
  const DType dt = DType::F64;
  const int64_t B = 2, T = 3, C = 5, K = 6, W = K - 1;
  Buf x(dt, {B, T, C}), w(dt, {C, K}), y(dt, {B, T, C}), win(dt, {B, W, C}), win2(dt, {B, W, C});
  x.randn(1), w.randn(2), win.randn(3);
  for (int64_t i = 0; i < win.n(); ++i) win2.set(i, win.get(i));
  depthwise_conv_fwd(ctx(), {y, x, w, {}, true, win, 7});
  depthwise_conv_window(ctx(), {win2, x, 7});
  for (int64_t i = 0; i < win.n(); ++i) ASSERT_EQ(win.get(i), win2.get(i)) << i;
  EXPECT_THROW(depthwise_conv_window(ctx(), {win2, x, -1}), Error);
  EXPECT_THROW(depthwise_conv_window(ctx(), {Buf(dt, {B, W, C + 1}).t, x, 0}), Error);
  Buf k(dt, {T, 2, 4}), v(dt, {T, 2, 4}), kc(dt, {8, 2, 4}), vc(dt, {8, 2, 4});
  k.randn(4), v.randn(5);
  kv_cache_append(ctx(), {kc, vc, k, v, 5});
  for (int64_t i = 0; i < k.n(); ++i) {
    ASSERT_EQ(kc.get(5 * 8 + i), k.get(i));
    ASSERT_EQ(vc.get(5 * 8 + i), v.get(i));
  }
  EXPECT_THROW(kv_cache_append(ctx(), {kc, vc, k, v, 6}), Error);  // 6 + 3 > 8
  EXPECT_THROW(kv_cache_append(ctx(), {kc, vc, k, Buf(dt, {T, 1, 4}).t, 0}), Error);
}

TEST(OpState, LinearAttentionAdvanceInChunksEqualsOneShot) {
  for (DType dt : {DType::F64, DType::F32})
    for (int64_t B : {1, 2}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " B " << B);
      const int64_t T = 45, H = 4, Hkv = 2, m = 6, d = 5;
      Buf q(dt, {B, T, H, m}), k(dt, {B, T, Hkv, m}), v(dt, {B, T, Hkv, d});
      q.uniform(1, 0.0, 1.0), k.uniform(2, 0.0, 1.0), v.randn(3);
      for (int64_t i = 0; i < q.n(); i += 5) q.set(i, 0.0);  // ReLU zeros
      Buf o(dt, {B, T, H, d}), den(dt, {B, T, H});
      linear_attention_fwd(ctx(), {o, den, q, k, v, 8, 1e-6, true});
      Buf S(dt, {B, Hkv, m, d}), z(dt, {B, Hkv, m});
      const double tol = dt == DType::F64 ? 1e-12 : 1e-5;
      int64_t t0 = 0;
      for (int64_t n : chunks_of(T, 6)) {
        Buf qc = slice_t(q, t0, n), kc = slice_t(k, t0, n), vc = slice_t(v, t0, n);
        Buf oc(dt, {B, n, H, d}), dc(dt, {B, n, H});
        LinearAttnFwd f{oc, dc, qc, kc, vc, 4, 1e-6, true, S, z};
        f.advance = true;
        linear_attention_fwd(ctx(), f);
        EXPECT_LE(max_diff_t(oc, o, t0), tol) << "chunk at " << t0 << " of " << n;
        EXPECT_LE(max_diff_t(dc, den, t0), tol * 10) << "chunk at " << t0 << " of " << n;
        t0 += n;
      }
      // The advanced state equals the state of the whole sequence.
      Buf S1(dt, {B, Hkv, m, d}), z1(dt, {B, Hkv, m});
      linear_attention_state(ctx(), {S1, z1, k, v});
      EXPECT_LE(rel_err(S, S1), dt == DType::F64 ? 1e-12 : 2e-5);
      EXPECT_LE(rel_err(z, z1), dt == DType::F64 ? 1e-12 : 2e-5);
    }
}

TEST(OpState, LinearAttentionAdvanceNeedsAState) {
  const DType dt = DType::F64;
  Buf q(dt, {1, 1, 2, 3}), k(dt, {1, 1, 2, 3}), v(dt, {1, 1, 2, 5}), o(dt, {1, 1, 2, 5}), den(dt, {1, 1, 2});
  LinearAttnFwd f{o, den, q, k, v};
  f.advance = true;
  EXPECT_THROW(linear_attention_fwd(ctx(), f), Error);
}

TEST(OpState, SoftmaxOverACacheInChunksEqualsTheForward) {
  const int64_t T = 41, H = 6, Hkv = 2, d = 9, Tmax = 50;
  for (DType dt : {DType::F64, DType::F32}) {
    SCOPED_TRACE(dtype_name(dt));
    Buf q(dt, {1, T, H, d}), k(dt, {1, T, Hkv, d}), v(dt, {1, T, Hkv, d}), o(dt, {1, T, H, d}),
        lse(dt, {1, T, H});
    q.randn(1), k.randn(2), v.randn(3);
    const double scale = 1.0 / 3.0;
    softmax_attention_fwd(ctx(), {o, lse, q, k, v, scale, true});
    Buf kc(dt, {Tmax, Hkv, d}), vc(dt, {Tmax, Hkv, d});
    const double tol = dt == DType::F64 ? 1e-13 : 1e-6;
    int64_t t0 = 0;
    for (int64_t n : chunks_of(T, 5)) {
      Buf qc = slice_t(q, t0, n), kk = slice_t(k, t0, n), vv = slice_t(v, t0, n), oc(dt, {1, n, H, d});
      SoftmaxAttnFwd f{oc, Tensor(), qc, kk, vv, scale, true, kc, vc, t0};
      softmax_attention_fwd(ctx(), f);
      EXPECT_LE(max_diff_t(oc, o, t0), tol) << "chunk at " << t0 << " of " << n;
      t0 += n;
    }
    // The cache holds every position's k and v.
    for (int64_t i = 0; i < T * Hkv * d; ++i) {
      ASSERT_EQ(kc.get(i), k.get(i));
      ASSERT_EQ(vc.get(i), v.get(i));
    }
  }
}

TEST(OpState, SoftmaxCacheRulesAreChecked) {
  const DType dt = DType::F32;
  Buf q(dt, {1, 4, 2, 3}), k(dt, {1, 4, 1, 3}), v(dt, {1, 4, 1, 3}), o(dt, {1, 4, 2, 3});
  Buf kc(dt, {6, 1, 3}), vc(dt, {6, 1, 3}), kc2(dt, {6, 2, 3});
  EXPECT_NO_THROW(softmax_attention_fwd(ctx(), {o, {}, q, k, v, 1.0, true, kc, vc, 2}));
  EXPECT_THROW(softmax_attention_fwd(ctx(), {o, {}, q, k, v, 1.0, true, kc, vc, 3}), Error);   // 3 + 4 > 6
  EXPECT_THROW(softmax_attention_fwd(ctx(), {o, {}, q, k, v, 1.0, false, kc, vc, 0}), Error);  // causal only
  EXPECT_THROW(softmax_attention_fwd(ctx(), {o, {}, q, k, v, 1.0, true, kc, {}, 0}), Error);
  EXPECT_THROW(softmax_attention_fwd(ctx(), {o, {}, q, k, v, 1.0, true, kc2, kc2, 0}), Error);  // kv heads
  EXPECT_THROW(softmax_attention_fwd(ctx(), {o, {}, q, k, v, 1.0, true}), Error);  // lse needed without cache
  Buf q2(dt, {2, 1, 2, 3}), k2(dt, {2, 1, 1, 3}), v2(dt, {2, 1, 1, 3}), o2(dt, {2, 1, 2, 3});
  EXPECT_THROW(softmax_attention_fwd(ctx(), {o2, {}, q2, k2, v2, 1.0, true, kc, vc, 0}), Error);  // B = 1
}

TEST(OpState, HaarFilterEqualsAnalysisThenSynthesis) {
  for (DType dt : {DType::F64, DType::F32})
    for (int L : {1, 3, 5}) {
      const int64_t B = 2, T = 37, C = 45;
      Buf x(dt, {B, T, C}), gamma(dt, {B, T, L + 1}), coef(dt, {L + 1, B, T, C}), y(dt, {B, T, C});
      x.randn(4 + uint64_t(L)), gamma.uniform(5, 0.1, 1.5);
      haar_analysis_fwd(ctx(), {coef, x, L});
      haar_synthesis_fwd(ctx(), {y, coef, gamma, L});
      Buf yf(dt, {B, T, C});
      haar_filter_fwd(ctx(), {yf, x, gamma, L});
      EXPECT_TRUE(bitwise_equal_t(yf, y, 0)) << dtype_name(dt) << " L " << L;
    }
}

// Long enough for many time tiles of the fused CPU filter (128 rows from L = 3, 4 << L above),
// with a partial last tile: the tiles' halos must give bitwise the separate kernels' results.
TEST(OpState, HaarFilterInTimeTilesIsBitwiseTheSeparateKernels) {
  for (DType dt : {DType::F64, DType::F32})
    for (int L : {1, 3, 6}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " L " << L);
      const int64_t B = 2, T = 1100, C = 40;
      Buf x(dt, {B, T, C}), gamma(dt, {B, T, L + 1}), coef(dt, {L + 1, B, T, C}), y(dt, {B, T, C});
      Buf dy(dt, {B, T, C}), dcoef(dt, {L + 1, B, T, C}), dx(dt, {B, T, C}), dg(dt, {B, T, L + 1});
      x.randn(12 + uint64_t(L)), gamma.uniform(13, 0.1, 1.5), dy.randn(14);
      haar_analysis_fwd(ctx(), {coef, x, L});
      haar_synthesis_fwd(ctx(), {y, coef, gamma, L});
      haar_synthesis_bwd(ctx(), {dcoef, dg, dy, coef, gamma, L});
      haar_analysis_bwd(ctx(), {dx, dcoef, L});
      Buf yf(dt, {B, T, C}), dxf(dt, {B, T, C}), dgf(dt, {B, T, L + 1});
      haar_filter_fwd(ctx(), {yf, x, gamma, L});
      haar_filter_bwd(ctx(), {dxf, dgf, dy, x, gamma, L});
      EXPECT_TRUE(bitwise_equal_t(yf, y, 0));
      EXPECT_TRUE(bitwise_equal_t(dxf, dx, 0));
      EXPECT_TRUE(bitwise_equal_t(dgf, dg, 0));
    }
}

TEST(OpState, HaarFilterWithAStateInChunksEqualsOneShot) {
  for (DType dt : {DType::F64, DType::F32})
    for (int L : {1, 3, 5})
      for (int64_t B : {1, 2}) {
        SCOPED_TRACE(testing::Message() << dtype_name(dt) << " L " << L << " B " << B);
        const int64_t T = 70, C = 40, P = (int64_t(1) << L) - 1;
        Buf x(dt, {B, T, C}), gamma(dt, {B, T, L + 1}), y(dt, {B, T, C});
        x.randn(6 + uint64_t(L)), gamma.uniform(7, 0.1, 1.5);
        haar_filter_fwd(ctx(), {y, x, gamma, L});
        Buf state(dt, {B, P, C});
        double err = 0, scale = 0;
        for (int64_t i = 0; i < y.n(); ++i) scale = std::max(scale, std::fabs(y.get(i)));
        int64_t t0 = 0;
        for (int64_t n : chunks_of(T, P)) {
          Buf xc = slice_t(x, t0, n), gc = slice_t(gamma, t0, n), yc(dt, {B, n, C});
          haar_filter_fwd(ctx(), {yc, xc, gc, L, state, t0});
          err = std::max(err, max_diff_t(yc, y, t0));
          t0 += n;
        }
        EXPECT_LE(err, (dt == DType::F64 ? 1e-12 : 2e-6) * scale);
      }
}

TEST(OpState, HaarFilterBackwardMatchesFiniteDifferences) {
  for (int L : {1, 2, 4})
    for (bool acc : {false, true}) {
      SCOPED_TRACE(testing::Message() << "L " << L << " accumulate " << acc);
      const int64_t B = 2, T = 23, C = 37;
      Buf x(DType::F64, {B, T, C}), gamma(DType::F64, {B, T, L + 1}), y(DType::F64, {B, T, C});
      Buf probe(DType::F64, {B, T, C}), dx(DType::F64, {B, T, C}), dg(DType::F64, {B, T, L + 1});
      Buf prior(DType::F64, {B, T, L + 1});
      x.randn(8), gamma.uniform(9, 0.2, 1.4), probe.randn(10), prior.randn(11);
      auto loss = [&] {
        haar_filter_fwd(ctx(), {y, x, gamma, L});
        return dot(y, probe);
      };
      // With accumulate_dgamma the backward adds to what dgamma holds: start it at `prior` and
      // subtract it afterwards, so the check sees the contribution alone.
      auto backward = [&] {
        if (acc) dg.copy_from(prior);
        haar_filter_bwd(ctx(), {dx, dg, probe, x, gamma, L, acc});
        if (acc) axpy(ctx(), {dg, prior, -1.0});
      };
      expect_grad_matches(loss, backward, {{&x, &dx, "x"}, {&gamma, &dg, "gamma"}});
    }
}

TEST(OpState, HaarFilterBackwardAccumulatesGammaAndSkipsUndefined) {
  const int L = 3;
  const int64_t B = 1, T = 19, C = 10;
  Buf x(DType::F64, {B, T, C}), gamma(DType::F64, {B, T, L + 1}), dy(DType::F64, {B, T, C});
  Buf dx(DType::F64, {B, T, C}), dg(DType::F64, {B, T, L + 1}), dg2(DType::F64, {B, T, L + 1});
  x.randn(1), gamma.uniform(2, 0.2, 1.4), dy.randn(3);
  haar_filter_bwd(ctx(), {dx, dg, dy, x, gamma, L});
  dg2.copy_from(dg);
  haar_filter_bwd(ctx(), {{}, dg2, dy, x, gamma, L, true});  // adds, without dx
  for (int64_t i = 0; i < dg.n(); ++i) EXPECT_NEAR(dg2.get(i), 2 * dg.get(i), 1e-12) << i;
  Buf dx2(DType::F64, {B, T, C});
  haar_filter_bwd(ctx(), {dx2, {}, dy, x, gamma, L});  // without dgamma
  EXPECT_EQ(rel_err(dx2, dx), 0.0);
  Buf bad(DType::F64, {B, T, L});
  EXPECT_THROW(haar_filter_bwd(ctx(), {dx, bad, dy, x, gamma, L}), Error);
  EXPECT_THROW(haar_filter_fwd(ctx(), {dx, x, bad, L}), Error);
  Buf st(DType::F64, {B, 3, C});
  EXPECT_THROW(haar_filter_fwd(ctx(), {dx, x, gamma, L, st, 0}), Error);  // L = 3 needs 7 rows
}

TEST(OpState, LossSumIsTheSerialSumOfCountedLosses) {
  for (DType dt : {DType::F64, DType::F32}) {
    const int64_t N = 1001;
    Buf losses(dt, {N}), targets(DType::I32, {N}), out(DType::F64, {2});
    losses.uniform(1, 0.0, 9.0);
    for (int64_t r = 0; r < N; ++r) targets.set(r, r % 7 == 3 ? -1 : double(r % 50));
    out.randn(2);  // overwritten
    loss_sum_fwd(ctx(), {out, losses, targets});
    double sum = 0;
    int64_t n = 0;
    for (int64_t r = 0; r < N; ++r) {
      if (targets.p<int32_t>()[r] < 0) continue;
      sum += dt == DType::F64 ? losses.p<double>()[r] : double(losses.p<float>()[r]);
      ++n;
    }
    EXPECT_EQ(out.get(0), sum) << dtype_name(dt);
    EXPECT_EQ(out.get(1), double(n)) << dtype_name(dt);
  }
  Buf losses(DType::F32, {4}), targets(DType::I32, {4}), out1(DType::F64, {1}), out32(DType::F32, {2});
  Buf out(DType::F64, {2}), t3(DType::I32, {3});
  EXPECT_THROW(loss_sum_fwd(ctx(), {out1, losses, targets}), Error);
  EXPECT_THROW(loss_sum_fwd(ctx(), {out32, losses, targets}), Error);
  EXPECT_THROW(loss_sum_fwd(ctx(), {out, losses, t3}), Error);
  EXPECT_NO_THROW(loss_sum_fwd(ctx(), {out, losses, targets}));
  EXPECT_EQ(out.get(1), 4.0);
}

TEST(OpState, CopyCopiesEveryElement) {
  for (DType dt : {DType::F64, DType::F32, DType::I32}) {
    const int64_t n = 100003;  // several parallel blocks
    Buf x(dt, {n}), y(dt, {7, n / 7 + 1});
    Buf yv(dt, {n});
    for (int64_t i = 0; i < n; ++i) x.set(i, dt == DType::I32 ? double(i * 7 - 5) : std::sin(double(i)));
    copy_fwd(ctx(), {yv, x});
    EXPECT_EQ(std::memcmp(yv.t.data, x.t.data, x.t.bytes()), 0) << dtype_name(dt);
  }
  Buf a(DType::F32, {4}), b(DType::F32, {5}), c(DType::F64, {4});
  EXPECT_THROW(copy_fwd(ctx(), {a, b}), Error);
  EXPECT_THROW(copy_fwd(ctx(), {a, c}), Error);
}

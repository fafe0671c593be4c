// depthwise_conv: values against the direct formula (causal and centred, K > T too), causality and
// the centred window, backward against finite differences (f64), accumulate/overwrite rules, f32
// against f64, user errors; lengths (padded batches): padded inputs taken as 0 and never read, no
// gradient into them, finite differences, length errors; the register blocks of interior rows.
#include <cmath>

#include "testutil.h"
#include "wersa/backend/backend.h"
#include "wersa/ops/conv.h"

using namespace wersa;
using namespace wersa::test;

namespace {

// The formula of conv.h, written out with explicit bounds.
double direct(const Buf& x, const Buf& w, const Buf& b, int64_t bb, int64_t t, int64_t c, bool causal) {
  const int64_t T = x.t.dim(1), C = x.t.dim(2), K = w.t.dim(1);
  const int64_t o = causal ? K - 1 : (K - 1) / 2;
  double y = b.get(c);
  for (int64_t i = 0; i < K; ++i) {
    const int64_t s = t - o + i;
    if (s >= 0 && s < T) y += w.get(c * K + i) * x.get((bb * T + s) * C + c);
  }
  return y;
}

}  // namespace

TEST(DepthwiseConv, ForwardMatchesDirectFormula) {
  for (bool causal : {true, false})
    for (auto [T, K] : {std::pair<int64_t, int64_t>{13, 4}, {13, 5}, {5, 9}, {1, 3}, {7, 1}}) {
      const int64_t B = 2, C = 19;
      Buf x(DType::F64, {B, T, C}), w(DType::F64, {C, K}), b(DType::F64, {C}), y(DType::F64, {B, T, C});
      x.randn(1), w.randn(2), b.randn(3), y.randn(4);
      depthwise_conv_fwd(ctx(), {y, x, w, b, causal});
      for (int64_t bb = 0; bb < B; ++bb)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t c = 0; c < C; ++c)
            ASSERT_NEAR(y.get((bb * T + t) * C + c), direct(x, w, b, bb, t, c, causal), 1e-12)
                << "causal " << causal << " T " << T << " K " << K << " at " << bb << "," << t << "," << c;
    }
}

TEST(DepthwiseConv, CausalOutputDependsOnlyOnPastAndPresent) {
  const int64_t B = 2, T = 13, C = 6, K = 5;
  Buf x(DType::F64, {B, T, C}), w(DType::F64, {C, K}), b(DType::F64, {C});
  Buf y1(DType::F64, {B, T, C}), y2(DType::F64, {B, T, C});
  x.randn(5), w.randn(6), b.randn(7);
  depthwise_conv_fwd(ctx(), {y1, x, w, b});
  for (int64_t t0 : {0, 4, 12}) {
    Buf x2(DType::F64, {B, T, C});
    x2.copy_from(x);
    for (int64_t bb = 0; bb < B; ++bb)
      for (int64_t t = t0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) x2.set((bb * T + t) * C + c, 100.0 + t);
    depthwise_conv_fwd(ctx(), {y2, x2, w, b});
    for (int64_t bb = 0; bb < B; ++bb)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t i = (bb * T + t) * C + c;
          if (t < t0)
            EXPECT_EQ(y2.get(i), y1.get(i)) << "t0 " << t0 << " t " << t;
          else
            EXPECT_NE(y2.get(i), y1.get(i)) << "t0 " << t0 << " t " << t;  // the present counts
        }
  }
}

TEST(DepthwiseConv, CentredWindowSeesHalfTheWidthAhead) {
  // K = 7: y[t] reads x[t-3 .. t+3]. A change at t+3 must reach y[t]; a change at t+4 must not.
  const int64_t B = 1, T = 20, C = 3, K = 7, t = 8;
  Buf x(DType::F64, {B, T, C}), w(DType::F64, {C, K}), b(DType::F64, {C});
  Buf y1(DType::F64, {B, T, C}), y2(DType::F64, {B, T, C});
  x.randn(8), w.randn(9), b.randn(10);
  depthwise_conv_fwd(ctx(), {y1, x, w, b, false});
  for (int64_t ahead : {3, 4}) {
    Buf x2(DType::F64, {B, T, C});
    x2.copy_from(x);
    for (int64_t c = 0; c < C; ++c) x2.set((t + ahead) * C + c, 50.0);
    depthwise_conv_fwd(ctx(), {y2, x2, w, b, false});
    for (int64_t c = 0; c < C; ++c) {
      if (ahead == 3)
        EXPECT_NE(y2.get(t * C + c), y1.get(t * C + c));
      else
        EXPECT_EQ(y2.get(t * C + c), y1.get(t * C + c));
    }
  }
}

TEST(DepthwiseConv, GradientsMatchFiniteDifferences) {
  for (bool causal : {true, false})
    for (int64_t K : {4, 5}) {
      const int64_t B = 2, T = 13, C = 7;
      Buf x(DType::F64, {B, T, C}), w(DType::F64, {C, K}), b(DType::F64, {C}), y(DType::F64, {B, T, C});
      Buf probe(DType::F64, {B, T, C}), dx(DType::F64, {B, T, C}), dw(DType::F64, {C, K}),
          db(DType::F64, {C});
      x.randn(11), w.randn(12), b.randn(13), probe.randn(14);
      auto loss = [&] {
        depthwise_conv_fwd(ctx(), {y, x, w, b, causal});
        return dot(y, probe);
      };
      auto backward = [&] { depthwise_conv_bwd(ctx(), {dx, dw, db, probe, x, w, causal}); };
      SCOPED_TRACE(testing::Message() << "causal " << causal << " K " << K);
      expect_grad_matches(loss, backward, {{&x, &dx, "x"}, {&w, &dw, "w"}, {&b, &db, "b"}});
    }
}

TEST(DepthwiseConv, ParameterGradientsAccumulateInputGradientOverwritesOrAdds) {
  const int64_t B = 2, T = 9, C = 5, K = 3;
  Buf x(DType::F64, {B, T, C}), w(DType::F64, {C, K}), dy(DType::F64, {B, T, C});
  Buf dx(DType::F64, {B, T, C}), dw(DType::F64, {C, K}), db(DType::F64, {C});
  Buf dx2(DType::F64, {B, T, C}), dw2(DType::F64, {C, K}), db2(DType::F64, {C});
  x.randn(15), w.randn(16), dy.randn(17);
  depthwise_conv_bwd(ctx(), {dx, dw, db, dy, x, w});
  dx2.randn(18);  // garbage that must be overwritten
  depthwise_conv_bwd(ctx(), {dx2, dw2, db2, dy, x, w});
  for (int64_t i = 0; i < dx.n(); ++i) EXPECT_NEAR(dx2.get(i), dx.get(i), 1e-12);
  DepthwiseConvBwd again{dx2, dw2, db2, dy, x, w};
  again.accumulate_dx = true;
  depthwise_conv_bwd(ctx(), again);
  for (int64_t i = 0; i < dx.n(); ++i) EXPECT_NEAR(dx2.get(i), 2 * dx.get(i), 1e-12);
  for (int64_t i = 0; i < dw.n(); ++i) EXPECT_NEAR(dw2.get(i), 2 * dw.get(i), 1e-12);
  for (int64_t i = 0; i < db.n(); ++i) EXPECT_NEAR(db2.get(i), 2 * db.get(i), 1e-12);
  // Undefined outputs are skipped; no bias is allowed.
  Buf y(DType::F64, {B, T, C});
  depthwise_conv_fwd(ctx(), {y, x, w, {}});
  depthwise_conv_bwd(ctx(), {{}, dw2, {}, dy, x, w});
}

TEST(DepthwiseConv, FloatMatchesDouble) {
  for (bool causal : {true, false}) {
    const int64_t B = 3, T = 37, C = 35, K = 33;
    Buf x(DType::F64, {B, T, C}), w(DType::F64, {C, K}), b(DType::F64, {C}), y(DType::F64, {B, T, C});
    Buf dx(DType::F64, {B, T, C}), dw(DType::F64, {C, K}), db(DType::F64, {C}), dy(DType::F64, {B, T, C});
    Buf xf(DType::F32, {B, T, C}), wf(DType::F32, {C, K}), bf(DType::F32, {C}), yf(DType::F32, {B, T, C});
    Buf dxf(DType::F32, {B, T, C}), dwf(DType::F32, {C, K}), dbf(DType::F32, {C}), dyf(DType::F32, {B, T, C});
    x.randn(19), w.randn(20), b.randn(21), dy.randn(22);
    xf.copy_from(x), wf.copy_from(w), bf.copy_from(b), dyf.copy_from(dy);
    depthwise_conv_bwd(ctx(), {dx, dw, db, dy, x, w, causal});
    depthwise_conv_bwd(ctx(), {dxf, dwf, dbf, dyf, xf, wf, causal});
    depthwise_conv_fwd(ctx(), {y, x, w, b, causal});
    depthwise_conv_fwd(ctx(), {yf, xf, wf, bf, causal});
    EXPECT_LT(rel_err(yf, y), 1e-6);
    EXPECT_LT(rel_err(dxf, dx), 1e-6);
    EXPECT_LT(rel_err(dwf, dw), 1e-6);
    EXPECT_LT(rel_err(dbf, db), 1e-6);
  }
}

TEST(DepthwiseConv, ShapeAndDtypeErrors) {
  Buf x(DType::F32, {2, 5, 4}), w(DType::F32, {4, 3}), b(DType::F32, {4}), y(DType::F32, {2, 5, 4});
  Buf wbad(DType::F32, {3, 3}), w0(DType::F32, {4, 0}), b64(DType::F64, {4}), x2(DType::F32, {10, 4});
  Buf dw_bad(DType::F32, {4, 2});
  EXPECT_THROW(depthwise_conv_fwd(ctx(), {y, x, wbad, b}), Error);
  EXPECT_THROW(depthwise_conv_fwd(ctx(), {y, x, w0, b}), Error);
  EXPECT_THROW(depthwise_conv_fwd(ctx(), {y, x, w, b64}), Error);
  EXPECT_THROW(depthwise_conv_fwd(ctx(), {y, x2, w, b}), Error);
  EXPECT_THROW(depthwise_conv_bwd(ctx(), {{}, dw_bad, {}, y, x, w}), Error);
}

namespace {

Buf lengths_of(std::vector<int32_t> n) {
  Buf l(DType::I32, {int64_t(n.size())});
  for (size_t b = 0; b < n.size(); ++b) l.p<int32_t>()[b] = n[b];
  return l;
}

}  // namespace

// Channel counts that are multiples of 16 and sequences of many 8-row blocks: the kernels' register
// blocks of interior rows (and parameter-gradient runs of 64 positions), with edges, lengths and
// accumulation around them, against the formulas written out (values and adjoints).
TEST(DepthwiseConv, InteriorBlocksMatchTheFormulas) {
  for (bool causal : {true, false})
    for (int64_t K : {5, 33}) {
      const int64_t B = 2, T = 150, C = 32, o = causal ? K - 1 : (K - 1) / 2;
      const std::vector<int32_t> n = {150, 77};
      Buf len = lengths_of(n);
      Buf x(DType::F64, {B, T, C}), w(DType::F64, {C, K}), b(DType::F64, {C}), y(DType::F64, {B, T, C});
      Buf dy(DType::F64, {B, T, C}), dx(DType::F64, {B, T, C}), dw(DType::F64, {C, K}), db(DType::F64, {C});
      x.randn(41), w.randn(42), b.randn(43), dy.randn(44), dx.randn(45), dw.randn(46), db.randn(47);
      Buf dx0(DType::F64, {B, T, C}), dw0(DType::F64, {C, K}), db0(DType::F64, {C});
      dx0.copy_from(dx), dw0.copy_from(dw), db0.copy_from(db);
      for (bool lengths : {false, true}) {
        SCOPED_TRACE(testing::Message() << "causal " << causal << " K " << K << " lengths " << lengths);
        auto end = [&](int64_t bb) { return lengths ? int64_t(n[size_t(bb)]) : T; };
        DepthwiseConvFwd f{y, x, w, b, causal};
        if (lengths) f.lengths = len;
        depthwise_conv_fwd(ctx(), f);
        dx.copy_from(dx0), dw.copy_from(dw0), db.copy_from(db0);
        DepthwiseConvBwd g{dx, dw, db, dy, x, w, causal};
        g.accumulate_dx = true;
        if (lengths) g.lengths = len;
        depthwise_conv_bwd(ctx(), g);
        for (int64_t bb = 0; bb < B; ++bb)
          for (int64_t t = 0; t < T; ++t)
            for (int64_t c = 0; c < C; ++c) {
              double yv = b.get(c), dxv = 0;
              for (int64_t i = 0; i < K; ++i) {
                const int64_t s = t - o + i;  // input row of output t's tap i
                if (s >= 0 && s < end(bb)) yv += w.get(c * K + i) * x.get((bb * T + s) * C + c);
                const int64_t u = t + o - i;  // output row whose tap i reads input t
                if (u >= 0 && u < T && t < end(bb)) dxv += w.get(c * K + i) * dy.get((bb * T + u) * C + c);
              }
              const int64_t at = (bb * T + t) * C + c;
              ASSERT_NEAR(y.get(at), yv, 1e-12) << bb << "," << t << "," << c;
              ASSERT_NEAR(dx.get(at), dx0.get(at) + dxv, 1e-12) << bb << "," << t << "," << c;
            }
        for (int64_t c = 0; c < C; ++c) {
          double dbv = 0;
          for (int64_t at = c; at < B * T * C; at += C) dbv += dy.get(at);
          ASSERT_NEAR(db.get(c), db0.get(c) + dbv, 1e-11);
          for (int64_t i = 0; i < K; ++i) {
            double dwv = 0;
            for (int64_t bb = 0; bb < B; ++bb)
              for (int64_t t = 0; t < T; ++t) {
                const int64_t s = t - o + i;
                if (s >= 0 && s < end(bb)) dwv += dy.get((bb * T + t) * C + c) * x.get((bb * T + s) * C + c);
              }
            ASSERT_NEAR(dw.get(c * K + i), dw0.get(c * K + i) + dwv, 1e-11) << c << "," << i;
          }
        }
      }
      // f32 against f64 at this shape (the register blocks and runs in f32).
      Buf xf(DType::F32, {B, T, C}), wf(DType::F32, {C, K}), bf(DType::F32, {C}), yf(DType::F32, {B, T, C});
      Buf dyf(DType::F32, {B, T, C}), dxf(DType::F32, {B, T, C}), dwf(DType::F32, {C, K}),
          dbf(DType::F32, {C});
      xf.copy_from(x), wf.copy_from(w), bf.copy_from(b), dyf.copy_from(dy);
      depthwise_conv_fwd(ctx(), {y, x, w, b, causal});
      depthwise_conv_fwd(ctx(), {yf, xf, wf, bf, causal});
      dw.zero(), db.zero(), dwf.zero(), dbf.zero();
      depthwise_conv_bwd(ctx(), {dx, dw, db, dy, x, w, causal});
      depthwise_conv_bwd(ctx(), {dxf, dwf, dbf, dyf, xf, wf, causal});
      EXPECT_LT(rel_err(yf, y), 1e-6);
      EXPECT_LT(rel_err(dxf, dx), 1e-6);
      EXPECT_LT(rel_err(dwf, dw), 1e-6);
      EXPECT_LT(rel_err(dbf, db), 1e-6);
    }
}

TEST(DepthwiseConv, LengthsTakeThePaddedInputsAsZeroAndNeverReadThem) {
  const int64_t B = 3, T = 11, C = 6, K = 5;
  const std::vector<int32_t> n = {11, 6, 1};
  Buf len = lengths_of(n);
  for (bool causal : {true, false}) {
    Buf x(DType::F64, {B, T, C}), xz(DType::F64, {B, T, C}), w(DType::F64, {C, K}), b(DType::F64, {C});
    Buf y(DType::F64, {B, T, C}), yz(DType::F64, {B, T, C});
    x.randn(31), w.randn(32), b.randn(33);
    xz.copy_from(x);
    for (int64_t i = 0; i < x.n(); ++i)  // xz: padding zeroed; x: padding NaN (a read would show)
      if ((i / C) % T >= n[size_t(i / (T * C))]) xz.set(i, 0.0), x.set(i, std::nan(""));
    DepthwiseConvFwd f{y, x, w, b, causal};
    f.lengths = len;
    depthwise_conv_fwd(ctx(), f);
    depthwise_conv_fwd(ctx(), {yz, xz, w, b, causal});
    for (int64_t i = 0; i < y.n(); ++i)
      ASSERT_NEAR(y.get(i), yz.get(i), 1e-14) << "causal " << causal << " " << i;
    // The backward: dw as over the zeroed input, dx the same at real rows and 0 at padding.
    Buf dy(DType::F64, {B, T, C}), dx(DType::F64, {B, T, C}), dw(DType::F64, {C, K}), db(DType::F64, {C});
    Buf dxz(DType::F64, {B, T, C}), dwz(DType::F64, {C, K}), dbz(DType::F64, {C});
    dy.randn(34), dx.randn(35);  // dx garbage: overwritten everywhere
    DepthwiseConvBwd g{dx, dw, db, dy, x, w, causal};
    g.lengths = len;
    depthwise_conv_bwd(ctx(), g);
    depthwise_conv_bwd(ctx(), {dxz, dwz, dbz, dy, xz, w, causal});
    for (int64_t i = 0; i < dx.n(); ++i) {
      const bool pad = (i / C) % T >= n[size_t(i / (T * C))];
      ASSERT_NEAR(dx.get(i), pad ? 0.0 : dxz.get(i), 1e-14) << "causal " << causal << " " << i;
      if (pad) ASSERT_EQ(dx.get(i), 0.0);
    }
    EXPECT_LT(rel_err(dw, dwz), 1e-14);
    EXPECT_LT(rel_err(db, dbz), 1e-14);
    // Accumulating leaves the padded rows of dx as they were.
    Buf dx2(DType::F64, {B, T, C});
    dx2.randn(36);
    Buf before(DType::F64, {B, T, C});
    before.copy_from(dx2);
    DepthwiseConvBwd acc{dx2, {}, {}, dy, x, w, causal, true};
    acc.lengths = len;
    depthwise_conv_bwd(ctx(), acc);
    for (int64_t i = 0; i < dx2.n(); ++i) {
      const bool pad = (i / C) % T >= n[size_t(i / (T * C))];
      ASSERT_NEAR(dx2.get(i), before.get(i) + (pad ? 0.0 : dxz.get(i)), 1e-12) << i;
    }
  }
}

TEST(DepthwiseConv, GradientsWithLengthsMatchFiniteDifferences) {
  for (bool causal : {true, false}) {
    const int64_t B = 3, T = 11, C = 5, K = 5;
    Buf x(DType::F64, {B, T, C}), w(DType::F64, {C, K}), b(DType::F64, {C}), y(DType::F64, {B, T, C});
    Buf probe(DType::F64, {B, T, C}), dx(DType::F64, {B, T, C}), dw(DType::F64, {C, K}), db(DType::F64, {C});
    x.randn(41), w.randn(42), b.randn(43), probe.randn(44);
    Buf len = lengths_of({11, 6, 3});
    auto loss = [&] {
      DepthwiseConvFwd f{y, x, w, b, causal};
      f.lengths = len;
      depthwise_conv_fwd(ctx(), f);
      return dot(y, probe);
    };
    auto backward = [&] {
      DepthwiseConvBwd g{dx, dw, db, probe, x, w, causal};
      g.lengths = len;
      depthwise_conv_bwd(ctx(), g);
    };
    SCOPED_TRACE(testing::Message() << "causal " << causal);
    expect_grad_matches(loss, backward, {{&x, &dx, "x"}, {&w, &dw, "w"}, {&b, &db, "b"}}, 1e-5, 1e-6, 1000);
  }
}

TEST(DepthwiseConv, BadLengthsAreErrors) {
  Buf x(DType::F32, {2, 5, 4}), w(DType::F32, {4, 3}), b(DType::F32, {4}), y(DType::F32, {2, 5, 4});
  x.randn(51), w.randn(52);
  for (int32_t bad : {0, 6}) {
    Buf len = lengths_of({5, bad});
    DepthwiseConvFwd f{y, x, w, b};
    f.lengths = len;
    expect_error_contains([&] { depthwise_conv_fwd(ctx(), f); },
                          "sequence 1 has length " + std::to_string(bad));
    DepthwiseConvBwd g{y, {}, {}, y, x, w};
    g.lengths = len;
    expect_error_contains([&] { depthwise_conv_bwd(ctx(), g); },
                          "sequence 1 has length " + std::to_string(bad));
  }
  Buf three(DType::I32, {3});
  DepthwiseConvFwd f{y, x, w, b};
  f.lengths = three;
  expect_error_contains([&] { depthwise_conv_fwd(ctx(), f); }, "should have shape [2]");
  Buf one(DType::F32, {1, 1, 4}), y1(DType::F32, {1, 1, 4}), window(DType::F32, {1, 2, 4});
  Buf len1 = lengths_of({1});
  DepthwiseConvFwd step{y1, one, w, b};
  step.window = window, step.lengths = len1;
  expect_error_contains([&] { depthwise_conv_fwd(ctx(), step); }, "takes no lengths");
}

// The parameter gradients run in tasks of 64, 32 or 16 channels, the widest that gives each thread
// two tasks: at C = 256, 1, 4 and 8 threads take each width once. The sums (taps in groups of 4
// or 8, runs of 64 positions) are the same chains whatever the width: bitwise equal, and equal to
// the f64 result to f32 accuracy; with lengths (partial runs) too.
TEST(DepthwiseConv, ParameterGradientsDoNotDependOnTheChannelBlocks) {
  const int64_t B = 2, T = 150, C = 256, K = 33;
  Buf len = lengths_of({150, 77});
  Buf x(DType::F64, {B, T, C}), w(DType::F64, {C, K}), dy(DType::F64, {B, T, C});
  x.randn(51), w.randn(52), dy.randn(53);
  Buf xf(DType::F32, {B, T, C}), wf(DType::F32, {C, K}), dyf(DType::F32, {B, T, C});
  xf.copy_from(x), wf.copy_from(w), dyf.copy_from(dy);
  for (bool lengths : {false, true}) {
    Buf dw(DType::F64, {C, K}), db(DType::F64, {C});
    DepthwiseConvBwd g{{}, dw, db, dy, x, w, true};
    if (lengths) g.lengths = len;
    depthwise_conv_bwd(ctx(), g);
    std::vector<Buf> dws, dbs;
    for (int threads : {1, 4, 8}) {
      set_cpu_threads(threads);
      dws.emplace_back(DType::F32, Shape{C, K});
      dbs.emplace_back(DType::F32, Shape{C});
      DepthwiseConvBwd gf{{}, dws.back(), dbs.back(), dyf, xf, wf, true};
      if (lengths) gf.lengths = len;
      depthwise_conv_bwd(ctx(), gf);
    }
    set_cpu_threads(0);
    for (size_t i = 1; i < dws.size(); ++i) {
      EXPECT_EQ(rel_err(dws[i], dws[0]), 0.0) << "lengths " << lengths << " run " << i;
      EXPECT_EQ(rel_err(dbs[i], dbs[0]), 0.0) << "lengths " << lengths << " run " << i;
    }
    EXPECT_LT(rel_err(dws[0], dw), 1e-6) << "lengths " << lengths;
    EXPECT_LT(rel_err(dbs[0], db), 1e-6) << "lengths " << lengths;
  }
}

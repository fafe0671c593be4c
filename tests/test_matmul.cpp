// matmul: backward against finite differences (f64), f32 kernel against the f64 result; the mixed
// precision of train.precision bf16 (and convert_bf16) against double sums of the rounded operands.
#include <cmath>
#include <limits>

#include "testutil.h"
#include "wersa/ops/elementwise.h"
#include "wersa/ops/matmul.h"

using namespace wersa;
using namespace wersa::test;

TEST(Matmul, GradientsMatchFiniteDifferences) {
  const int64_t N = 7, I = 5, O = 3;
  Buf x(DType::F64, {N, I}), w(DType::F64, {O, I}), b(DType::F64, {O}), y(DType::F64, {N, O});
  Buf probe(DType::F64, {N, O}), dx(DType::F64, {N, I}), dw(DType::F64, {O, I}), db(DType::F64, {O});
  x.randn(1), w.randn(2), b.randn(3), probe.randn(4);
  auto loss = [&] {
    matmul_fwd(ctx(), {y, x, w, b});
    return dot(y, probe);
  };
  auto backward = [&] { matmul_bwd(ctx(), {dx, dw, db, probe, x, w}); };
  expect_grad_matches(loss, backward, {{&x, &dx, "x"}, {&w, &dw, "w"}, {&b, &db, "b"}});
}

TEST(Matmul, ParameterGradientsAccumulateActivationGradientsOverwrite) {
  const int64_t N = 4, I = 3, O = 2;
  Buf x(DType::F64, {N, I}), w(DType::F64, {O, I}), dy(DType::F64, {N, O});
  Buf dx(DType::F64, {N, I}), dw(DType::F64, {O, I}), dw2(DType::F64, {O, I}), dx2(DType::F64, {N, I});
  x.randn(1), w.randn(2), dy.randn(3);
  matmul_bwd(ctx(), {dx, dw, {}, dy, x, w});
  dx2.randn(9);  // garbage that must be overwritten
  matmul_bwd(ctx(), {dx2, dw2, {}, dy, x, w});
  matmul_bwd(ctx(), {dx2, dw2, {}, dy, x, w});
  for (int64_t i = 0; i < dw.n(); ++i) EXPECT_NEAR(dw2.get(i), 2 * dw.get(i), 1e-12);
  for (int64_t i = 0; i < dx.n(); ++i) EXPECT_NEAR(dx2.get(i), dx.get(i), 1e-12);
}

TEST(Matmul, FloatMatchesDouble) {
  const int64_t N = 33, I = 17, O = 9;
  Buf x(DType::F64, {N, I}), w(DType::F64, {O, I}), y(DType::F64, {N, O});
  Buf xf(DType::F32, {N, I}), wf(DType::F32, {O, I}), yf(DType::F32, {N, O});
  x.randn(1), w.randn(2);
  xf.copy_from(x), wf.copy_from(w);
  matmul_fwd(ctx(), {y, x, w, {}});
  matmul_fwd(ctx(), {yf, xf, wf, {}});
  EXPECT_LT(rel_err(yf, y), 1e-5);
}

TEST(Matmul, ShapeMismatchIsAnError) {
  Buf x(DType::F32, {4, 3}), w(DType::F32, {2, 5}), y(DType::F32, {4, 2});
  EXPECT_THROW(matmul_fwd(ctx(), {y, x, w, {}}), Error);
}

// ---- mixed precision (bf16 = true) ------------------------------------------------------------

namespace {

double rounded(double v) { return double(bf16_to_float(float_to_bf16(float(v)))); }

// f32 x [N, I] and dy [N, O], f32 master weights [O, I] and their bf16 shadow (convert_bf16).
struct Mixed {
  int64_t N, I, O;
  Buf x, dy, wm, w, b;
  Mixed(int64_t n, int64_t i, int64_t o)
      : N(n),
        I(i),
        O(o),
        x(DType::F32, {n, i}),
        dy(DType::F32, {n, o}),
        wm(DType::F32, {o, i}),
        w(DType::BF16, {o, i}),
        b(DType::F32, {o}) {
    x.randn(1), dy.randn(2), wm.randn(3, 0.2), b.randn(4);
    convert_bf16(ctx(), {w, wm});
  }
  double wr(int64_t o, int64_t i) const { return double(bf16_to_float(w.p<bf16>()[o * I + i])); }
};

}  // namespace

TEST(MatmulMixed, ConvertRoundsToNearestEven) {
  const float one = 1.0f, tie_down = 1.0f + 0x1p-8f, tie_up = 1.0f + 3 * 0x1p-8f,
              above = 1.0f + 0x1p-8f + 0x1p-20f;
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> in = {one, tie_down, tie_up, above, -tie_up, inf, -inf, nan, 3.4e38f};
  const std::vector<float> want = {1.0f, 1.0f, 1.0f + 0x1p-6f, 1.0f + 0x1p-7f, -(1.0f + 0x1p-6f), inf, -inf,
                                   nan,  inf};
  Buf x(DType::F32, {int64_t(in.size())}), y(DType::BF16, {int64_t(in.size())});
  for (size_t i = 0; i < in.size(); ++i) x.p<float>()[i] = in[i];
  convert_bf16(ctx(), {y, x});
  for (size_t i = 0; i < in.size(); ++i) {
    const float got = bf16_to_float(y.p<bf16>()[i]);
    if (std::isnan(want[i]))
      EXPECT_TRUE(std::isnan(got)) << i;
    else
      EXPECT_EQ(got, want[i]) << i << ": " << in[i];
  }
}

// y = bf16(x) w^T + b against double sums of the rounded operands; 1100 rows cross the CPU's row
// tiles. Products of bf16 values are exact in f32, so the only error is the f32 summation (about
// 1e-7 relative); leaving x unrounded would give errors near 1e-3.
TEST(MatmulMixed, ForwardMatchesRoundedOperandsInDouble) {
  for (int64_t N : {1, 37, 1100}) {
    for (bool acc : {false, true}) {
      Mixed m(N, 19, 11);
      Buf y(DType::F32, {N, 11});
      y.randn(5);
      std::vector<double> ref(size_t(N * m.O));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t o = 0; o < m.O; ++o) {
          double s = m.b.get(o) + (acc ? y.get(n * m.O + o) : 0.0);
          for (int64_t i = 0; i < m.I; ++i) s += rounded(m.x.get(n * m.I + i)) * m.wr(o, i);
          ref[size_t(n * m.O + o)] = s;
        }
      matmul_fwd(ctx(), {y, m.x, m.w, m.b, acc, true});
      EXPECT_LT(max_rel(y, ref), 2e-6) << "N " << N << " acc " << acc;
    }
  }
}

// dx = bf16(dy) w (overwritten or accumulated), dw += bf16(dy)^T bf16(x), db += sum dy (unrounded).
TEST(MatmulMixed, BackwardMatchesRoundedOperandsInDouble) {
  for (int64_t N : {3, 1100}) {
    for (bool acc : {false, true}) {
      Mixed m(N, 13, 21);
      Buf dx(DType::F32, {N, 13}), dw(DType::F32, {21, 13}), db(DType::F32, {21});
      dx.randn(6), dw.randn(7), db.randn(8);
      std::vector<double> rdx(size_t(dx.n())), rdw(size_t(dw.n())), rdb(size_t(db.n()));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < m.I; ++i) {
          double s = acc ? dx.get(n * m.I + i) : 0.0;
          for (int64_t o = 0; o < m.O; ++o) s += rounded(m.dy.get(n * m.O + o)) * m.wr(o, i);
          rdx[size_t(n * m.I + i)] = s;
        }
      for (int64_t o = 0; o < m.O; ++o) {
        double sb = db.get(o);
        for (int64_t n = 0; n < N; ++n) sb += m.dy.get(n * m.O + o);
        rdb[size_t(o)] = sb;
        for (int64_t i = 0; i < m.I; ++i) {
          double s = dw.get(o * m.I + i);
          for (int64_t n = 0; n < N; ++n) s += rounded(m.dy.get(n * m.O + o)) * rounded(m.x.get(n * m.I + i));
          rdw[size_t(o * m.I + i)] = s;
        }
      }
      matmul_bwd(ctx(), {dx, dw, db, m.dy, m.x, m.w, acc, true});
      EXPECT_LT(max_rel(dx, rdx), 2e-6) << "N " << N << " acc " << acc;
      EXPECT_LT(max_rel(dw, rdw), 2e-6) << "N " << N << " acc " << acc;
      EXPECT_LT(max_rel(db, rdb), 2e-6) << "N " << N << " acc " << acc;
    }
  }
}

TEST(MatmulMixed, ArgumentErrors) {
  Mixed m(4, 3, 2);
  Buf y(DType::F32, {4, 2}), y64(DType::F64, {4, 2}), x64(DType::F64, {4, 3});
  // The weights must be the bf16 shadow, the activations f32.
  expect_error_contains([&] { matmul_fwd(ctx(), {y, m.x, m.wm, {}, false, true}); }, "matmul_fwd");
  expect_error_contains([&] { matmul_fwd(ctx(), {y64, x64, m.w, {}, false, true}); }, "matmul_fwd");
  expect_error_contains([&] { matmul_bwd(ctx(), {{}, {}, {}, m.dy, m.x, m.wm, false, true}); }, "matmul_bwd");
  Buf small(DType::BF16, {3});
  expect_error_contains([&] { convert_bf16(ctx(), {small, m.x}); }, "convert_bf16");
  expect_error_contains([&] { convert_bf16(ctx(), {m.x, m.x}); }, "convert_bf16");
}

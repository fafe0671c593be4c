// rope: forward against the rotate_half formula (angles at large positions), FD gradient in
// f64, rope_bwd inverts rope_fwd, relative-position property, f32 vs f64, argument errors.
#include <cmath>

#include "testutil.h"
#include "wersa/ops/rope.h"

using namespace wersa;
using namespace wersa::test;

TEST(Rope, ForwardMatchesRotateHalfFormula) {
  // T = 150 crosses the CPU table's blocks of 64 positions (angle sums between block bases).
  for (int64_t T : {int64_t(7), int64_t(150)})
    for (int64_t pos0 : {int64_t(0), int64_t(123456)}) {
      const int64_t B = 2, H = 3, d = 10, half = d / 2;
      const double theta = 10000.0;
      SCOPED_TRACE(testing::Message() << "T " << T << " pos0 " << pos0);
      Buf x(DType::F64, {B, T, H, d}), y(DType::F64, {B, T, H, d});
      x.randn(1);
      rope_fwd(ctx(), {y, x, theta, pos0});
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t h = 0; h < H; ++h) {
            const int64_t o = ((b * T + t) * H + h) * d;
            for (int64_t i = 0; i < half; ++i) {
              const long double ang = (long double)(pos0 + t) * std::pow((long double)theta, -2.0L * i / d);
              const double c = double(std::cos(ang)), s = double(std::sin(ang));
              const double x1 = x.get(o + i), x2 = x.get(o + i + half);
              EXPECT_NEAR(y.get(o + i), x1 * c - x2 * s, 1e-9);
              EXPECT_NEAR(y.get(o + i + half), x2 * c + x1 * s, 1e-9);
            }
          }
    }
}

TEST(Rope, PairsAreHalfAWidthApart) {
  // A unit vector at i lands on (i, i + d/2) only: the rotate_half layout, not adjacent pairs.
  const int64_t d = 8;
  Buf x(DType::F64, {1, 1, 1, d}), y(DType::F64, {1, 1, 1, d});
  x.set(1, 1.0);
  rope_fwd(ctx(), {y, x, 10000.0, 3});
  const double ang = 3.0 * std::pow(10000.0, -2.0 / 8.0);
  for (int64_t j = 0; j < d; ++j) {
    const double expect = j == 1 ? std::cos(ang) : j == 5 ? std::sin(ang) : 0.0;
    EXPECT_NEAR(y.get(j), expect, 1e-14) << j;
  }
}

TEST(Rope, GradientMatchesFiniteDifferences) {
  const Shape s{2, 7, 3, 6};
  Buf x(DType::F64, s), y(DType::F64, s), probe(DType::F64, s), dx(DType::F64, s);
  x.randn(1), probe.randn(2);
  auto loss = [&] {
    rope_fwd(ctx(), {y, x, 100.0, 5});
    return dot(y, probe);
  };
  auto backward = [&] { rope_bwd(ctx(), {dx, probe, 100.0, 5}); };
  expect_grad_matches(loss, backward, {{&x, &dx, "x"}});
}

TEST(Rope, BackwardInvertsForwardAlsoInPlace) {
  const Shape s{3, 13, 2, 16};
  Buf x(DType::F64, s), y(DType::F64, s), back(DType::F64, s);
  x.randn(1);
  rope_fwd(ctx(), {y, x, 10000.0, 17});
  EXPECT_GT(rel_err(y, x), 0.1);  // it did rotate
  rope_bwd(ctx(), {back, y, 10000.0, 17});
  EXPECT_LT(rel_err(back, x), 1e-14);
  rope_fwd(ctx(), {y, y, 10000.0, 17});  // in place: y = R R x
  rope_bwd(ctx(), {y, y, 10000.0, 17});
  rope_bwd(ctx(), {y, y, 10000.0, 17});
  EXPECT_LT(rel_err(y, x), 1e-14);
}

TEST(Rope, DotProductDependsOnlyOnRelativePosition) {
  const int64_t d = 12;
  Buf q(DType::F64, {1, 1, 1, d}), k(DType::F64, {1, 1, 1, d});
  Buf rq(DType::F64, {1, 1, 1, d}), rk(DType::F64, {1, 1, 1, d});
  q.randn(1), k.randn(2);
  auto score = [&](int64_t p, int64_t s) {
    rope_fwd(ctx(), {rq, q, 10000.0, p});
    rope_fwd(ctx(), {rk, k, 10000.0, s});
    return dot(rq, rk);
  };
  const double base = score(3, 1);
  EXPECT_NEAR(score(10, 8), base, 1e-12);
  EXPECT_NEAR(score(1002, 1000), base, 1e-10);
  EXPECT_NEAR(score(2, 0), base, 1e-12);
  // Other offsets give other scores (so the property is not trivially true).
  EXPECT_GT(std::fabs(score(3, 2) - base), 1e-3);
  EXPECT_GT(std::fabs(score(1, 3) - base), 1e-3);
  // The same holds for positions taken from the sequence axis rather than from pos0.
  Buf q2(DType::F64, {1, 9, 1, d}), r2(DType::F64, {1, 9, 1, d});
  for (int64_t t = 0; t < 9; ++t)
    for (int64_t j = 0; j < d; ++j) q2.set(t * d + j, t == 7 ? q.get(j) : k.get(j));
  rope_fwd(ctx(), {r2, q2, 10000.0, 0});
  double s75 = 0;
  for (int64_t j = 0; j < d; ++j) s75 += r2.get(7 * d + j) * r2.get(5 * d + j);
  EXPECT_NEAR(s75, base, 1e-12);
}

TEST(Rope, FloatMatchesDouble) {
  const Shape s{2, 13, 5, 32};
  Buf x(DType::F64, s), y(DType::F64, s), dx(DType::F64, s);
  Buf xf(DType::F32, s), yf(DType::F32, s), dxf(DType::F32, s);
  x.randn(1);
  xf.copy_from(x);
  for (int64_t pos0 : {int64_t(0), int64_t(50000)}) {  // angles in double even for f32 data
    rope_fwd(ctx(), {y, x, 10000.0, pos0});
    rope_fwd(ctx(), {yf, xf, 10000.0, pos0});
    EXPECT_LT(rel_err(yf, y), 1e-6);
    rope_bwd(ctx(), {dx, x, 10000.0, pos0});
    rope_bwd(ctx(), {dxf, xf, 10000.0, pos0});
    EXPECT_LT(rel_err(dxf, dx), 1e-6);
  }
}

TEST(Rope, ArgumentErrors) {
  Buf x(DType::F32, {2, 3, 4, 6}), y(DType::F32, {2, 3, 4, 6});
  Buf odd(DType::F32, {2, 3, 4, 5}), x3(DType::F32, {6, 4, 6}), y64(DType::F64, {2, 3, 4, 6});
  Buf ybad(DType::F32, {2, 3, 6, 4});
  EXPECT_THROW(rope_fwd(ctx(), {odd, odd, 10000.0}), Error);
  EXPECT_THROW(rope_fwd(ctx(), {x3, x3, 10000.0}), Error);
  EXPECT_THROW(rope_fwd(ctx(), {y64, x, 10000.0}), Error);
  EXPECT_THROW(rope_fwd(ctx(), {ybad, x, 10000.0}), Error);
  EXPECT_THROW(rope_fwd(ctx(), {y, x, 0.0}), Error);
  EXPECT_THROW(rope_bwd(ctx(), {y, x, -5.0}), Error);
  EXPECT_THROW(rope_fwd(ctx(), {y, x, 10000.0, -1}), Error);
  EXPECT_NO_THROW(rope_fwd(ctx(), {y, x, 10000.0, 0}));
}

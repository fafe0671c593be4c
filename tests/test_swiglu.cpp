// swiglu: FD gradients in f64, forward formula, f32 vs f64, overwrite semantics, aliasing,
// saturation, argument errors.
#include <cmath>

#include "testutil.h"
#include "wersa/ops/swiglu.h"

using namespace wersa;
using namespace wersa::test;

TEST(Swiglu, ForwardMatchesFormula) {
  Buf g(DType::F64, {3, 5, 7}), u(DType::F64, {3, 5, 7}), y(DType::F64, {3, 5, 7});
  g.randn(1, 3.0), u.randn(2);
  swiglu_fwd(ctx(), {y, g, u});
  for (int64_t i = 0; i < y.n(); ++i) {
    const double gi = g.get(i);
    EXPECT_NEAR(y.get(i), gi / (1 + std::exp(-gi)) * u.get(i), 1e-14 * (1 + std::fabs(y.get(i))));
  }
}

TEST(Swiglu, GradientsMatchFiniteDifferences) {
  const Shape s{3, 5, 7};
  Buf g(DType::F64, s), u(DType::F64, s), y(DType::F64, s), probe(DType::F64, s);
  Buf dg(DType::F64, s), du(DType::F64, s);
  g.randn(1, 3.0), u.randn(2), probe.randn(3);
  auto loss = [&] {
    swiglu_fwd(ctx(), {y, g, u});
    return dot(y, probe);
  };
  auto backward = [&] { swiglu_bwd(ctx(), {dg, du, probe, g, u}); };
  expect_grad_matches(loss, backward, {{&g, &dg, "gate"}, {&u, &du, "up"}});
}

TEST(Swiglu, GradientsAreOverwrittenAndMayAliasDy) {
  const Shape s{13, 6};
  Buf g(DType::F64, s), u(DType::F64, s), dy(DType::F64, s), dg(DType::F64, s), du(DType::F64, s);
  Buf dg2(DType::F64, s), du2(DType::F64, s);
  g.randn(1, 2.0), u.randn(2), dy.randn(3);
  swiglu_bwd(ctx(), {dg, du, dy, g, u});
  dg2.randn(7), du2.randn(8);  // garbage that must be overwritten
  swiglu_bwd(ctx(), {dg2, du2, dy, g, u});
  EXPECT_EQ(rel_err(dg2, dg), 0.0);
  EXPECT_EQ(rel_err(du2, du), 0.0);
  // dgate written over dy in place.
  swiglu_bwd(ctx(), {dy, du2, dy, g, u});
  EXPECT_EQ(rel_err(dy, dg), 0.0);
  // Forward in place over gate.
  Buf y(DType::F64, s);
  swiglu_fwd(ctx(), {y, g, u});
  swiglu_fwd(ctx(), {g, g, u});
  EXPECT_EQ(rel_err(g, y), 0.0);
}

TEST(Swiglu, FloatMatchesDoubleAndSaturatesCleanly) {
  const Shape s{37, 19};
  Buf g(DType::F64, s), u(DType::F64, s), y(DType::F64, s), dy(DType::F64, s), dg(DType::F64, s),
      du(DType::F64, s);
  Buf gf(DType::F32, s), uf(DType::F32, s), yf(DType::F32, s), dyf(DType::F32, s), dgf(DType::F32, s),
      duf(DType::F32, s);
  g.randn(1, 4.0), u.randn(2), dy.randn(3);
  g.set(0, 200.0), g.set(1, -200.0), g.set(2, 0.0);  // exp would overflow in a naive sigmoid
  gf.copy_from(g), uf.copy_from(u), dyf.copy_from(dy);
  swiglu_fwd(ctx(), {y, g, u});
  swiglu_fwd(ctx(), {yf, gf, uf});
  swiglu_bwd(ctx(), {dg, du, dy, g, u});
  swiglu_bwd(ctx(), {dgf, duf, dyf, gf, uf});
  EXPECT_LT(rel_err(yf, y), 1e-6);
  EXPECT_LT(rel_err(dgf, dg), 1e-6);
  EXPECT_LT(rel_err(duf, du), 1e-6);
  for (int64_t i = 0; i < yf.n(); ++i)
    ASSERT_TRUE(std::isfinite(yf.get(i)) && std::isfinite(dgf.get(i))) << i;
  EXPECT_NEAR(dg.get(0), dy.get(0) * u.get(0), 1e-12);        // silu'(large) = 1
  EXPECT_EQ(dgf.get(1), 0.0f);                                // silu'(very negative) = 0
  EXPECT_NEAR(dg.get(2), 0.5 * dy.get(2) * u.get(2), 1e-15);  // silu'(0) = 1/2
}

TEST(Swiglu, ArgumentErrors) {
  Buf g(DType::F32, {4, 6}), u(DType::F32, {4, 6}), y(DType::F32, {4, 6});
  Buf ubad(DType::F32, {6, 4}), u64(DType::F64, {4, 6}), dg(DType::F32, {4, 6}), du(DType::F32, {4, 6});
  EXPECT_THROW(swiglu_fwd(ctx(), {y, g, ubad}), Error);
  EXPECT_THROW(swiglu_fwd(ctx(), {y, g, u64}), Error);
  EXPECT_THROW(swiglu_fwd(ctx(), {y, {}, u}), Error);
  EXPECT_THROW(swiglu_bwd(ctx(), {dg, dg, y, g, u}), Error);  // dgate and dup in the same memory
  EXPECT_THROW(swiglu_bwd(ctx(), {dg, du, y, g, ubad}), Error);
  EXPECT_NO_THROW(swiglu_bwd(ctx(), {dg, du, y, g, u}));
}

// The packed form (the model's FFN: one GEMM writes [gate, up] per row) computes, element for
// element, what the elementwise form computes on the same values: bitwise, in float and double,
// at a width that is no multiple of the vector width (the scalar tail of every row).
TEST(Swiglu, PackedRowsMatchTheElementwiseForm) {
  for (DType dt : {DType::F32, DType::F64}) {
    const int64_t R = 9, F = 37;
    Buf g(dt, {R, F}), u(dt, {R, F}), y(dt, {R, F}), dy(dt, {R, F}), dg(dt, {R, F}), du(dt, {R, F});
    Buf gu(dt, {R, 2 * F}), yp(dt, {R, F}), dgu(dt, {R, 2 * F});
    g.randn(1, 3.0), u.randn(2), dy.randn(3), dgu.randn(4);  // dgu: garbage to be overwritten
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = 0; i < F; ++i) {
        gu.set(r * 2 * F + i, g.get(r * F + i));
        gu.set(r * 2 * F + F + i, u.get(r * F + i));
      }
    swiglu_fwd(ctx(), {y, g, u});
    swiglu_fwd(ctx(), {yp, {}, {}, gu});
    EXPECT_EQ(rel_err(yp, y), 0.0);
    swiglu_bwd(ctx(), {dg, du, dy, g, u});
    SwigluBwd b;
    b.dy = dy, b.gate_up = gu, b.dgate_up = dgu;
    swiglu_bwd(ctx(), b);
    for (int64_t r = 0; r < R; ++r)
      for (int64_t i = 0; i < F; ++i) {
        ASSERT_EQ(dgu.get(r * 2 * F + i), dg.get(r * F + i)) << "row " << r << " col " << i;
        ASSERT_EQ(dgu.get(r * 2 * F + F + i), du.get(r * F + i)) << "row " << r << " col " << i;
      }
  }
}

TEST(Swiglu, PackedArgumentErrors) {
  Buf gu(DType::F32, {4, 10}), y(DType::F32, {4, 5}), ybad(DType::F32, {4, 6}), g(DType::F32, {4, 5});
  EXPECT_THROW(swiglu_fwd(ctx(), {ybad, {}, {}, gu}), Error);  // gate_up is not [.., 2F]
  EXPECT_THROW(swiglu_fwd(ctx(), {y, g, {}, gu}), Error);      // both forms at once
  const Tensor half = gu.t.view({4, 2, 5}).rows(0, 2).view({2, 10});
  EXPECT_THROW(swiglu_fwd(ctx(), {half.view({4, 5}), {}, {}, gu}), Error);  // y inside gate_up
  SwigluBwd b;
  b.dy = y, b.gate_up = gu, b.dgate_up = gu;  // the gradient over its own input
  EXPECT_THROW(swiglu_bwd(ctx(), b), Error);
  b.dgate_up = Tensor();
  EXPECT_THROW(swiglu_bwd(ctx(), b), Error);  // a packed input without its gradient
}

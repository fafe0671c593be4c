// activations: exact values (GELU is the erf form, not the tanh approximation), FD gradients
// in f64 for each activation, f32 vs f64 over a wide range, overwrite vs accumulate, in-place,
// argument errors.
#include <cmath>
#include <string>

#include "testutil.h"
#include "wersa/ops/activation.h"

using namespace wersa;
using namespace wersa::test;

namespace {
const Activation kAll[] = {Activation::Gelu, Activation::Relu, Activation::Sigmoid, Activation::Silu};

double eval(Activation act, double v) {
  Buf x(DType::F64, {1}), y(DType::F64, {1});
  x.set(0, v);
  activation_fwd(ctx(), {y, x, act});
  return y.get(0);
}
}  // namespace

TEST(Activation, Names) {
  EXPECT_STREQ(activation_name(Activation::Gelu), "gelu");
  EXPECT_STREQ(activation_name(Activation::Relu), "relu");
  EXPECT_STREQ(activation_name(Activation::Sigmoid), "sigmoid");
  EXPECT_STREQ(activation_name(Activation::Silu), "silu");
}

TEST(Activation, KnownValues) {
  // Exact GELU: x Phi(x). The tanh approximation gives 0.841192 at 1, outside this tolerance.
  EXPECT_NEAR(eval(Activation::Gelu, 1.0), 0.8413447460685429, 1e-14);
  EXPECT_NEAR(eval(Activation::Gelu, -1.0), -0.15865525393145707, 1e-14);
  EXPECT_NEAR(eval(Activation::Gelu, -10.0), -10.0 * 7.619853024160527e-24, 1e-35);
  EXPECT_EQ(eval(Activation::Gelu, 0.0), 0.0);
  EXPECT_EQ(eval(Activation::Relu, -2.0), 0.0);
  EXPECT_EQ(eval(Activation::Relu, 2.5), 2.5);
  EXPECT_EQ(eval(Activation::Sigmoid, 0.0), 0.5);
  EXPECT_NEAR(eval(Activation::Sigmoid, 2.0), 0.8807970779778823, 1e-15);
  EXPECT_NEAR(eval(Activation::Sigmoid, -800.0), 0.0, 1e-300);
  EXPECT_NEAR(eval(Activation::Silu, 1.0), 0.7310585786300049, 1e-15);
  EXPECT_NEAR(eval(Activation::Silu, -3.0), -3.0 * 0.04742587317756678, 1e-15);
}

TEST(Activation, GradientsMatchFiniteDifferences) {
  const Shape s{7, 13};
  for (Activation act : kAll) {
    SCOPED_TRACE(activation_name(act));
    Buf x(DType::F64, s), y(DType::F64, s), probe(DType::F64, s), dx(DType::F64, s);
    x.randn(1, 2.5), probe.randn(2);
    // Keep ReLU's kink out of reach of the finite-difference step.
    for (int64_t i = 0; i < x.n(); ++i)
      if (std::fabs(x.get(i)) < 1e-3) x.set(i, 0.1);
    auto loss = [&] {
      activation_fwd(ctx(), {y, x, act});
      return dot(y, probe);
    };
    auto backward = [&] { activation_bwd(ctx(), {dx, probe, x, act}); };
    expect_grad_matches(loss, backward, {{&x, &dx, "x"}});
  }
}

TEST(Activation, DxOverwrittenOrAddedAndInPlace) {
  const Shape s{5, 9};
  for (Activation act : kAll) {
    SCOPED_TRACE(activation_name(act));
    Buf x(DType::F64, s), y(DType::F64, s), dy(DType::F64, s), dx(DType::F64, s), dx2(DType::F64, s);
    Buf prior(DType::F64, s);
    x.randn(1, 2.0), dy.randn(2), prior.randn(3);
    activation_bwd(ctx(), {dx, dy, x, act});
    dx2.randn(4);  // garbage that must be overwritten
    activation_bwd(ctx(), {dx2, dy, x, act});
    EXPECT_EQ(rel_err(dx2, dx), 0.0);
    dx2.copy_from(prior);
    activation_bwd(ctx(), {dx2, dy, x, act, true});
    for (int64_t i = 0; i < dx.n(); ++i) EXPECT_NEAR(dx2.get(i), prior.get(i) + dx.get(i), 1e-14);
    // dx over dy in place, y over x in place.
    activation_bwd(ctx(), {dy, dy, x, act});
    EXPECT_EQ(rel_err(dy, dx), 0.0);
    activation_fwd(ctx(), {y, x, act});
    activation_fwd(ctx(), {x, x, act});
    EXPECT_EQ(rel_err(x, y), 0.0);
  }
}

TEST(Activation, FloatMatchesDoubleOverAWideRange) {
  const int64_t n = 1201;
  for (Activation act : kAll) {
    SCOPED_TRACE(activation_name(act));
    Buf x(DType::F64, {n}), y(DType::F64, {n}), dy(DType::F64, {n}), dx(DType::F64, {n});
    Buf xf(DType::F32, {n}), yf(DType::F32, {n}), dyf(DType::F32, {n}), dxf(DType::F32, {n});
    for (int64_t i = 0; i < n; ++i) x.set(i, -60.0 + 0.1 * double(i));  // -60 .. 60
    dy.randn(1);
    xf.copy_from(x), dyf.copy_from(dy);
    activation_fwd(ctx(), {y, x, act});
    activation_fwd(ctx(), {yf, xf, act});
    activation_bwd(ctx(), {dx, dy, x, act});
    activation_bwd(ctx(), {dxf, dyf, xf, act});
    EXPECT_LT(rel_err(yf, y), 1e-6);
    EXPECT_LT(rel_err(dxf, dx), 1e-6);
    for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(yf.get(i)) && std::isfinite(dxf.get(i))) << i;
  }
}

TEST(Activation, ArgumentErrors) {
  Buf x(DType::F32, {4, 6}), y(DType::F32, {4, 6}), ybad(DType::F32, {4, 7}), y64(DType::F64, {4, 6});
  Buf i32(DType::I32, {4, 6});
  EXPECT_THROW(activation_fwd(ctx(), {ybad, x, Activation::Gelu}), Error);
  EXPECT_THROW(activation_fwd(ctx(), {y64, x, Activation::Gelu}), Error);
  EXPECT_THROW(activation_fwd(ctx(), {i32, i32, Activation::Relu}), Error);
  EXPECT_THROW(activation_fwd(ctx(), {y, x, static_cast<Activation>(42)}), Error);
  EXPECT_THROW(activation_bwd(ctx(), {y, ybad, x, Activation::Silu}), Error);
  EXPECT_NO_THROW(activation_bwd(ctx(), {y, y, x, Activation::Silu}));
}

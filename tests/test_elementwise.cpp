// elementwise: add / axpy / scale values and aliasing, sum_squares against a serial reference
// and bitwise stable across thread counts, FD checks of the gradients callers build from them,
// argument errors.
#include <omp.h>

#include <cmath>

#include "testutil.h"
#include "wersa/ops/adamw.h"
#include "wersa/ops/elementwise.h"

using namespace wersa;
using namespace wersa::test;

TEST(Elementwise, AddAnyShapesWithEqualNumelAndAliasing) {
  Buf a(DType::F64, {6, 7}), b(DType::F64, {42}), y(DType::F64, {3, 14});
  a.randn(1), b.randn(2);
  add_fwd(ctx(), {y, a, b});
  for (int64_t i = 0; i < y.n(); ++i) EXPECT_EQ(y.get(i), a.get(i) + b.get(i));
  Buf a2(DType::F64, {6, 7});
  a2.copy_from(a);
  add_fwd(ctx(), {a2, a2, b});  // y aliases a
  EXPECT_EQ(rel_err(a2, y), 0.0);
  Buf b2(DType::F64, {42});
  b2.copy_from(b);
  add_fwd(ctx(), {b2, a, b2});  // y aliases b
  EXPECT_EQ(rel_err(b2, y), 0.0);
}

TEST(Elementwise, AxpyAndScale) {
  Buf x(DType::F32, {5, 11}), y(DType::F32, {55}), y0(DType::F32, {55});
  x.randn(1), y.randn(2);
  y0.copy_from(y);
  axpy(ctx(), {y, x, -0.75});  // different shapes, same element count
  for (int64_t i = 0; i < y.n(); ++i) EXPECT_NEAR(y.get(i), y0.get(i) - 0.75 * x.get(i), 1e-6) << i;
  axpy(ctx(), {y, x, 0.75});
  for (int64_t i = 0; i < y.n(); ++i) EXPECT_NEAR(y.get(i), y0.get(i), 1e-6) << i;
  Buf x64(DType::F64, {9}), x64b(DType::F64, {9});
  x64.randn(3);
  x64b.copy_from(x64);
  scale_inplace(ctx(), {x64, -0.5});
  for (int64_t i = 0; i < 9; ++i) EXPECT_EQ(x64.get(i), -0.5 * x64b.get(i));
  scale_inplace(ctx(), {y0, 3.0});
  for (int64_t i = 0; i < y.n(); ++i) EXPECT_NEAR(y0.get(i), 3.0 * y.get(i), 1e-5) << i;
}

TEST(Elementwise, SumSquaresMatchesSerialReference) {
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(7), int64_t(1023), int64_t(100003)}) {
    SCOPED_TRACE(n);
    Buf x(DType::F64, {n}), xf(DType::F32, {n});
    x.randn(uint64_t(n) + 1, 3.0);
    xf.copy_from(x);
    long double ref = 0, reff = 0;
    for (int64_t i = 0; i < n; ++i) {
      ref += (long double)x.get(i) * x.get(i);
      reff += (long double)xf.get(i) * xf.get(i);
    }
    EXPECT_NEAR(sum_squares(x), double(ref), 1e-12 * double(ref));
    // f32 data, summed in double: as accurate as the double path on the same values.
    EXPECT_NEAR(sum_squares(xf), double(reff), 1e-12 * double(reff));
  }
}

TEST(Elementwise, SumSquaresIsIdenticalForAnyThreadCount) {
  const int64_t n = 1000003;
  Buf x(DType::F32, {n});
  x.randn(5, 1.0, 0.25);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const double a = sum_squares(x);
  omp_set_num_threads(3);
  const double b = sum_squares(x);
  omp_set_num_threads(7);
  const double c = sum_squares(x);
  omp_set_num_threads(saved);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
}

// The derivatives that the forwards' documentation states (elementwise.h), against central
// differences of the engine's forwards: d(sum_squares)/dx = 2x, add's identity into both inputs
// and scale's alpha. The engine has no backward op for these: the model's backward passes through
// them as block.cpp and lm_head_bwd write it (the residual stream's copy and accumulation; the
// loss scale applied with scale_inplace and axpy), and test_model checks those against central
// differences of the whole model (ModelGradients.*, ModelBackward.TheLossScaleScalesEveryGradient).
// add_fwd itself has no caller in the model.
TEST(Elementwise, ForwardsHaveTheDocumentedDerivatives) {
  // d(sum_squares)/dx = 2x.
  Buf x(DType::F64, {7, 13}), g(DType::F64, {7, 13});
  x.randn(1);
  expect_grad_matches([&] { return sum_squares(x); }, [&] { axpy(ctx(), {g, x, 2.0}); }, {{&x, &g, "x"}});
  // add: both inputs receive dy (callers accumulate it with axpy).
  Buf a(DType::F64, {13, 3}), b(DType::F64, {39}), y(DType::F64, {39}), probe(DType::F64, {39});
  Buf da(DType::F64, {13, 3}), db(DType::F64, {39});
  a.randn(2), b.randn(3), probe.randn(4);
  auto loss = [&] {
    add_fwd(ctx(), {y, a, b});
    return dot(y, probe);
  };
  auto backward = [&] {
    axpy(ctx(), {da, probe, 1.0});
    axpy(ctx(), {db, probe, 1.0});
  };
  expect_grad_matches(loss, backward, {{&a, &da, "a"}, {&b, &db, "b"}});
  // scale: d(sum(alpha x * p))/dx = alpha p.
  Buf xs(DType::F64, {11}), ys(DType::F64, {11}), ps(DType::F64, {11}), dxs(DType::F64, {11});
  xs.randn(5), ps.randn(6);
  auto loss_s = [&] {
    ys.copy_from(xs);
    scale_inplace(ctx(), {ys, -1.7});
    return dot(ys, ps);
  };
  auto backward_s = [&] {
    dxs.copy_from(ps);
    scale_inplace(ctx(), {dxs, -1.7});
  };
  expect_grad_matches(loss_s, backward_s, {{&xs, &dxs, "x"}});
}

TEST(Elementwise, ArgumentErrors) {
  Buf a(DType::F32, {4, 6}), b(DType::F32, {25}), y(DType::F32, {24}), y64(DType::F64, {24});
  Buf i32(DType::I32, {24});
  EXPECT_THROW(add_fwd(ctx(), {y, a, b}), Error);    // 25 elements, expected 24
  EXPECT_THROW(add_fwd(ctx(), {y64, a, a}), Error);  // dtype mismatch
  EXPECT_THROW(axpy(ctx(), {y, b, 1.0}), Error);
  EXPECT_THROW(axpy(ctx(), {y64, a, 1.0}), Error);
  EXPECT_THROW(axpy(ctx(), {i32, i32, 1.0}), Error);
  EXPECT_THROW(scale_inplace(ctx(), {Tensor{}, 2.0}), Error);
  EXPECT_THROW(sum_squares(i32), Error);
  EXPECT_THROW(sum_squares(Tensor{}), Error);
  EXPECT_NO_THROW(add_fwd(ctx(), {y, a, a}));
}

// AdamW (ops/adamw.h) against its formula in double, over two steps and an odd length (the vector
// loop and its tail); the four tensors must not overlap.
TEST(AdamW, TwoStepsMatchTheFormulaAndOverlapIsRejected) {
  const int64_t n = 1037;
  Buf p(DType::F32, {n}), m(DType::F32, {n}), v(DType::F32, {n}), g(DType::F32, {n});
  p.randn(31), g.randn(32), m.zero(), v.zero();
  std::vector<double> pr(n), mr(n, 0.0), vr(n, 0.0);
  for (int64_t i = 0; i < n; ++i) pr[i] = p.get(i);
  const double lr = 3e-3, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
  for (int64_t step = 1; step <= 2; ++step) {
    adamw_step(ctx(), {p, m, v, g, lr, b1, b2, eps, wd, step});
    for (int64_t i = 0; i < n; ++i) {
      const double gi = g.get(i);
      mr[i] = b1 * mr[i] + (1 - b1) * gi;
      vr[i] = b2 * vr[i] + (1 - b2) * gi * gi;
      const double mh = mr[i] / (1 - std::pow(b1, double(step))),
                   vh = vr[i] / (1 - std::pow(b2, double(step)));
      pr[i] -= lr * (mh / (std::sqrt(vh) + eps) + wd * pr[i]);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(p.get(i), pr[i], 1e-6 * (1 + std::fabs(pr[i]))) << i;
    ASSERT_NEAR(m.get(i), mr[i], 1e-6 * (1 + std::fabs(mr[i]))) << i;
    ASSERT_NEAR(v.get(i), vr[i], 1e-6 * (1 + std::fabs(vr[i]))) << i;
  }
  // A moment that shares memory with the parameters, or a gradient inside the second moment.
  Buf big(DType::F32, {2 * n});
  const Tensor lo(big.p<float>(), DType::F32, Device::CPU, {n}),
      hi(big.p<float>() + n / 2, DType::F32, Device::CPU, {n});
  EXPECT_THROW(adamw_step(ctx(), {lo, hi, v, g}), Error);
  EXPECT_THROW(adamw_step(ctx(), {p, m, lo, hi}), Error);
  EXPECT_THROW(adamw_step(ctx(), {p, p, v, g}), Error);
}

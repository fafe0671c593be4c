// rmsnorm: FD gradients in f64, forward against the formula, f32 vs f64, dx overwrite vs
// accumulate, dw accumulation and its determinism across thread counts, argument errors.
#include <omp.h>

#include <cmath>

#include "testutil.h"
#include "wersa/ops/rmsnorm.h"

using namespace wersa;
using namespace wersa::test;

TEST(RmsNorm, ForwardMatchesFormula) {
  const int64_t N = 5, C = 13;
  Buf x(DType::F64, {N, C}), w(DType::F64, {C}), y(DType::F64, {N, C}), rstd(DType::F64, {N});
  x.randn(1, 2.0, 0.5), w.randn(2, 0.3, 1.0);
  rmsnorm_fwd(ctx(), {y, rstd, x, w, 1e-6});
  for (int64_t n = 0; n < N; ++n) {
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += x.get(n * C + c) * x.get(n * C + c);
    const double r = 1 / std::sqrt(ss / C + 1e-6);
    EXPECT_NEAR(rstd.get(n), r, 1e-12 * r);
    for (int64_t c = 0; c < C; ++c) EXPECT_NEAR(y.get(n * C + c), x.get(n * C + c) * r * w.get(c), 1e-12);
  }
}

TEST(RmsNorm, GradientsMatchFiniteDifferences) {
  const int64_t N = 7, C = 13;
  Buf x(DType::F64, {N, C}), w(DType::F64, {C}), y(DType::F64, {N, C}), rstd(DType::F64, {N});
  Buf probe(DType::F64, {N, C}), dx(DType::F64, {N, C}), dw(DType::F64, {C});
  x.randn(1), w.randn(2, 0.5, 1.0), probe.randn(3);
  auto loss = [&] {
    rmsnorm_fwd(ctx(), {y, rstd, x, w, 1e-6});
    return dot(y, probe);
  };
  auto backward = [&] {
    rmsnorm_fwd(ctx(), {y, rstd, x, w, 1e-6});
    rmsnorm_bwd(ctx(), {dx, dw, probe, x, w, rstd});
  };
  expect_grad_matches(loss, backward, {{&x, &dx, "x"}, {&w, &dw, "w"}});
}

TEST(RmsNorm, DxOverwrittenOrAddedDwAccumulated) {
  const int64_t N = 6, C = 9;
  Buf x(DType::F64, {N, C}), w(DType::F64, {C}), y(DType::F64, {N, C}), rstd(DType::F64, {N});
  Buf dy(DType::F64, {N, C}), dx(DType::F64, {N, C}), dw(DType::F64, {C});
  Buf dx2(DType::F64, {N, C}), dw2(DType::F64, {C}), prior(DType::F64, {N, C});
  x.randn(1), w.randn(2, 0.5, 1.0), dy.randn(3);
  rmsnorm_fwd(ctx(), {y, rstd, x, w});
  rmsnorm_bwd(ctx(), {dx, dw, dy, x, w, rstd});
  dx2.randn(9);  // garbage that must be overwritten
  rmsnorm_bwd(ctx(), {dx2, dw2, dy, x, w, rstd});
  for (int64_t i = 0; i < dx.n(); ++i) EXPECT_NEAR(dx2.get(i), dx.get(i), 1e-12);
  prior.randn(10);
  dx2.copy_from(prior);
  rmsnorm_bwd(ctx(), {dx2, dw2, dy, x, w, rstd, true});
  for (int64_t i = 0; i < dx.n(); ++i) EXPECT_NEAR(dx2.get(i), prior.get(i) + dx.get(i), 1e-12);
  for (int64_t i = 0; i < dw.n(); ++i) EXPECT_NEAR(dw2.get(i), 2 * dw.get(i), 1e-12);
  // Undefined outputs are skipped.
  Buf dx3(DType::F64, {N, C}), dw3(DType::F64, {C});
  rmsnorm_bwd(ctx(), {dx3, {}, dy, x, w, rstd});
  rmsnorm_bwd(ctx(), {{}, dw3, dy, x, w, rstd});
  EXPECT_LT(rel_err(dx3, dx), 1e-14);
  EXPECT_LT(rel_err(dw3, dw), 1e-14);
}

TEST(RmsNorm, FloatMatchesDouble) {
  const int64_t N = 33, C = 70;
  Buf x(DType::F64, {N, C}), w(DType::F64, {C}), y(DType::F64, {N, C}), r(DType::F64, {N});
  Buf dy(DType::F64, {N, C}), dx(DType::F64, {N, C}), dw(DType::F64, {C});
  Buf xf(DType::F32, {N, C}), wf(DType::F32, {C}), yf(DType::F32, {N, C}), rf(DType::F32, {N});
  Buf dyf(DType::F32, {N, C}), dxf(DType::F32, {N, C}), dwf(DType::F32, {C});
  x.randn(1, 3.0), w.randn(2, 0.5, 1.0), dy.randn(3);
  xf.copy_from(x), wf.copy_from(w), dyf.copy_from(dy);
  rmsnorm_fwd(ctx(), {y, r, x, w});
  rmsnorm_fwd(ctx(), {yf, rf, xf, wf});
  EXPECT_LT(rel_err(yf, y), 1e-6);
  EXPECT_LT(rel_err(rf, r), 1e-6);
  rmsnorm_bwd(ctx(), {dx, dw, dy, x, w, r});
  rmsnorm_bwd(ctx(), {dxf, dwf, dyf, xf, wf, rf});
  EXPECT_LT(rel_err(dxf, dx), 1e-5);
  EXPECT_LT(rel_err(dwf, dw), 1e-5);
}

TEST(RmsNorm, WeightGradientIsIdenticalForAnyThreadCount) {
  // f64: partial sums of a different row partition would differ in the last bits.
  const int64_t N = 1001, C = 64;
  Buf x(DType::F64, {N, C}), w(DType::F64, {C}), y(DType::F64, {N, C}), r(DType::F64, {N});
  Buf dy(DType::F64, {N, C}), dx(DType::F64, {N, C}), a(DType::F64, {C}), b(DType::F64, {C});
  x.randn(1), w.randn(2, 0.5, 1.0), dy.randn(3);
  rmsnorm_fwd(ctx(), {y, r, x, w});
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  rmsnorm_bwd(ctx(), {dx, a, dy, x, w, r});
  omp_set_num_threads(3);
  rmsnorm_bwd(ctx(), {dx, b, dy, x, w, r});
  omp_set_num_threads(saved);
  for (int64_t i = 0; i < C; ++i) ASSERT_EQ(a.p<double>()[i], b.p<double>()[i]) << i;
}

TEST(RmsNorm, ArgumentErrors) {
  const int64_t N = 4, C = 6;
  Buf x(DType::F32, {N, C}), w(DType::F32, {C}), y(DType::F32, {N, C}), r(DType::F32, {N});
  Buf wbad(DType::F32, {C + 1}), w64(DType::F64, {C}), rbad(DType::F32, {N + 1}), x3(DType::F32, {N, C, 1});
  EXPECT_THROW(rmsnorm_fwd(ctx(), {y, r, x, wbad}), Error);
  EXPECT_THROW(rmsnorm_fwd(ctx(), {y, r, x, w64}), Error);
  EXPECT_THROW(rmsnorm_fwd(ctx(), {y, rbad, x, w}), Error);
  EXPECT_THROW(rmsnorm_fwd(ctx(), {y, r, x3, w}), Error);
  EXPECT_THROW(rmsnorm_fwd(ctx(), {y, r, x, w, 0.0}), Error);
  EXPECT_THROW(rmsnorm_fwd(ctx(), {y, r, x, w, -1e-6}), Error);
  EXPECT_THROW(rmsnorm_bwd(ctx(), {y, w, x, x, w, {}}), Error);  // rstd is required
  EXPECT_NO_THROW(rmsnorm_fwd(ctx(), {y, {}, x, w}));            // rstd is optional in the forward
}

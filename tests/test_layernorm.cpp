// layernorm: FD gradients in f64 (x, w, b), forward statistics, f32 vs f64, overwrite vs
// accumulate, determinism of dw/db across thread counts, argument errors.
#include <omp.h>

#include <cmath>

#include "testutil.h"
#include "wersa/common/rng.h"
#include "wersa/ops/layernorm.h"

using namespace wersa;
using namespace wersa::test;

TEST(LayerNorm, ForwardNormalisesEachRow) {
  const int64_t N = 6, C = 11;
  Buf x(DType::F64, {N, C}), w(DType::F64, {C}), b(DType::F64, {C}), y(DType::F64, {N, C});
  Buf mean(DType::F64, {N}), rstd(DType::F64, {N});
  x.randn(1, 3.0, 2.0);
  for (int64_t c = 0; c < C; ++c) w.set(c, 1.0);  // b = 0: y is the normalised row
  layernorm_fwd(ctx(), {y, mean, rstd, x, w, b, 1e-5});
  for (int64_t n = 0; n < N; ++n) {
    double s = 0, ss = 0, xs = 0;
    for (int64_t c = 0; c < C; ++c) s += y.get(n * C + c), ss += y.get(n * C + c) * y.get(n * C + c);
    for (int64_t c = 0; c < C; ++c) xs += x.get(n * C + c);
    EXPECT_NEAR(s / C, 0.0, 1e-12);
    EXPECT_NEAR(ss / C, 1.0, 1e-5);  // variance / (variance + eps)
    EXPECT_NEAR(mean.get(n), xs / C, 1e-12);
    // ... exactly: with the row's variance v, mean_c y^2 = v / (v + eps) and rstd = 1 / sqrt(v + eps).
    double v = 0;
    for (int64_t c = 0; c < C; ++c) v += (x.get(n * C + c) - xs / C) * (x.get(n * C + c) - xs / C);
    v /= C;
    EXPECT_NEAR(ss / C, v / (v + 1e-5), 1e-13);
    EXPECT_NEAR(rstd.get(n), 1 / std::sqrt(v + 1e-5), 1e-12 / std::sqrt(v + 1e-5));
  }
  // With weight and bias: y = xh w + b.
  Buf y2(DType::F64, {N, C});
  w.randn(2), b.randn(3);
  layernorm_fwd(ctx(), {y2, mean, rstd, x, w, b, 1e-5});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      EXPECT_NEAR(y2.get(n * C + c), y.get(n * C + c) * w.get(c) + b.get(c), 1e-12);
}

// Rows whose variance is comparable to eps or far below it (standard deviations 1e-5 to 1e-1
// around a mean of 3), against a long double reference of the formula: y, mean and rstd, for
// eps 1e-5 and 1e-3. Without eps (or with eps added to the standard deviation, or outside the
// square root) y and rstd of these rows change by factors up to 10^5.
TEST(LayerNorm, EpsMattersForRowsOfTinyVariance) {
  const int64_t N = 8, C = 24;
  Buf x(DType::F64, {N, C}), w(DType::F64, {C}), b(DType::F64, {C}), y(DType::F64, {N, C});
  Buf mean(DType::F64, {N}), rstd(DType::F64, {N});
  Buf x32(DType::F32, {N, C}), w32(DType::F32, {C}), b32(DType::F32, {C}), y32(DType::F32, {N, C});
  Buf mean32(DType::F32, {N}), rstd32(DType::F32, {N});
  for (int64_t n = 0; n < N; ++n) {
    const double sd = std::pow(10.0, -5.0 + 4.0 * double(n) / double(N - 1));
    for (int64_t c = 0; c < C; ++c) x.set(n * C + c, 3.0 + sd * rng_normal(7, uint64_t(n), uint64_t(c)));
  }
  w.randn(2, 0.5, 1.0), b.randn(3);
  x32.copy_from(x), w32.copy_from(w), b32.copy_from(b);
  for (double eps : {1e-5, 1e-3}) {
    SCOPED_TRACE(eps);
    layernorm_fwd(ctx(), {y, mean, rstd, x, w, b, eps});
    layernorm_fwd(ctx(), {y32, mean32, rstd32, x32, w32, b32, eps});
    for (int64_t n = 0; n < N; ++n) {
      long double m = 0, v = 0;
      for (int64_t c = 0; c < C; ++c) m += x.get(n * C + c);
      m /= C;
      for (int64_t c = 0; c < C; ++c) v += (x.get(n * C + c) - m) * (x.get(n * C + c) - m);
      v /= C;
      const long double r = 1 / std::sqrt(v + eps);
      EXPECT_NEAR(mean.get(n), double(m), 1e-14);
      EXPECT_NEAR(rstd.get(n), double(r), 1e-10 * double(r)) << "row " << n << ", variance " << double(v);
      // f32 data: the row statistics are reduced in double, so rstd is as good as the inputs.
      long double m32 = 0, v32 = 0;
      for (int64_t c = 0; c < C; ++c) m32 += x32.get(n * C + c);
      m32 /= C;
      for (int64_t c = 0; c < C; ++c) v32 += (x32.get(n * C + c) - m32) * (x32.get(n * C + c) - m32);
      v32 /= C;
      const long double r32 = 1 / std::sqrt(v32 + eps);
      EXPECT_NEAR(rstd32.get(n), double(r32), 1e-5 * double(r32)) << "row " << n;
      for (int64_t c = 0; c < C; ++c) {
        const long double want = (x.get(n * C + c) - m) * r * w.get(c) + b.get(c);
        EXPECT_NEAR(y.get(n * C + c), double(want), 1e-10 * (1 + std::fabs(double(want)))) << n << "," << c;
        const long double want32 = (x32.get(n * C + c) - m32) * r32 * w32.get(c) + b32.get(c);
        // f32 rounds x - mean: up to an ulp of |x| + |mean|, times rstd and w.
        const double tol32 = std::ldexp(std::fabs(x32.get(n * C + c)) + double(m32), -23) * double(r32) *
                                 std::fabs(w32.get(c)) +
                             1e-6 * (1 + std::fabs(double(want32)));
        EXPECT_NEAR(y32.get(n * C + c), double(want32), tol32) << n << "," << c;
      }
    }
  }
}

TEST(LayerNorm, GradientsMatchFiniteDifferences) {
  const int64_t N = 13, C = 7;
  Buf x(DType::F64, {N, C}), w(DType::F64, {C}), b(DType::F64, {C}), y(DType::F64, {N, C});
  Buf mean(DType::F64, {N}), rstd(DType::F64, {N}), probe(DType::F64, {N, C});
  Buf dx(DType::F64, {N, C}), dw(DType::F64, {C}), db(DType::F64, {C});
  x.randn(1, 1.5, 0.3), w.randn(2, 0.5, 1.0), b.randn(3), probe.randn(4);
  auto loss = [&] {
    layernorm_fwd(ctx(), {y, mean, rstd, x, w, b});
    return dot(y, probe);
  };
  auto backward = [&] {
    layernorm_fwd(ctx(), {y, mean, rstd, x, w, b});
    layernorm_bwd(ctx(), {dx, dw, db, probe, x, w, mean, rstd});
  };
  expect_grad_matches(loss, backward, {{&x, &dx, "x"}, {&w, &dw, "w"}, {&b, &db, "b"}});
}

TEST(LayerNorm, DxOverwrittenParameterGradientsAccumulated) {
  const int64_t N = 9, C = 5;
  Buf x(DType::F64, {N, C}), w(DType::F64, {C}), b(DType::F64, {C}), y(DType::F64, {N, C});
  Buf mean(DType::F64, {N}), rstd(DType::F64, {N}), dy(DType::F64, {N, C});
  Buf dx(DType::F64, {N, C}), dw(DType::F64, {C}), db(DType::F64, {C});
  Buf dx2(DType::F64, {N, C}), dw2(DType::F64, {C}), db2(DType::F64, {C});
  x.randn(1), w.randn(2, 0.5, 1.0), b.randn(3), dy.randn(4);
  layernorm_fwd(ctx(), {y, mean, rstd, x, w, b});
  layernorm_bwd(ctx(), {dx, dw, db, dy, x, w, mean, rstd});
  dx2.randn(8);  // garbage that must be overwritten
  layernorm_bwd(ctx(), {dx2, dw2, db2, dy, x, w, mean, rstd});
  layernorm_bwd(ctx(), {dx2, dw2, db2, dy, x, w, mean, rstd});
  for (int64_t i = 0; i < dx.n(); ++i) EXPECT_NEAR(dx2.get(i), dx.get(i), 1e-12);
  for (int64_t i = 0; i < C; ++i) EXPECT_NEAR(dw2.get(i), 2 * dw.get(i), 1e-12);
  for (int64_t i = 0; i < C; ++i) EXPECT_NEAR(db2.get(i), 2 * db.get(i), 1e-12);
  // Any of dx, dw, db may be skipped.
  Buf dx3(DType::F64, {N, C}), db3(DType::F64, {C});
  layernorm_bwd(ctx(), {dx3, {}, {}, dy, x, w, mean, rstd});
  layernorm_bwd(ctx(), {{}, {}, db3, dy, x, w, mean, rstd});
  EXPECT_LT(rel_err(dx3, dx), 1e-14);
  EXPECT_LT(rel_err(db3, db), 1e-14);
}

TEST(LayerNorm, FloatMatchesDouble) {
  // Head LayerNorm layout: rows [B*T*H, d] = [2*7*3, 16].
  const int64_t N = 42, C = 16;
  Buf x(DType::F64, {N, C}), w(DType::F64, {C}), b(DType::F64, {C}), y(DType::F64, {N, C});
  Buf m(DType::F64, {N}), r(DType::F64, {N}), dy(DType::F64, {N, C});
  Buf dx(DType::F64, {N, C}), dw(DType::F64, {C}), db(DType::F64, {C});
  Buf xf(DType::F32, {N, C}), wf(DType::F32, {C}), bf(DType::F32, {C}), yf(DType::F32, {N, C});
  Buf mf(DType::F32, {N}), rf(DType::F32, {N}), dyf(DType::F32, {N, C});
  Buf dxf(DType::F32, {N, C}), dwf(DType::F32, {C}), dbf(DType::F32, {C});
  x.randn(1, 2.0, 1.0), w.randn(2, 0.5, 1.0), b.randn(3), dy.randn(4);
  xf.copy_from(x), wf.copy_from(w), bf.copy_from(b), dyf.copy_from(dy);
  layernorm_fwd(ctx(), {y, m, r, x, w, b});
  layernorm_fwd(ctx(), {yf, mf, rf, xf, wf, bf});
  EXPECT_LT(rel_err(yf, y), 1e-6);
  layernorm_bwd(ctx(), {dx, dw, db, dy, x, w, m, r});
  layernorm_bwd(ctx(), {dxf, dwf, dbf, dyf, xf, wf, mf, rf});
  EXPECT_LT(rel_err(dxf, dx), 1e-5);
  EXPECT_LT(rel_err(dwf, dw), 1e-5);
  EXPECT_LT(rel_err(dbf, db), 1e-5);
}

TEST(LayerNorm, ParameterGradientsAreIdenticalForAnyThreadCount) {
  // f64: partial sums of a different row partition would differ in the last bits.
  const int64_t N = 777, C = 48;
  Buf x(DType::F64, {N, C}), w(DType::F64, {C}), b(DType::F64, {C}), y(DType::F64, {N, C});
  Buf m(DType::F64, {N}), r(DType::F64, {N}), dy(DType::F64, {N, C}), dx(DType::F64, {N, C});
  Buf dw1(DType::F64, {C}), db1(DType::F64, {C}), dw2(DType::F64, {C}), db2(DType::F64, {C});
  x.randn(1), w.randn(2), b.randn(3), dy.randn(4);
  layernorm_fwd(ctx(), {y, m, r, x, w, b});
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  layernorm_bwd(ctx(), {dx, dw1, db1, dy, x, w, m, r});
  omp_set_num_threads(5);
  layernorm_bwd(ctx(), {dx, dw2, db2, dy, x, w, m, r});
  omp_set_num_threads(saved);
  for (int64_t i = 0; i < C; ++i) {
    ASSERT_EQ(dw1.p<double>()[i], dw2.p<double>()[i]) << i;
    ASSERT_EQ(db1.p<double>()[i], db2.p<double>()[i]) << i;
  }
}

TEST(LayerNorm, ArgumentErrors) {
  const int64_t N = 4, C = 6;
  Buf x(DType::F32, {N, C}), w(DType::F32, {C}), b(DType::F32, {C}), y(DType::F32, {N, C});
  Buf m(DType::F32, {N}), r(DType::F32, {N}), bbad(DType::F32, {C - 1}), m64(DType::F64, {N});
  EXPECT_THROW(layernorm_fwd(ctx(), {y, m, r, x, w, bbad}), Error);
  EXPECT_THROW(layernorm_fwd(ctx(), {y, m64, r, x, w, b}), Error);
  EXPECT_THROW(layernorm_fwd(ctx(), {y, m, r, x, w, {}}), Error);
  EXPECT_THROW(layernorm_fwd(ctx(), {y, m, r, x, w, b, 0.0}), Error);
  EXPECT_THROW(layernorm_bwd(ctx(), {y, w, b, y, x, w, {}, r}), Error);  // mean is required
  EXPECT_THROW(layernorm_bwd(ctx(), {y, w, bbad, y, x, w, m, r}), Error);
  EXPECT_NO_THROW(layernorm_fwd(ctx(), {y, {}, {}, x, w, b}));
}

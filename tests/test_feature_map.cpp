// feature_map: values against the formula, backward against finite differences (f64), any leading
// rank, the order-1 arc-cosine kernel that shared features approximate, init_omega's distribution
// and reproducibility, f32 against f64, user errors.
#include <cmath>

#include "testutil.h"
#include "wersa/ops/feature_map.h"

using namespace wersa;
using namespace wersa::test;

TEST(FeatureMap, ForwardMatchesFormula) {
  const int64_t R = 9, d = 5, m = 11;
  Buf x(DType::F64, {R, d}), omega(DType::F64, {d, m}), phi(DType::F64, {R, m});
  x.randn(1);
  init_omega(omega, 2, 3);
  phi.randn(4);  // overwritten
  feature_map_fwd(ctx(), {phi, x, omega});
  int positive = 0;
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < m; ++j) {
      double u = 0;
      for (int64_t i = 0; i < d; ++i) u += x.get(r * d + i) * omega.get(i * m + j);
      EXPECT_NEAR(phi.get(r * m + j), std::max(u, 0.0) / std::sqrt(double(m)), 1e-14);
      positive += u > 0;
    }
  EXPECT_GT(positive, 0);
  EXPECT_LT(positive, R * m);
}

TEST(FeatureMap, GradientMatchesFiniteDifferences) {
  const int64_t B = 2, T = 7, d = 5, m = 13;
  Buf x(DType::F64, {B, T, d}), omega(DType::F64, {d, m}), phi(DType::F64, {B, T, m});
  Buf probe(DType::F64, {B, T, m}), dx(DType::F64, {B, T, d});
  x.randn(5), probe.randn(6);
  init_omega(omega, 7, 0);
  auto loss = [&] {
    feature_map_fwd(ctx(), {phi, x, omega});
    return dot(phi, probe);
  };
  auto backward = [&] {
    feature_map_fwd(ctx(), {phi, x, omega});
    dx.randn(8);  // overwritten
    feature_map_bwd(ctx(), {dx, probe, phi, omega});
  };
  expect_grad_matches(loss, backward, {{&x, &dx, "x"}});
}

TEST(FeatureMap, LeadingDimensionsAreFlattened) {
  const int64_t d = 4, m = 6;
  Buf omega(DType::F64, {d, m});
  init_omega(omega, 9, 1);
  Buf x4(DType::F64, {2, 3, 5, d}), phi4(DType::F64, {2, 3, 5, m}), x2(DType::F64, {30, d}),
      phi2(DType::F64, {30, m});
  x4.randn(10);
  x2.copy_from(x4);
  feature_map_fwd(ctx(), {phi4, x4, omega});
  feature_map_fwd(ctx(), {phi2, x2, omega});
  for (int64_t i = 0; i < phi2.n(); ++i) EXPECT_EQ(phi4.get(i), phi2.get(i));
  Buf dx4(DType::F64, {2, 3, 5, d}), dx2(DType::F64, {30, d});
  feature_map_bwd(ctx(), {dx4, phi4, phi4, omega});
  feature_map_bwd(ctx(), {dx2, phi2, phi2, omega});
  for (int64_t i = 0; i < dx2.n(); ++i) EXPECT_EQ(dx4.get(i), dx2.get(i));
}

TEST(FeatureMap, BackwardChunksAgreeWithOneShot) {
  // R * m above the backward's 1M-element scratch, so several row chunks (the last one partial).
  const int64_t R = 3001, d = 8, m = 700;
  Buf x(DType::F64, {R, d}), omega(DType::F64, {d, m}), phi(DType::F64, {R, m}), dphi(DType::F64, {R, m});
  Buf dx(DType::F64, {R, d});
  x.randn(11), dphi.randn(12);
  init_omega(omega, 13, 2);
  feature_map_fwd(ctx(), {phi, x, omega});
  feature_map_bwd(ctx(), {dx, dphi, phi, omega});
  for (int64_t r : {int64_t(0), int64_t(1497), int64_t(1498), R - 1})
    for (int64_t i = 0; i < d; ++i) {
      double want = 0;
      for (int64_t j = 0; j < m; ++j)
        if (phi.get(r * m + j) > 0) want += dphi.get(r * m + j) * omega.get(i * m + j);
      EXPECT_NEAR(dx.get(r * d + i), want / std::sqrt(double(m)), 1e-12) << "row " << r;
    }
}

TEST(FeatureMap, SharedFeaturesApproximateArcCosineKernel) {
  // With w ~ N(0, I/d): E[relu(w.x) relu(w.y)] = (1/d) E_{u~N(0,I)}[relu(u.x) relu(u.y)]
  //   = |x||y| / (2 pi d) * (sin th + (pi - th) cos th)        (Cho & Saul, order 1),
  // and phi(x).phi(y) = (1/m) sum_j relu(w_j.x) relu(w_j.y) is its Monte Carlo estimate.
  const int64_t d = 16, m = 50000;
  Buf omega(DType::F64, {d, m});
  init_omega(omega, 2024, 7);
  const double pi = 3.14159265358979323846;
  double ratio_sum = 0;
  int pairs = 0;
  for (uint64_t trial = 0; trial < 4; ++trial)
    for (double th : {0.0, pi / 6, pi / 3, pi / 2, 2 * pi / 3}) {
      Buf e(DType::F64, {2, d});
      e.randn(100 + trial);
      // Gram-Schmidt: u, v orthonormal.
      double nu = 0, uv = 0, nv = 0;
      for (int64_t i = 0; i < d; ++i) nu += e.get(i) * e.get(i);
      for (int64_t i = 0; i < d; ++i) e.set(i, e.get(i) / std::sqrt(nu));
      for (int64_t i = 0; i < d; ++i) uv += e.get(i) * e.get(d + i);
      for (int64_t i = 0; i < d; ++i) e.set(d + i, e.get(d + i) - uv * e.get(i));
      for (int64_t i = 0; i < d; ++i) nv += e.get(d + i) * e.get(d + i);
      for (int64_t i = 0; i < d; ++i) e.set(d + i, e.get(d + i) / std::sqrt(nv));
      const double nx = 3.5, ny = 0.4;  // norms far from 1: the kernel is homogeneous in each
      Buf xy(DType::F64, {2, d}), phi(DType::F64, {2, m});
      for (int64_t i = 0; i < d; ++i) {
        xy.set(i, nx * e.get(i));
        xy.set(d + i, ny * (std::cos(th) * e.get(i) + std::sin(th) * e.get(d + i)));
      }
      feature_map_fwd(ctx(), {phi, xy, omega});
      double est = 0;
      for (int64_t j = 0; j < m; ++j) est += phi.get(j) * phi.get(m + j);
      const double want = nx * ny / (2 * pi * d) * (std::sin(th) + (pi - th) * std::cos(th));
      // Monte Carlo standard error at m = 50000: ~1% at th = 0, ~2% at 2 pi / 3.
      EXPECT_NEAR(est / want, 1.0, 0.05) << "theta " << th << " trial " << trial;
      ratio_sum += est / want, ++pairs;
    }
  // The average over 20 pairs pins the constant (a factor 2 or d would be far outside).
  EXPECT_NEAR(ratio_sum / pairs, 1.0, 0.02);
}

TEST(FeatureMap, InitOmegaIsNormalWithVarianceOneOverD) {
  const int64_t d = 32, m = 4096;
  Buf omega(DType::F64, {d, m}), again(DType::F64, {d, m}), other(DType::F64, {d, m}),
      omegaf(DType::F32, {d, m});
  init_omega(omega, 42, 1);
  init_omega(again, 42, 1);
  init_omega(other, 42, 2);
  init_omega(omegaf, 42, 1);
  double s = 0, s2 = 0;
  int64_t same = 0;
  for (int64_t i = 0; i < omega.n(); ++i) {
    s += omega.get(i), s2 += omega.get(i) * omega.get(i);
    EXPECT_EQ(again.get(i), omega.get(i));
    EXPECT_EQ(float(omega.get(i)), float(omegaf.get(i)));
    same += other.get(i) == omega.get(i);
  }
  const double n = double(omega.n()), mean = s / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 4.0 / std::sqrt(n * d));  // 4 standard errors of the mean
  EXPECT_NEAR(var * d, 1.0, 0.03);                 // std of the variance estimate ~ sqrt(2/n) = 0.4%
  EXPECT_EQ(same, 0);
  // The value of element i depends only on (seed, stream, i).
  EXPECT_EQ(omega.get(777), rng_normal(42, 1, 777) / std::sqrt(double(d)));
}

TEST(FeatureMap, FloatMatchesDouble) {
  const int64_t R = 67, d = 24, m = 129;
  Buf x(DType::F64, {R, d}), omega(DType::F64, {d, m}), phi(DType::F64, {R, m}), dphi(DType::F64, {R, m});
  Buf dx(DType::F64, {R, d});
  Buf xf(DType::F32, {R, d}), omegaf(DType::F32, {d, m}), phif(DType::F32, {R, m}), dphif(DType::F32, {R, m});
  Buf dxf(DType::F32, {R, d});
  x.randn(14), dphi.randn(15);
  init_omega(omega, 16, 3);
  xf.copy_from(x), omegaf.copy_from(omega), dphif.copy_from(dphi);
  feature_map_fwd(ctx(), {phi, x, omega});
  feature_map_fwd(ctx(), {phif, xf, omegaf});
  EXPECT_LT(rel_err(phif, phi), 1e-5);
  // The backward takes the ReLU mask from phi; give both precisions the same phi so that an entry
  // rounded across zero cannot flip the mask.
  Buf phi_from_f(DType::F64, {R, m});
  phi_from_f.copy_from(phif);
  feature_map_bwd(ctx(), {dx, dphi, phi_from_f, omega});
  feature_map_bwd(ctx(), {dxf, dphif, phif, omegaf});
  EXPECT_LT(rel_err(dxf, dx), 1e-5);
}

TEST(FeatureMap, ShapeAndDtypeErrors) {
  Buf x(DType::F32, {4, 5}), omega(DType::F32, {5, 8}), phi(DType::F32, {4, 8});
  Buf x1(DType::F32, {20}), phi1(DType::F32, {32}), omega_bad(DType::F32, {6, 8}),
      phi_bad(DType::F32, {4, 7});
  Buf omega64(DType::F64, {5, 8}), phi3(DType::F32, {2, 2, 8}), omega_i(DType::I32, {5, 8});
  EXPECT_NO_THROW(feature_map_fwd(ctx(), {phi, x, omega}));
  EXPECT_THROW(feature_map_fwd(ctx(), {phi1, x1, omega}), Error);
  EXPECT_THROW(feature_map_fwd(ctx(), {phi, x, omega_bad}), Error);
  EXPECT_THROW(feature_map_fwd(ctx(), {phi_bad, x, omega}), Error);
  EXPECT_THROW(feature_map_fwd(ctx(), {phi, x, omega64}), Error);
  EXPECT_THROW(feature_map_fwd(ctx(), {phi3, x, omega}), Error);  // leading dims must match
  EXPECT_THROW(feature_map_bwd(ctx(), {x, phi, phi_bad, omega}), Error);
  EXPECT_THROW(init_omega(omega_i, 1, 2), Error);
  EXPECT_THROW(init_omega(x1, 1, 2), Error);
}

// ---- the exp map (FAVOR+ positive features) ---------------------------------------------------

TEST(FeatureMapExp, ForwardMatchesFormulaAndInitIsUnitVariance) {
  const int64_t R = 7, d = 6, m = 9;
  Buf x(DType::F64, {R, d}), omega(DType::F64, {d, m}), phi(DType::F64, {R, m});
  x.randn(21);
  init_omega(omega, 22, 3, FeatureMapKind::Exp);
  Buf relu_omega(DType::F64, {d, m});
  init_omega(relu_omega, 22, 3, FeatureMapKind::Relu);
  for (int64_t i = 0; i < omega.n(); ++i)  // the same draws, without the 1/sqrt(d)
    EXPECT_NEAR(omega.get(i), relu_omega.get(i) * std::sqrt(double(d)), 1e-12);
  phi.randn(4);  // overwritten
  feature_map_fwd(ctx(), {phi, x, omega, FeatureMapKind::Exp});
  const double s = std::pow(double(d), -0.25);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t j = 0; j < m; ++j) {
      double u = 0, sq = 0;
      for (int64_t i = 0; i < d; ++i) {
        const double y = x.get(r * d + i) * s;
        u += y * omega.get(i * m + j);
        sq += y * y;
      }
      const double want = std::exp(u - sq / 2) / std::sqrt(double(m));
      EXPECT_NEAR(phi.get(r * m + j), want, 1e-13 * std::max(1.0, want));
      // The bound of the spec: every exponent is at most |omega_j|^2 / 2.
      double w2 = 0;
      for (int64_t i = 0; i < d; ++i) w2 += omega.get(i * m + j) * omega.get(i * m + j);
      EXPECT_LE(u - sq / 2, w2 / 2 + 1e-12);
    }
}

TEST(FeatureMapExp, GradientMatchesFiniteDifferences) {
  // Rows over the backward's 1M-element chunk (R * m > 2^20) check the chunked correction too.
  for (int64_t T : {int64_t(7), int64_t(2000)}) {
    const int64_t B = 2, d = 5, m = T > 7 ? 600 : 13;  // 4000 x 600: three row chunks
    Buf x(DType::F64, {B, T, d}), omega(DType::F64, {d, m}), phi(DType::F64, {B, T, m});
    Buf probe(DType::F64, {B, T, m}), dx(DType::F64, {B, T, d});
    x.randn(25), probe.randn(26);
    init_omega(omega, 27, 0, FeatureMapKind::Exp);
    auto loss = [&] {
      feature_map_fwd(ctx(), {phi, x, omega, FeatureMapKind::Exp});
      return dot(phi, probe);
    };
    auto backward = [&] {
      feature_map_fwd(ctx(), {phi, x, omega, FeatureMapKind::Exp});
      dx.randn(28);  // overwritten
      feature_map_bwd(ctx(), {dx, probe, phi, omega, x, FeatureMapKind::Exp});
    };
    expect_grad_matches(loss, backward, {{&x, &dx, "x"}}, 1e-5, 1e-6, T > 7 ? 24 : 200);
  }
}

TEST(FeatureMapExp, ApproximatesTheSoftmaxKernel) {
  // E[phi(q) . phi(k)] = exp(q . k / sqrt(d)) for Omega ~ N(0, 1): a Monte Carlo estimate with
  // m = 200000 features, for pairs of moderate norm (the estimator's variance grows with |q + k|).
  const int64_t d = 8, m = 200000;
  Buf omega(DType::F64, {d, m});
  init_omega(omega, 2026, 5, FeatureMapKind::Exp);
  for (uint64_t trial = 0; trial < 6; ++trial) {
    Buf qk(DType::F64, {2, d}), phi(DType::F64, {2, m});
    qk.randn(300 + trial);
    for (int64_t i = 0; i < 2 * d; ++i) qk.set(i, 0.6 * qk.get(i));
    feature_map_fwd(ctx(), {phi, qk, omega, FeatureMapKind::Exp});
    double est = 0, dotqk = 0;
    for (int64_t j = 0; j < m; ++j) est += phi.get(j) * phi.get(m + j);
    for (int64_t i = 0; i < d; ++i) dotqk += qk.get(i) * qk.get(d + i);
    EXPECT_NEAR(est / std::exp(dotqk / std::sqrt(double(d))), 1.0, 0.05) << "trial " << trial;
  }
}

TEST(FeatureMapExp, FloatMatchesDoubleAndNeedsX) {
  const int64_t R = 50, d = 16, m = 32;
  Buf x(DType::F64, {R, d}), omega(DType::F64, {d, m}), phi(DType::F64, {R, m}), dphi(DType::F64, {R, m}),
      dx(DType::F64, {R, d});
  Buf xf(DType::F32, {R, d}), omegaf(DType::F32, {d, m}), phif(DType::F32, {R, m}), dphif(DType::F32, {R, m}),
      dxf(DType::F32, {R, d});
  x.randn(31), dphi.randn(32);
  init_omega(omega, 33, 1, FeatureMapKind::Exp);
  xf.copy_from(x), omegaf.copy_from(omega), dphif.copy_from(dphi);
  feature_map_fwd(ctx(), {phi, x, omega, FeatureMapKind::Exp});
  feature_map_fwd(ctx(), {phif, xf, omegaf, FeatureMapKind::Exp});
  feature_map_bwd(ctx(), {dx, dphi, phi, omega, x, FeatureMapKind::Exp});
  feature_map_bwd(ctx(), {dxf, dphif, phif, omegaf, xf, FeatureMapKind::Exp});
  EXPECT_LT(rel_err(phif, phi), 1e-5);
  EXPECT_LT(rel_err(dxf, dx), 1e-5);
  expect_error_contains(
      [&] {
        feature_map_bwd(ctx(), {dx, dphi, phi, omega, {}, FeatureMapKind::Exp});
      },
      "x");
}

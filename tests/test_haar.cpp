// haar: the spec's invariants (perfect reconstruction, causality and the exact support of every
// coefficient, the closed forms of analysis and synthesis), backward passes against finite
// differences (f64) including the shared gates of q and k, f32 against f64, user errors.
#include <cmath>

#include "testutil.h"
#include "wersa/ops/haar.h"

using namespace wersa;
using namespace wersa::test;

namespace {

Buf analysis(const Buf& x, int L) {
  const Tensor& t = x.t;
  Buf coef(t.dtype, {L + 1, t.dim(0), t.dim(1), t.dim(2)});
  haar_analysis_fwd(ctx(), {coef, x, L});
  return coef;
}

Buf synthesis(const Buf& coef, const Buf& gamma, int L) {
  const Tensor& c = coef.t;
  Buf y(c.dtype, {c.dim(1), c.dim(2), c.dim(3)});
  haar_synthesis_fwd(ctx(), {y, coef, gamma, L});
  return y;
}

Buf ones_gamma(DType dt, int64_t B, int64_t T, int L) {
  Buf g(dt, {B, T, L + 1});
  for (int64_t i = 0; i < g.n(); ++i) g.set(i, 1.0);
  return g;
}

double max_abs_diff(const Buf& a, const Buf& b) {
  double m = 0;
  for (int64_t i = 0; i < a.n(); ++i) m = std::max(m, std::fabs(a.get(i) - b.get(i)));
  return m;
}

}  // namespace

TEST(Haar, PerfectReconstructionWithUnitGates) {
  const int64_t B = 2, C = 3;
  for (DType dt : {DType::F64, DType::F32})
    for (int64_t T : {1, 5, 13, 64, 100})
      for (int L = 1; L <= 4; ++L) {
        Buf x(dt, {B, T, C});
        x.randn(uint64_t(T * 10 + L));
        const Buf y = synthesis(analysis(x, L), ones_gamma(dt, B, T, L), L);
        const double tol = dt == DType::F64 ? 1e-12 : 1e-5;
        EXPECT_LT(max_abs_diff(y, x), tol) << dtype_name(dt) << " T " << T << " L " << L;
      }
}

TEST(Haar, AnalysisMatchesWindowSums) {
  // a_l[t] = 2^(-l/2) sum_{j<2^l} x[t-j];  d_l[t] = 2^(-l/2) (sum_{j<D} x[t-j] - sum_{D<=j<2D} x[t-j]),
  // D = 2^(l-1), with x = 0 before t = 0.
  const int64_t B = 2, T = 29, C = 37;
  const int L = 5;
  Buf x(DType::F64, {B, T, C});
  x.randn(1);
  const Buf coef = analysis(x, L);
  auto X = [&](int64_t b, int64_t t, int64_t c) { return t < 0 ? 0.0 : x.get((b * T + t) * C + c); };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c)
        for (int l = 1; l <= L; ++l) {
          const int64_t D = int64_t(1) << (l - 1);
          double recent = 0, older = 0;
          for (int64_t j = 0; j < D; ++j) recent += X(b, t - j, c), older += X(b, t - D - j, c);
          const double k = std::pow(2.0, -0.5 * l);
          const int64_t at = (b * T + t) * C + c;
          ASSERT_NEAR(coef.get((l - 1) * B * T * C + at), k * (recent - older), 1e-12) << "d_" << l;
          if (l == L) {
            ASSERT_NEAR(coef.get(L * B * T * C + at), k * (recent + older), 1e-12) << "a_L";
          }
        }
}

TEST(Haar, CoefficientsDependExactlyOnTheirCausalWindow) {
  // d_l[t] and a_l[t] depend on x[p] exactly when t - 2^l < p <= t: unchanged when x[t - 2^l] (or a
  // future x) changes, changed when x[t - 2^l + 1] changes.
  const int64_t B = 1, T = 21, C = 2;
  const int L = 4;
  Buf x(DType::F64, {B, T, C});
  x.randn(2);
  const Buf base = analysis(x, L);
  for (int64_t p = 0; p < T; ++p) {
    Buf x2(DType::F64, {B, T, C});
    x2.copy_from(x);
    x2.set(p * C + 1, x.get(p * C + 1) + 0.75);  // channel 1 only
    const Buf coef = analysis(x2, L);
    for (int lvl = 0; lvl <= L; ++lvl) {
      const int l = lvl < L ? lvl + 1 : L;  // coef[lvl] is d_{lvl+1}, coef[L] is a_L
      for (int64_t t = 0; t < T; ++t) {
        const bool inside = p <= t && t - p < (int64_t(1) << l);
        const int64_t i1 = (lvl * T + t) * C + 1, i0 = (lvl * T + t) * C;
        EXPECT_EQ(coef.get(i0), base.get(i0));  // channels are independent
        if (inside)
          EXPECT_NE(coef.get(i1), base.get(i1)) << "level " << lvl << " t " << t << " p " << p;
        else
          EXPECT_EQ(coef.get(i1), base.get(i1)) << "level " << lvl << " t " << t << " p " << p;
      }
    }
  }
}

TEST(Haar, GatedSynthesisIsCausal) {
  const int64_t B = 2, T = 19, C = 5;
  const int L = 3;
  Buf x(DType::F64, {B, T, C}), gamma(DType::F64, {B, T, L + 1});
  x.randn(3), gamma.uniform(4, 0.1, 1.0);
  const Buf y = synthesis(analysis(x, L), gamma, L);
  for (int64_t t0 : {0, 1, 7, 18}) {
    Buf x2(DType::F64, {B, T, C}), g2(DType::F64, {B, T, L + 1});
    x2.copy_from(x), g2.copy_from(gamma);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = t0; t < T; ++t) {
        for (int64_t c = 0; c < C; ++c) x2.set((b * T + t) * C + c, 3.0 + c);
        for (int l = 0; l <= L; ++l) g2.set((b * T + t) * (L + 1) + l, 0.5);
      }
    const Buf y2 = synthesis(analysis(x2, L), g2, L);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t i = (b * T + t) * C + c;
          if (t < t0) {
            EXPECT_EQ(y2.get(i), y.get(i)) << "t0 " << t0 << " t " << t;
          } else if (t == t0) {
            EXPECT_NE(y2.get(i), y.get(i)) << "t0 " << t0;
          }
        }
  }
}

TEST(Haar, SynthesisMatchesClosedForm) {
  // x~[t] = sum_l gamma_{l-1} d_l / 2^(l/2) + gamma_L a_L / 2^(L/2)
  const int64_t B = 2, T = 13, C = 7;
  for (int L = 1; L <= 5; ++L) {
    Buf x(DType::F64, {B, T, C}), gamma(DType::F64, {B, T, L + 1});
    x.randn(5), gamma.randn(6, 0.5, 0.5);
    const Buf coef = analysis(x, L);
    const Buf y = synthesis(coef, gamma, L);
    const int64_t plane = B * T * C;
    for (int64_t bt = 0; bt < B * T; ++bt)
      for (int64_t c = 0; c < C; ++c) {
        double want =
            gamma.get(bt * (L + 1) + L) * coef.get(L * plane + bt * C + c) * std::pow(2.0, -0.5 * L);
        for (int l = 1; l <= L; ++l)
          want += gamma.get(bt * (L + 1) + l - 1) * coef.get((l - 1) * plane + bt * C + c) *
                  std::pow(2.0, -0.5 * l);
        ASSERT_NEAR(y.get(bt * C + c), want, 1e-12) << "L " << L;
      }
  }
}

TEST(Haar, AnalysisGradientMatchesFiniteDifferences) {
  for (int L : {1, 3, 5}) {  // L = 5 reaches past the start of a T = 13 sequence
    const int64_t B = 2, T = 13, C = 3;
    Buf x(DType::F64, {B, T, C}), coef(DType::F64, {L + 1, B, T, C}), probe(DType::F64, {L + 1, B, T, C});
    Buf dx(DType::F64, {B, T, C});
    x.randn(7), probe.randn(8);
    auto loss = [&] {
      haar_analysis_fwd(ctx(), {coef, x, L});
      return dot(coef, probe);
    };
    auto backward = [&] { haar_analysis_bwd(ctx(), {dx, probe, L}); };
    SCOPED_TRACE(testing::Message() << "L " << L);
    expect_grad_matches(loss, backward, {{&x, &dx, "x"}});
  }
}

TEST(Haar, SynthesisGradientsMatchFiniteDifferences) {
  for (int L : {1, 2, 4}) {
    const int64_t B = 2, T = 7, C = 5;
    Buf coef(DType::F64, {L + 1, B, T, C}), gamma(DType::F64, {B, T, L + 1}), y(DType::F64, {B, T, C});
    Buf probe(DType::F64, {B, T, C}), dcoef(DType::F64, {L + 1, B, T, C}), dgamma(DType::F64, {B, T, L + 1});
    coef.randn(9), gamma.randn(10, 0.5, 0.5), probe.randn(11);
    auto loss = [&] {
      haar_synthesis_fwd(ctx(), {y, coef, gamma, L});
      return dot(y, probe);
    };
    auto backward = [&] { haar_synthesis_bwd(ctx(), {dcoef, dgamma, probe, coef, gamma, L}); };
    SCOPED_TRACE(testing::Message() << "L " << L);
    expect_grad_matches(loss, backward, {{&coef, &dcoef, "coef"}, {&gamma, &dgamma, "gamma"}});
  }
}

TEST(Haar, SharedGatesOfQueryAndKeyAccumulate) {
  // loss = <synth(analysis(q), gamma), pq> + <synth(analysis(k), gamma), pk>: the second synthesis
  // backward adds to dgamma; the analysis backward writes dq, dk.
  const int L = 3;
  const int64_t B = 1, T = 13, C = 4;
  Buf q(DType::F64, {B, T, C}), k(DType::F64, {B, T, C}), gamma(DType::F64, {B, T, L + 1});
  Buf pq(DType::F64, {B, T, C}), pk(DType::F64, {B, T, C}), dq(DType::F64, {B, T, C}),
      dk(DType::F64, {B, T, C});
  Buf dgamma(DType::F64, {B, T, L + 1}), dcoef(DType::F64, {L + 1, B, T, C});
  q.randn(12), k.randn(13), gamma.uniform(14, 0.2, 1.0), pq.randn(15), pk.randn(16);
  auto loss = [&] {
    return dot(synthesis(analysis(q, L), gamma, L), pq) + dot(synthesis(analysis(k, L), gamma, L), pk);
  };
  auto backward = [&] {
    dgamma.randn(17);  // overwritten by the first call
    const Buf cq = analysis(q, L), ck = analysis(k, L);
    haar_synthesis_bwd(ctx(), {dcoef, dgamma, pq, cq, gamma, L});
    haar_analysis_bwd(ctx(), {dq, dcoef, L});
    haar_synthesis_bwd(ctx(), {dcoef, dgamma, pk, ck, gamma, L, true});
    haar_analysis_bwd(ctx(), {dk, dcoef, L});
  };
  expect_grad_matches(loss, backward, {{&q, &dq, "q"}, {&k, &dk, "k"}, {&gamma, &dgamma, "gamma"}});
}

TEST(Haar, AnalysisBackwardOverwritesOrAdds) {
  const int L = 2;
  const int64_t B = 2, T = 9, C = 3;
  Buf dcoef(DType::F64, {L + 1, B, T, C}), dx(DType::F64, {B, T, C}), dx2(DType::F64, {B, T, C});
  dcoef.randn(18);
  haar_analysis_bwd(ctx(), {dx, dcoef, L});
  dx2.randn(19);
  haar_analysis_bwd(ctx(), {dx2, dcoef, L});
  for (int64_t i = 0; i < dx.n(); ++i) EXPECT_EQ(dx2.get(i), dx.get(i));
  haar_analysis_bwd(ctx(), {dx2, dcoef, L, true});
  for (int64_t i = 0; i < dx.n(); ++i) EXPECT_NEAR(dx2.get(i), 2 * dx.get(i), 1e-14);
}

TEST(Haar, FloatMatchesDouble) {
  const int L = 4;
  const int64_t B = 3, T = 100, C = 37;  // C not a multiple of the kernel's channel block
  Buf x(DType::F64, {B, T, C}), gamma(DType::F64, {B, T, L + 1}), dy(DType::F64, {B, T, C});
  Buf xf(DType::F32, {B, T, C}), gammaf(DType::F32, {B, T, L + 1}), dyf(DType::F32, {B, T, C});
  x.randn(20), gamma.uniform(21, 0.0, 1.0), dy.randn(22);
  xf.copy_from(x), gammaf.copy_from(gamma), dyf.copy_from(dy);
  const Buf coef = analysis(x, L), coeff = analysis(xf, L);
  EXPECT_LT(rel_err(coeff, coef), 1e-6);
  EXPECT_LT(rel_err(synthesis(coeff, gammaf, L), synthesis(coef, gamma, L)), 1e-6);
  Buf dcoef(DType::F64, {L + 1, B, T, C}), dgamma(DType::F64, {B, T, L + 1}), dx(DType::F64, {B, T, C});
  Buf dcoeff(DType::F32, {L + 1, B, T, C}), dgammaf(DType::F32, {B, T, L + 1}), dxf(DType::F32, {B, T, C});
  haar_synthesis_bwd(ctx(), {dcoef, dgamma, dy, coef, gamma, L});
  haar_synthesis_bwd(ctx(), {dcoeff, dgammaf, dyf, coeff, gammaf, L});
  haar_analysis_bwd(ctx(), {dx, dcoef, L});
  haar_analysis_bwd(ctx(), {dxf, dcoeff, L});
  EXPECT_LT(rel_err(dcoeff, dcoef), 1e-6);
  EXPECT_LT(rel_err(dgammaf, dgamma), 1e-5);
  EXPECT_LT(rel_err(dxf, dx), 1e-6);
}

TEST(Haar, ShapeLevelAndDtypeErrors) {
  Buf x(DType::F32, {2, 5, 3}), coef(DType::F32, {3, 2, 5, 3}), gamma(DType::F32, {2, 5, 3}),
      y(DType::F32, {2, 5, 3});
  Buf gamma_bad(DType::F32, {2, 5, 4}), coef64(DType::F64, {3, 2, 5, 3}), x2(DType::F32, {10, 3});
  EXPECT_NO_THROW(haar_analysis_fwd(ctx(), {coef, x, 2}));
  EXPECT_THROW(haar_analysis_fwd(ctx(), {coef, x, 0}), Error);
  EXPECT_THROW(haar_analysis_fwd(ctx(), {coef, x, 17}), Error);
  EXPECT_THROW(haar_analysis_fwd(ctx(), {coef, x, 3}), Error);  // coef holds L+1 = 3 levels
  EXPECT_THROW(haar_analysis_fwd(ctx(), {coef64, x, 2}), Error);
  EXPECT_THROW(haar_analysis_fwd(ctx(), {coef, x2, 2}), Error);
  EXPECT_THROW(haar_synthesis_fwd(ctx(), {y, coef, gamma_bad, 2}), Error);
  EXPECT_THROW(haar_synthesis_bwd(ctx(), {coef, gamma_bad, y, coef, gamma, 2}), Error);
  EXPECT_THROW(haar_analysis_bwd(ctx(), {x, coef, 16}), Error);
}

// cross_entropy: values against a direct formula, stability for large logits, ignored targets,
// backward against finite differences (f64), in-place backward, f32 against f64, user errors; the
// backward's losses (bitwise the forward's), the row maximum at every place of long rows.
#include <cmath>

#include "testutil.h"
#include "wersa/ops/cross_entropy.h"

using namespace wersa;
using namespace wersa::test;

namespace {

void fill_targets(Buf& t, int64_t V, uint64_t seed) {
  for (int64_t n = 0; n < t.n(); ++n) t.set(n, double(rng_bits(seed, 5, uint64_t(n)) % uint64_t(V)));
}

}  // namespace

TEST(CrossEntropy, ForwardMatchesDirectFormula) {
  const int64_t N = 7, V = 13;
  Buf logits(DType::F64, {N, V}), targets(DType::I32, {N}), losses(DType::F64, {N});
  logits.randn(1, 2.0);
  fill_targets(targets, V, 2);
  cross_entropy_fwd(ctx(), {losses, logits, targets});
  for (int64_t n = 0; n < N; ++n) {
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(logits.get(n * V + v));
    const int64_t t = int64_t(targets.get(n));
    const double want = -std::log(std::exp(logits.get(n * V + t)) / z);
    EXPECT_NEAR(losses.get(n), want, 1e-12) << "row " << n;
  }
}

TEST(CrossEntropy, UniformLogitsGiveLogV) {
  const int64_t N = 3, V = 256;
  Buf logits(DType::F32, {N, V}), targets(DType::I32, {N}), losses(DType::F32, {N});
  for (int64_t i = 0; i < logits.n(); ++i) logits.set(i, 0.25);
  fill_targets(targets, V, 3);
  cross_entropy_fwd(ctx(), {losses, logits, targets});
  for (int64_t n = 0; n < N; ++n) EXPECT_NEAR(losses.get(n), std::log(256.0), 1e-5);
}

TEST(CrossEntropy, LargeLogitsAreStable) {
  // exp(1000) overflows; log-sum-exp with the row max must give the same loss as the shifted row.
  const int64_t N = 4, V = 9;
  for (DType dt : {DType::F32, DType::F64}) {
    Buf logits(dt, {N, V}), shifted(dt, {N, V}), targets(DType::I32, {N}), l1(dt, {N}), l2(dt, {N});
    logits.randn(4, 3.0);
    for (int64_t i = 0; i < logits.n(); ++i) shifted.set(i, logits.get(i) + 1000.0);
    fill_targets(targets, V, 5);
    cross_entropy_fwd(ctx(), {l1, logits, targets});
    cross_entropy_fwd(ctx(), {l2, shifted, targets});
    for (int64_t n = 0; n < N; ++n) {
      EXPECT_TRUE(std::isfinite(l2.get(n)));
      EXPECT_NEAR(l2.get(n), l1.get(n), dt == DType::F64 ? 1e-10 : 2e-3);  // f32 ulp at 1000 is 6e-5
    }
  }
}

TEST(CrossEntropy, OneLargeLogitAnywhereInALongRowIsStable) {
  // The row maximum is taken in lanes and a tail: a logit of 200 above the rest (exp overflows
  // without the shift) at every column of rows whose length is not a multiple of 16.
  for (int64_t V : {16, 37, 100}) {
    for (int64_t at = 0; at < V; ++at) {
      Buf logits(DType::F32, {2, V}), targets(DType::I32, {2}), losses(DType::F32, {2}),
          dl(DType::F32, {2, V});
      logits.randn(uint64_t(V * 1000 + at));
      logits.set(at, 200.0);
      logits.set(V + at, 200.0);
      targets.set(0, double(at));
      targets.set(1, double((at + 1) % V));
      cross_entropy_fwd(ctx(), {losses, logits, targets});
      ASSERT_NEAR(losses.get(0), 0.0, 1e-6) << "V " << V << " at " << at;  // p(target) = 1 - 1e-80
      ASSERT_NEAR(losses.get(1), 200.0 - logits.get(V + (at + 1) % V), 1e-3) << "V " << V << " at " << at;
      cross_entropy_bwd(ctx(), {dl, logits, targets, 1.0});
      for (int64_t i = 0; i < dl.n(); ++i) ASSERT_TRUE(std::isfinite(dl.get(i))) << "V " << V << " at " << at;
      ASSERT_NEAR(dl.get(V + at), 1.0, 1e-6);
    }
  }
}

TEST(CrossEntropy, BackwardWritesTheForwardsLossesBitwise) {
  const int64_t N = 9, V = 1003;
  for (DType dt : {DType::F32, DType::F64}) {
    Buf logits(dt, {N, V}), targets(DType::I32, {N}), losses(dt, {N}), l2(dt, {N}), dl(dt, {N, V}),
        dl2(dt, {N, V});
    logits.randn(21, 3.0);
    fill_targets(targets, V, 22);
    targets.set(3, -1);
    l2.randn(23);  // garbage to be overwritten, the ignored row too
    cross_entropy_fwd(ctx(), {losses, logits, targets});
    cross_entropy_bwd(ctx(), {dl, logits, targets, 0.25});
    CrossEntropyBwd both{dl2, logits, targets, 0.25};
    both.losses = l2;
    cross_entropy_bwd(ctx(), both);
    for (int64_t n = 0; n < N; ++n) EXPECT_EQ(l2.get(n), losses.get(n)) << n;
    for (int64_t i = 0; i < dl.n(); ++i) ASSERT_EQ(dl2.get(i), dl.get(i)) << i;
    both.dlogits = logits;  // in place: the target's logit is read before the row is overwritten
    both.losses = l2;
    l2.randn(24);
    cross_entropy_bwd(ctx(), both);
    for (int64_t n = 0; n < N; ++n) EXPECT_EQ(l2.get(n), losses.get(n)) << n;
    for (int64_t i = 0; i < dl.n(); ++i) ASSERT_EQ(logits.get(i), dl.get(i)) << i;
  }
  Buf logits(DType::F32, {4, 5}), targets(DType::I32, {4}), bad(DType::F32, {3}), bad64(DType::F64, {4});
  CrossEntropyBwd wrong{logits, logits, targets, 1.0};
  wrong.losses = bad;
  EXPECT_THROW(cross_entropy_bwd(ctx(), wrong), Error);
  wrong.losses = bad64;
  EXPECT_THROW(cross_entropy_bwd(ctx(), wrong), Error);
}

TEST(CrossEntropy, IgnoredTargetsGiveZeroLossAndGradient) {
  const int64_t N = 5, V = 7;
  Buf logits(DType::F64, {N, V}), targets(DType::I32, {N}), losses(DType::F64, {N}), dl(DType::F64, {N, V});
  logits.randn(6);
  fill_targets(targets, V, 7);
  targets.set(1, -1), targets.set(4, -1);
  losses.randn(8), dl.randn(9);  // garbage that must be overwritten
  cross_entropy_fwd(ctx(), {losses, logits, targets});
  cross_entropy_bwd(ctx(), {dl, logits, targets, 1.0});
  for (int64_t n : {1, 4}) {
    EXPECT_EQ(losses.get(n), 0.0);
    for (int64_t v = 0; v < V; ++v) EXPECT_EQ(dl.get(n * V + v), 0.0);
  }
  EXPECT_GT(losses.get(0), 0.0);
  // Each non-ignored gradient row sums to zero (softmax minus one-hot).
  for (int64_t n : {0, 2, 3}) {
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += dl.get(n * V + v);
    EXPECT_NEAR(s, 0.0, 1e-14);
  }
}

TEST(CrossEntropy, GradientsMatchFiniteDifferences) {
  const int64_t N = 7, V = 13;
  const double scale = 0.37;
  Buf logits(DType::F64, {N, V}), targets(DType::I32, {N}), losses(DType::F64, {N}), dl(DType::F64, {N, V});
  logits.randn(10, 1.5);
  fill_targets(targets, V, 11);
  targets.set(3, -1);
  auto loss = [&] {
    cross_entropy_fwd(ctx(), {losses, logits, targets});
    double s = 0;
    for (int64_t n = 0; n < N; ++n) s += losses.get(n);
    return scale * s;
  };
  auto backward = [&] { cross_entropy_bwd(ctx(), {dl, logits, targets, scale}); };
  expect_grad_matches(loss, backward, {{&logits, &dl, "logits"}});
}

TEST(CrossEntropy, BackwardInPlaceMatchesOutOfPlace) {
  const int64_t N = 6, V = 11;
  for (DType dt : {DType::F32, DType::F64}) {
    Buf logits(dt, {N, V}), targets(DType::I32, {N}), dl(dt, {N, V});
    logits.randn(12, 2.0);
    fill_targets(targets, V, 13);
    targets.set(2, -1);
    cross_entropy_bwd(ctx(), {dl, logits, targets, 0.5});
    cross_entropy_bwd(ctx(), {logits, logits, targets, 0.5});  // dlogits aliases logits
    for (int64_t i = 0; i < dl.n(); ++i) EXPECT_EQ(logits.get(i), dl.get(i)) << i;
  }
}

TEST(CrossEntropy, FloatMatchesDouble) {
  const int64_t N = 37, V = 1003;
  Buf logits(DType::F64, {N, V}), targets(DType::I32, {N}), losses(DType::F64, {N}), dl(DType::F64, {N, V});
  Buf logitsf(DType::F32, {N, V}), lossesf(DType::F32, {N}), dlf(DType::F32, {N, V});
  logits.randn(14, 3.0);
  logitsf.copy_from(logits);
  fill_targets(targets, V, 15);
  cross_entropy_fwd(ctx(), {losses, logits, targets});
  cross_entropy_fwd(ctx(), {lossesf, logitsf, targets});
  cross_entropy_bwd(ctx(), {dl, logits, targets, 1.0 / N});
  cross_entropy_bwd(ctx(), {dlf, logitsf, targets, 1.0 / N});
  EXPECT_LT(rel_err(lossesf, losses), 1e-5);
  EXPECT_LT(rel_err(dlf, dl), 1e-5);
}

TEST(CrossEntropy, BadTargetsAreErrorsNamingPositionAndId) {
  const int64_t N = 4, V = 10;
  Buf logits(DType::F32, {N, V}), targets(DType::I32, {N}), losses(DType::F32, {N}), dl(DType::F32, {N, V});
  logits.randn(16);
  fill_targets(targets, V, 17);
  for (int bad : {10, -2, 1 << 30}) {
    targets.set(2, bad);
    try {
      cross_entropy_fwd(ctx(), {losses, logits, targets});
      ADD_FAILURE() << "target " << bad << " accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("position 2"), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
    }
    EXPECT_THROW(cross_entropy_bwd(ctx(), {dl, logits, targets, 1.0}), Error);
  }
}

TEST(CrossEntropy, ShapeAndDtypeErrors) {
  Buf logits(DType::F32, {4, 10}), targets(DType::I32, {4}), losses(DType::F32, {4});
  Buf short_t(DType::I32, {3}), float_t(DType::F32, {4}), losses64(DType::F64, {4}), dl(DType::F32, {4, 9});
  EXPECT_THROW(cross_entropy_fwd(ctx(), {losses, logits, short_t}), Error);
  EXPECT_THROW(cross_entropy_fwd(ctx(), {losses, logits, float_t}), Error);
  EXPECT_THROW(cross_entropy_fwd(ctx(), {losses64, logits, targets}), Error);
  EXPECT_THROW(cross_entropy_bwd(ctx(), {dl, logits, targets, 1.0}), Error);
  EXPECT_THROW(cross_entropy_fwd(ctx(), {{}, logits, targets}), Error);
}

TEST(CrossEntropy, ClassWeightsScaleEachRowAndTheSums) {
  const int64_t N = 9, V = 4;
  const double scale = 0.5;
  Buf logits(DType::F64, {N, V}), targets(DType::I32, {N}), losses(DType::F64, {N}), dl(DType::F64, {N, V});
  Buf w(DType::F64, {V}), stats(DType::F64, {2});
  logits.randn(12, 2.0);
  fill_targets(targets, V, 13);
  targets.set(2, -1);
  for (int64_t v = 0; v < V; ++v) w.set(v, 0.25 + 0.5 * double(v));
  // The gradient of scale * sum_n w[t_n] losses[n], against finite differences.
  auto loss = [&] {
    cross_entropy_fwd(ctx(), {losses, logits, targets});
    double s = 0;
    for (int64_t n = 0; n < N; ++n)
      if (targets.get(n) >= 0) s += w.get(int64_t(targets.get(n))) * losses.get(n);
    return scale * s;
  };
  auto backward = [&] { cross_entropy_bwd(ctx(), {dl, logits, targets, scale, w}); };
  expect_grad_matches(loss, backward, {{&logits, &dl, "logits"}});
  // loss_sum_fwd: the weighted sum and the sum of the weights; the losses stay unweighted.
  cross_entropy_fwd(ctx(), {losses, logits, targets});
  loss_sum_fwd(ctx(), {stats, losses, targets, w});
  double sum = 0, count = 0;
  for (int64_t n = 0; n < N; ++n)
    if (targets.get(n) >= 0)
      sum += w.get(int64_t(targets.get(n))) * losses.get(n), count += w.get(int64_t(targets.get(n)));
  EXPECT_NEAR(stats.get(0), sum, 1e-13);
  EXPECT_DOUBLE_EQ(stats.get(1), count);
  EXPECT_NE(count, double(N - 1));  // the weights are not all 1: the check means something
  Buf short_w(DType::F64, {V - 1});
  expect_error_contains(
      [&] {
        cross_entropy_bwd(ctx(), {dl, logits, targets, scale, short_w});
      },
      "should have shape");
}

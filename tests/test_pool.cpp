// pool (the classifier's pooling of each sequence's real rows): forward against a double
// reference, FD gradients in f64, padding never read, gradient zero at padding, length errors.
#include <cmath>

#include "testutil.h"
#include "wersa/ops/pool.h"

using namespace wersa;
using namespace wersa::test;

namespace {

const int64_t kB = 3, kT = 7, kD = 5;

Buf lengths_of(std::vector<int32_t> n) {
  Buf l(DType::I32, {int64_t(n.size())});
  for (size_t b = 0; b < n.size(); ++b) l.p<int32_t>()[b] = n[b];
  return l;
}

}  // namespace

TEST(Pool, ForwardMatchesTheDefinition) {
  for (PoolKind kind : {PoolKind::Mean, PoolKind::Last}) {
    Buf x(DType::F64, {kB, kT, kD}), p(DType::F64, {kB, kD});
    x.randn(1);
    const std::vector<int32_t> n = {7, 3, 1};
    Buf len = lengths_of(n);
    pool_fwd(ctx(), {p, x, len, kind});
    for (int64_t b = 0; b < kB; ++b)
      for (int64_t j = 0; j < kD; ++j) {
        double want = 0;
        if (kind == PoolKind::Last) {
          want = x.get((b * kT + n[b] - 1) * kD + j);
        } else {
          for (int64_t t = 0; t < n[b]; ++t) want += x.get((b * kT + t) * kD + j);
          want /= n[b];
        }
        EXPECT_NEAR(p.get(b * kD + j), want, 1e-15) << "b " << b << " j " << j;
      }
  }
}

TEST(Pool, GradientsMatchFiniteDifferences) {
  for (PoolKind kind : {PoolKind::Mean, PoolKind::Last}) {
    Buf x(DType::F64, {kB, kT, kD}), p(DType::F64, {kB, kD}), probe(DType::F64, {kB, kD});
    Buf dx(DType::F64, {kB, kT, kD});
    x.randn(2), probe.randn(3);
    Buf len = lengths_of({4, 7, 2});
    auto loss = [&] {
      pool_fwd(ctx(), {p, x, len, kind});
      return dot(p, probe);
    };
    auto backward = [&] { pool_bwd(ctx(), {dx, probe, len, kind}); };
    expect_grad_matches(loss, backward, {{&x, &dx, "x"}}, 1e-5, 1e-6, 1000);
  }
}

TEST(Pool, PaddingIsNeverReadAndGetsZeroGradient) {
  for (PoolKind kind : {PoolKind::Mean, PoolKind::Last}) {
    Buf x(DType::F32, {kB, kT, kD}), p1(DType::F32, {kB, kD}), p2(DType::F32, {kB, kD});
    x.randn(4);
    const std::vector<int32_t> n = {5, 2, 7};
    Buf len = lengths_of(n);
    pool_fwd(ctx(), {p1, x, len, kind});
    for (int64_t b = 0; b < kB; ++b)  // padding set to NaN: a read would show
      for (int64_t t = n[b]; t < kT; ++t)
        for (int64_t j = 0; j < kD; ++j) x.set((b * kT + t) * kD + j, std::nan(""));
    pool_fwd(ctx(), {p2, x, len, kind});
    EXPECT_EQ(rel_err(p2, p1), 0.0);
    Buf dp(DType::F32, {kB, kD}), dx(DType::F32, {kB, kT, kD});
    dp.randn(5), dx.randn(6);  // dx garbage: overwritten everywhere
    pool_bwd(ctx(), {dx, dp, len, kind});
    for (int64_t b = 0; b < kB; ++b)
      for (int64_t t = 0; t < kT; ++t)
        for (int64_t j = 0; j < kD; ++j) {
          const double g = dx.get((b * kT + t) * kD + j);
          if (t >= n[b] || (kind == PoolKind::Last && t != n[b] - 1))
            EXPECT_EQ(g, 0.0) << "b " << b << " t " << t;
          else
            EXPECT_NEAR(g, dp.get(b * kD + j) / (kind == PoolKind::Last ? 1.0 : n[b]), 1e-7);
        }
  }
}

TEST(Pool, LengthsOutsideTheSequenceAreErrors) {
  Buf x(DType::F32, {kB, kT, kD}), p(DType::F32, {kB, kD});
  x.randn(7);
  for (int32_t bad : {0, -1, int32_t(kT + 1)}) {
    Buf len = lengths_of({3, bad, 2});
    expect_error_contains(
        [&] {
          pool_fwd(ctx(), {p, x, len, PoolKind::Mean});
        },
        "sequence 1 has length " + std::to_string(bad));
  }
  Buf wrong(DType::I32, {kB + 1});
  expect_error_contains([&] { pool_fwd(ctx(), {p, x, wrong, PoolKind::Mean}); }, "should have shape [3]");
}

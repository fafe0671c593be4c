// test_backend_ops cases: pool_fwd, pool_bwd (f32, f64; mean and last; B = 1, T = 1, widths not a
// multiple of 32; NaN/Inf in x). Plain TESTs: lengths outside [1, T] on the device give NaN in
// that sequence's outputs and nothing outside them.
#include <gtest/gtest.h>

#include <cmath>

#include "backend_ops.h"
#include "guarded_buffer.h"
#include "wersa/ops/pool.h"

namespace wersa::test {

void add_pool_cases(std::vector<OpCase>& out) {
  const Shape shapes[] = {{1, 1, 1}, {1, 1, 5}, {3, 7, 33}, {2, 65, 40}, {5, 4, 129}, {4, 3, 20}};
  for (DType dt : {DType::F32, DType::F64}) {
    const char* d = dt == DType::F32 ? "f32" : "f64";
    for (const Shape& s : shapes)
      for (PoolKind kind : {PoolKind::Mean, PoolKind::Last}) {
        const int64_t B = s[0], T = s[1], D = s[2];
        const std::string tag = std::string(d) + " " + s.str() + (kind == PoolKind::Mean ? " mean" : " last");
        // The same double sums in the same order, and the same roundings: exact.
        OpCase f("pool_fwd", "pool_fwd " + tag);
        f.in("x", s, dt, T == 3 ? Fill::Special : Fill::Normal)
            .ids("lengths", {B}, 1, T + 1)
            .out("p", {B, D}, dt);
        f.max_err = 0;
        f.run = [kind](Ctx& ctx, const Bound& t) {
          pool_fwd(ctx, PoolFwd{t["p"], t["x"], t["lengths"], kind});
        };
        out.push_back(f);

        OpCase b("pool_bwd", "pool_bwd " + tag);
        b.in("dp", {B, D}, dt, T == 3 ? Fill::Special : Fill::Normal)
            .ids("lengths", {B}, 1, T + 1)
            .out("dx", s, dt);
        b.max_err = 0;
        b.run = [kind](Ctx& ctx, const Bound& t) {
          pool_bwd(ctx, PoolBwd{t["dx"], t["dp"], t["lengths"], kind});
        };
        out.push_back(b);
      }
  }
}

namespace {

const std::vector<int32_t> kLengths = {2, 0, 5, -3, 4, 1 << 30};  // T = 4: 0, 5, -3 and 2^30 are bad
bool bad(int64_t b, int64_t Tn) { return kLengths[size_t(b)] < 1 || kLengths[size_t(b)] > Tn; }

template <class T>
void check_fwd(DType dt, PoolKind kind) {
  const int64_t B = 6, Tn = 4, D = 3;
  std::vector<T> x(size_t(B * Tn * D));
  for (size_t i = 0; i < x.size(); ++i) x[i] = T(1 + i);
  GuardedBuffer gx(Device::CUDA, dt, {B, Tn, D}, x);
  GuardedBuffer gp(Device::CUDA, dt, {B, D}, std::vector<T>(size_t(B * D), T(-7)));
  GuardedBuffer gl(Device::CUDA, DType::I32, {B}, kLengths);
  Ctx ctx(Device::CUDA);
  pool_fwd(ctx, PoolFwd{gp.t(), gx.t(), gl.t(), kind});
  ctx.sync();
  bool guards = false;
  const std::vector<T> p = gp.read<T>(&guards);
  EXPECT_TRUE(guards) << "a write outside p";
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < D; ++j) {
      const T got = p[size_t(b * D + j)];
      if (bad(b, Tn)) {
        EXPECT_TRUE(std::isnan(got)) << "b " << b << " j " << j << ": " << got;
        continue;
      }
      const int64_t n = kLengths[size_t(b)];
      double want = 0;
      if (kind == PoolKind::Last) {
        want = double(x[size_t((b * Tn + n - 1) * D + j)]);
      } else {
        for (int64_t t = 0; t < n; ++t) want += double(x[size_t((b * Tn + t) * D + j)]);
        want /= double(n);
      }
      EXPECT_EQ(got, T(want)) << "b " << b << " j " << j;
    }
}

template <class T>
void check_bwd(DType dt, PoolKind kind) {
  const int64_t B = 6, Tn = 4, D = 3;
  std::vector<T> dp(size_t(B * D));
  for (size_t i = 0; i < dp.size(); ++i) dp[i] = T(1 + i);
  GuardedBuffer gdp(Device::CUDA, dt, {B, D}, dp);
  GuardedBuffer gdx(Device::CUDA, dt, {B, Tn, D}, std::vector<T>(size_t(B * Tn * D), T(-7)));
  GuardedBuffer gl(Device::CUDA, DType::I32, {B}, kLengths);
  Ctx ctx(Device::CUDA);
  pool_bwd(ctx, PoolBwd{gdx.t(), gdp.t(), gl.t(), kind});
  ctx.sync();
  bool guards = false;
  const std::vector<T> dx = gdx.read<T>(&guards);
  EXPECT_TRUE(guards) << "a write outside dx";
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < Tn; ++t)
      for (int64_t j = 0; j < D; ++j) {
        const T got = dx[size_t((b * Tn + t) * D + j)];
        if (bad(b, Tn)) {
          EXPECT_TRUE(std::isnan(got)) << "b " << b << " t " << t << " j " << j << ": " << got;
          continue;
        }
        const int64_t n = kLengths[size_t(b)];
        const double g = double(dp[size_t(b * D + j)]);
        const T want =
            kind == PoolKind::Last ? (t == n - 1 ? T(g) : T(0)) : (t < n ? T(g * (1.0 / double(n))) : T(0));
        EXPECT_EQ(got, want) << "b " << b << " t " << t << " j " << j;
      }
}

TEST(PoolBadLengths, FwdNanForThatSequence) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  check_fwd<float>(DType::F32, PoolKind::Mean);
  check_fwd<double>(DType::F64, PoolKind::Last);
}
TEST(PoolBadLengths, BwdNanForThatSequence) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  check_bwd<double>(DType::F64, PoolKind::Mean);
  check_bwd<float>(DType::F32, PoolKind::Last);
}

}  // namespace
}  // namespace wersa::test

// test_backend_ops cases: fused softmax cross-entropy (forward, backward with and without class
// weights, the losses written by the backward, dlogits aliasing logits) and loss_sum_fwd; and the
// bad-target behaviour on a device (NaN loss and gradient row, nothing out of bounds).
#include <gtest/gtest.h>

#include <cmath>

#include "backend_ops.h"
#include "guarded_buffer.h"
#include "wersa/ops/cross_entropy.h"

namespace wersa::test {

void add_cross_entropy_cases(std::vector<OpCase>& out) {
  for (DType dt : {DType::F32, DType::F64}) {
    const char* d = dt == DType::F32 ? "f32" : "f64";
    const double err = dt == DType::F32 ? 1e-12 : 1e-26;
    for (int64_t N : {1, 7, 64}) {
      for (int64_t V : {1, 5, 33, 1000}) {
        const std::string sz = std::string(d) + " N" + std::to_string(N) + " V" + std::to_string(V);
        for (bool special : {false, true}) {
          if (special && N == 1) continue;
          const Fill fill = special ? Fill::Special : Fill::Normal;
          const std::string sp = special ? " special" : "";
          OpCase f("cross_entropy_fwd", "cross_entropy_fwd " + sz + sp);
          f.in("logits", {N, V}, dt, fill, 0, 3).ids("targets", {N}, -1, V).out("losses", {N}, dt);
          f.max_err = err;
          f.run = [](Ctx& c, const Bound& t) {
            cross_entropy_fwd(c, CrossEntropyFwd{t["losses"], t["logits"], t["targets"]});
          };
          out.push_back(f);
        }
        // Backward: weights or not, losses or not, dlogits separate or aliasing the logits.
        for (int v = 0; v < 8; ++v) {
          const bool weights = v & 1, losses = v & 2, alias = v & 4;
          OpCase b("cross_entropy_bwd", "cross_entropy_bwd " + sz + (weights ? " weights" : "") +
                                            (losses ? " losses" : "") + (alias ? " alias" : ""));
          if (alias)
            b.acc("logits", {N, V}, dt);
          else
            b.in("logits", {N, V}, dt, Fill::Normal, 0, 3).out("dlogits", {N, V}, dt);
          b.ids("targets", {N}, -1, V);
          if (weights) b.in("weights", {V}, dt, Fill::Uniform, 0, 2);
          if (losses) b.out("losses", {N}, dt);
          b.max_err = err;
          const double scale = 1.0 / double(N) * 0.9;
          b.run = [weights, losses, alias, scale](Ctx& c, const Bound& t) {
            cross_entropy_bwd(
                c, CrossEntropyBwd{alias ? t["logits"] : t["dlogits"], t["logits"], t["targets"], scale,
                                   weights ? t["weights"] : Tensor{}, losses ? t["losses"] : Tensor{}});
          };
          out.push_back(b);
        }
      }
    }
    // NaN and infinities in the logits: the rows they poison, as on the CPU.
    OpCase s("cross_entropy_bwd", std::string("cross_entropy_bwd ") + d + " N29 V77 special losses");
    s.in("logits", {29, 77}, dt, Fill::Special).ids("targets", {29}, -1, 77).out("dlogits", {29, 77}, dt);
    s.out("losses", {29}, dt);
    s.max_err = err;
    s.run = [](Ctx& c, const Bound& t) {
      cross_entropy_bwd(
          c, CrossEntropyBwd{t["dlogits"], t["logits"], t["targets"], -0.5, Tensor{}, t["losses"]});
    };
    out.push_back(s);
    for (int64_t N : {1, 7, 1000, 3001}) {
      for (bool weights : {false, true}) {
        OpCase l("loss_sum_fwd",
                 std::string("loss_sum_fwd ") + d + " N" + std::to_string(N) + (weights ? " weights" : ""));
        l.in("losses", {N}, dt, Fill::Uniform, 0, 5).ids("targets", {N}, -1, 40).out("out", {2}, DType::F64);
        if (weights) l.in("weights", {40}, dt, Fill::Uniform, 0, 2);
        l.max_err = 1e-26;  // sums in double on both devices, in different orders
        l.run = [weights](Ctx& c, const Bound& t) {
          loss_sum_fwd(c, LossSumFwd{t["out"], t["losses"], t["targets"], weights ? t["weights"] : Tensor{}});
        };
        out.push_back(l);
      }
    }
  }
}

namespace {

// Targets with out-of-range values (below -1, and >= V) among valid and ignored ones.
std::vector<int32_t> bad_targets(int64_t N, int32_t V) {
  std::vector<int32_t> t(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) t[size_t(n)] = int32_t(n % 4 == 1 ? -1 : (n * 5 + 2) % V);
  t[2] = -7;
  t[size_t(N - 1)] = V;
  t[size_t(N - 3)] = V + 1000;
  return t;
}

void bad_target_run(bool backward, bool alias) {
  const int64_t N = 10;
  const int32_t V = 300;
  const std::vector<int32_t> tg = bad_targets(N, V);
  std::vector<float> logits(size_t(N * V));
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(int(i * 37 % 101) - 50) * 0.05f;
  std::vector<float> poison(size_t(N * V), 77.0f), lpoison(size_t(N), 77.0f), w(size_t(V), 1.5f);
  GuardedBuffer tgt(Device::CUDA, DType::I32, {N}, tg.data()),
      lg(Device::CUDA, DType::F32, {N, V}, logits.data()),
      dl(Device::CUDA, DType::F32, {N, V}, poison.data()), ls(Device::CUDA, DType::F32, {N}, lpoison.data()),
      wt(Device::CUDA, DType::F32, {V}, w.data());
  Ctx ctx(Device::CUDA, ScratchPolicy::Grow);
  if (backward)
    cross_entropy_bwd(ctx, CrossEntropyBwd{alias ? lg.t() : dl.t(), lg.t(), tgt.t(), 0.25, wt.t(), ls.t()});
  else
    cross_entropy_fwd(ctx, CrossEntropyFwd{ls.t(), lg.t(), tgt.t()});
  ctx.sync();
  const std::vector<float> loss = ls.read<float>(), grad = (alias ? lg : dl).read<float>();
  for (int64_t n = 0; n < N; ++n) {
    const int32_t t = tg[size_t(n)];
    const bool bad = t < -1 || t >= V;
    if (bad) {
      EXPECT_TRUE(std::isnan(loss[size_t(n)])) << "row " << n;
    } else if (t == -1) {
      EXPECT_EQ(loss[size_t(n)], 0.0f) << "row " << n;
    } else {
      EXPECT_TRUE(std::isfinite(loss[size_t(n)]) && loss[size_t(n)] > 0) << "row " << n;
    }
    if (!backward) continue;
    for (int64_t v = 0; v < V; ++v) {
      const float g = grad[size_t(n * V + v)];
      if (bad) {
        EXPECT_TRUE(std::isnan(g)) << "row " << n << " v " << v;
      } else if (t == -1) {
        EXPECT_EQ(g, 0.0f) << "row " << n << " v " << v;
      } else {
        EXPECT_TRUE(std::isfinite(g)) << "row " << n << " v " << v;
      }
    }
  }
  EXPECT_TRUE(tgt.guards_intact() && lg.guards_intact() && dl.guards_intact() && ls.guards_intact() &&
              wt.guards_intact());
  if (!alias) {
    EXPECT_EQ(lg.read<float>(), logits);
  }
  if (!backward) {
    EXPECT_EQ(dl.read<float>(), poison);
  }
}

}  // namespace

TEST(CrossEntropyCuda, BadTargetsForward) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  bad_target_run(false, false);
}

TEST(CrossEntropyCuda, BadTargetsBackward) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  bad_target_run(true, false);
}

TEST(CrossEntropyCuda, BadTargetsBackwardAliased) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  bad_target_run(true, true);
}

TEST(CrossEntropyCuda, LossSumWeightedBadTarget) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t N = 5;
  const std::vector<int32_t> tg = {0, -1, 3, -9, 4};  // 4 has no weight (V = 4); -9 is skipped
  const std::vector<float> losses = {1, 2, 3, 4, 5}, w = {1, 1, 1, 2};
  const double none[2] = {-1, -1};
  GuardedBuffer out(Device::CUDA, DType::F64, {2}, none), l(Device::CUDA, DType::F32, {N}, losses.data()),
      t(Device::CUDA, DType::I32, {N}, tg.data()), wt(Device::CUDA, DType::F32, {4}, w.data());
  Ctx ctx(Device::CUDA, ScratchPolicy::Grow);
  loss_sum_fwd(ctx, LossSumFwd{out.t(), l.t(), t.t(), wt.t()});
  ctx.sync();
  const std::vector<double> o = out.read<double>();
  EXPECT_TRUE(std::isnan(o[0]) && std::isnan(o[1]));
  EXPECT_TRUE(out.guards_intact() && l.guards_intact() && t.guards_intact() && wt.guards_intact());
  const std::vector<int32_t> ok = {0, -1, 3, -9, 2};
  GuardedBuffer t2(Device::CUDA, DType::I32, {N}, ok.data());
  loss_sum_fwd(ctx, LossSumFwd{out.t(), l.t(), t2.t(), wt.t()});
  ctx.sync();
  EXPECT_EQ(out.read<double>(), (std::vector<double>{1 + 2 * 3 + 5, 1 + 2 + 1}));
}

}  // namespace wersa::test

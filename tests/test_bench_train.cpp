// wersa-bench train (wersa/train/bench.h): a case times real training steps and forward passes,
// its FLOPs are the config's count, a case over the memory limit is an OOM row that runs nothing,
// the sgemm measurement is positive, the log line's utilisation and ETA follow from the step
// times, and the tool prints its table. About correctness, not speed: no figure is compared with
// a threshold of time.
#include <cmath>

#include "testutil.h"
#include "wersa/model/flops.h"
#include "wersa/train/bench.h"

using namespace wersa;
using namespace wersa::test;

namespace {

Config tiny(const std::string& type) {
  Config c;
  c.model.vocab_size = 61;
  c.model.dim = 32;
  c.model.layers = 2;
  c.model.heads = 4;
  c.model.kv_heads = 2;
  c.model.ffn_dim = 48;
  c.model.attention.type = attention_kind_from_name(type);
  c.model.attention.features = 8;
  c.model.attention.chunk = 8;
  c.train.batch_size = 2;
  c.train.seq_len = 24;
  return c;
}

}  // namespace

TEST(BenchTrain, ACaseTimesStepsAndCountsFlops) {
  for (const char* type : {"wersa", "softmax", "linear"})
    for (bool recompute : {false, true}) {
      SCOPED_TRACE(std::string(type) + (recompute ? " recompute" : ""));
      Config c = tiny(type);
      c.train.recompute = recompute;
      TrainBenchOptions opt;
      opt.reps = 3;
      const TrainBenchRow r = bench_train_case("tiny", c, opt);
      EXPECT_EQ(r.status, "ok");
      EXPECT_EQ(r.attention, type);
      ASSERT_EQ(r.train_tps.size(), 3u);
      ASSERT_EQ(r.forward_tps.size(), 3u);
      for (double t : r.train_tps) EXPECT_TRUE(std::isfinite(t) && t > 0);
      for (double t : r.forward_tps) EXPECT_TRUE(std::isfinite(t) && t > 0);
      EXPECT_DOUBLE_EQ(r.forward_flops_per_token, model_flops(c.model, 24).total());
      EXPECT_DOUBLE_EQ(r.train_flops_per_token, 3 * r.forward_flops_per_token);
      EXPECT_GT(r.peak_rss, 0u);
      EXPECT_GT(r.state_rss, 0u);
      EXPECT_LE(r.state_rss, r.peak_rss);  // the state exists before the workspace's peak
      EXPECT_EQ(r.estimate.total, estimate_train_memory(c).total);
      const std::string md = train_bench_markdown({r}, 100.0, 1);
      EXPECT_NE(md.find(std::string("| tiny | ") + type + " | 24 | 2 | " + (recompute ? "yes" : "no")),
                std::string::npos)
          << md;
      EXPECT_NE(md.find("| model state | act/token |"), std::string::npos) << md;
    }
}

TEST(BenchTrain, OverTheLimitIsAnOomRowThatRunsNothing) {
  TrainBenchOptions opt;
  opt.max_memory = 1024;
  const TrainBenchRow r = bench_train_case("tiny", tiny("wersa"), opt);
  EXPECT_EQ(r.status, "oom");
  EXPECT_TRUE(r.train_tps.empty());
  EXPECT_GT(r.estimate.total, 1024u);
  const std::string md = train_bench_markdown({r}, 100.0, 1);
  EXPECT_NE(md.find("| OOM |"), std::string::npos) << md;
  const nlohmann::json j = train_bench_json({r}, 100.0, 1);
  EXPECT_EQ(j.at("rows").at(0).at("status"), "oom");
}

TEST(BenchTrain, SgemmRateIsMeasured) {
  const double g = measure_sgemm_gflops(128, 96, 64, 2);
  EXPECT_TRUE(std::isfinite(g) && g > 0) << g;
}

TEST(BenchTrain, LogLineUtilisationAndEta) {
  const Config c = tiny("wersa");
  StepMeter meter(c.model, 24, 10, false);
  const double per_token = train_flops(c.model, 24, 1.0);
  // Step 1 (setup, not in the ETA), then steps of 200 and 400 ms: 300 ms x 7 steps left = 2.1 s.
  meter.step(1000);
  meter.step(200);
  meter.step(400);
  const std::string l = meter.line(3, 48, 400);
  char want[64];
  std::snprintf(want, sizeof want, "| %.1f GFLOP/s | ETA 2.1 s", per_token * 48 / 0.4 / 1e9);
  EXPECT_EQ(l, want);
}

TEST(BenchTrain, ToolPrintsTheTable) {
  const std::string cfg = source_dir() + "/configs/tiny.json";
  const ToolRun r =
      run_tool("wersa-bench train --config " + cfg + " --attention wersa,softmax -T 16,32 -r 1 -t 1");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("| attention | T | batch |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| wersa | 32 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| softmax | 16 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sgemm (f32"), std::string::npos) << r.out;
  expect_one_line_error(run_tool("wersa-bench train --config " + cfg + " -T 0"), "-T");
  expect_one_line_error(run_tool("wersa-bench train --config " + cfg + " --max-memory lots"), "--max-memory");
}

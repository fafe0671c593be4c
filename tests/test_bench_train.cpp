// wersa-bench train (wersa/train/bench.h): a case times real training steps and forward passes,
// its FLOPs are the config's count, a case over the memory limit is an OOM row that runs nothing,
// the sgemm measurement is positive and repeated beside every timed step, a step's share of it is
// taken against the probe after it, the log line's utilisation and ETA follow from the step
// times, and the tool prints its table; its decode mode with --streams prints a row and a line
// per count of sequences decoded together. About correctness, not speed: no figure is compared
// with a threshold of time.
#include <algorithm>
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

// Forward FLOPs per token of tiny(type) at T = 24, by hand from the formulas of flops.h
// (D 32, H 4, Hkv 2, d 8, F 48, V 61, m 8, L 3, K 33, G 8, 2 layers), per layer:
//   projections 2*32*32 + 4*32*16 + 2*32*32 = 6144;  SwiGLU 6*32*48 = 9216
//   softmax 4*4*8 * (24 + 1) / 2 = 1600
//   linear 6*2*8*8 + 2*(2*8*8 + 8) + 4*(2*8*8 + 2*8 + 8) = 768 + 272 + 608 = 1648
//   wersa linear + 2*32*33 + 2*32*8 + 2*8*4 + 7*3*8*6 = 1648 + 2112 + 512 + 64 + 1008 = 5344
// and the LM head 2*61*32 = 3904 once.
double tiny_forward_flops(const std::string& type) {
  const double attn = type == "softmax" ? 1600 : type == "linear" ? 1648 : 5344;
  return 2 * (6144 + 9216 + attn) + 3904;
}

// The median of the steps' shares of the sgemm probe beside them (an odd count).
double median_share(const std::vector<double>& tps, double flops_per_token,
                    const std::vector<double>& probe) {
  std::vector<double> s;
  for (size_t i = 0; i < tps.size(); ++i) s.push_back(tps[i] * flops_per_token / 1e9 / probe[i]);
  std::sort(s.begin(), s.end());
  return s[s.size() / 2];
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
      ASSERT_EQ(r.train_sgemm.size(), 3u);  // one sgemm probe beside every timed step and pass
      ASSERT_EQ(r.forward_sgemm.size(), 3u);
      for (double g : r.train_sgemm) EXPECT_TRUE(std::isfinite(g) && g > 0);
      for (double t : r.train_tps) EXPECT_TRUE(std::isfinite(t) && t > 0);
      for (double t : r.forward_tps) EXPECT_TRUE(std::isfinite(t) && t > 0);
      EXPECT_DOUBLE_EQ(r.forward_flops_per_token, tiny_forward_flops(type));
      EXPECT_DOUBLE_EQ(r.train_flops_per_token, 3 * tiny_forward_flops(type));
      EXPECT_GT(r.peak_rss, 0u);
      EXPECT_GT(r.state_rss, 0u);
      EXPECT_LE(r.state_rss, r.peak_rss);  // the state exists before the workspace's peak
      EXPECT_EQ(r.estimate.total, estimate_train_memory(c).total);
      const std::string md = train_bench_markdown({r}, 100.0, 1);
      EXPECT_NE(md.find(std::string("| tiny | ") + type + " | 24 | 2 | " + (recompute ? "yes" : "no")),
                std::string::npos)
          << md;
      EXPECT_NE(md.find("| model state | act/token |"), std::string::npos) << md;
      EXPECT_NE(md.find("| of sgemm | sgemm beside |"), std::string::npos) << md;
      const nlohmann::json j = train_bench_json({r}, 100.0, 1);
      EXPECT_EQ(j.at("rows").at(0).at("train_sgemm_beside_gflops").size(), 3u);
      EXPECT_NEAR(j.at("rows").at(0).at("train_share_of_sgemm").get<double>(),
                  median_share(r.train_tps, 3 * tiny_forward_flops(type), r.train_sgemm),
                  1e-12 * median_share(r.train_tps, 3 * tiny_forward_flops(type), r.train_sgemm));
    }
}

// A train.precision bf16 case is marked as such in its row, table and JSON, and is probed beside
// each step by the mixed-precision GEMM (matmul_fwd with bf16 operands, whose own correctness is
// test_matmul_mixed's).
TEST(BenchTrain, Bf16CasesAreProbedWithTheMixedPrecisionGemm) {
  Config c = tiny("wersa");
  c.train.precision = "bf16";
  TrainBenchOptions opt;
  opt.reps = 2;
  opt.forward = false;
  opt.probe_size = 64;
  const TrainBenchRow r = bench_train_case("tiny", c, opt);
  EXPECT_EQ(r.precision, "bf16");
  ASSERT_EQ(r.train_sgemm.size(), 2u);
  for (double g : r.train_sgemm) EXPECT_TRUE(std::isfinite(g) && g > 0);
  EXPECT_NE(train_bench_markdown({r}, 100.0, 1).find("| tiny | wersa (bf16) | 24 |"), std::string::npos);
  EXPECT_EQ(train_bench_json({r}, 100.0, 1).at("rows").at(0).at("precision"), "bf16");
  EXPECT_GT(measure_sgemm_gflops(32, 48, 40, 1, Device::CPU, true), 0);
  c.train.precision = "fp32";
  EXPECT_EQ(bench_train_case("tiny", c, opt).precision, "fp32");
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

TEST(BenchTrain, ShareOfSgemmIsTakenStepByStepAgainstTheProbes) {
  // Steps at 1 and 2 GFLOP/s (1000 and 2000 tok/s of 1e6 FLOPs), probes of 2 and 8 GFLOP/s after
  // them: shares 0.5 and 0.25, median 0.375, not the 1.5 / 5 of the medians.
  EXPECT_DOUBLE_EQ(share_of_sgemm({1000, 2000}, 1e6, {2, 8}, 100.0), 0.375);
  // Three steps: the median of 1/4, 2/2 and 3/12 is 1/4.
  EXPECT_DOUBLE_EQ(share_of_sgemm({1000, 2000, 3000}, 1e6, {4, 2, 12}, 100.0), 0.25);
  // Without a probe per step: the median step over the start's figure.
  EXPECT_DOUBLE_EQ(share_of_sgemm({1000, 2000}, 1e6, {}, 4.0), 0.375);
  EXPECT_DOUBLE_EQ(share_of_sgemm({1000, 2000}, 1e6, {2}, 4.0), 0.375);
  EXPECT_EQ(share_of_sgemm({1000}, 1e6, {}, 0.0), 0.0);
  EXPECT_EQ(share_of_sgemm({}, 1e6, {}, 4.0), 0.0);
}

TEST(BenchTrain, SgemmRateIsMeasured) {
  const double g = measure_sgemm_gflops(128, 96, 64, 2);
  EXPECT_TRUE(std::isfinite(g) && g > 0) << g;
  SgemmProbe probe(64, 48, 32);
  for (int i = 0; i < 3; ++i) {
    const double p = probe.gflops(1);
    EXPECT_TRUE(std::isfinite(p) && p > 0) << p;
  }
}

TEST(BenchTrain, LogLineUtilisationAndEta) {
  const Config c = tiny("wersa");
  StepMeter meter(c.model, 24, 10, false);
  const double per_token = 3 * tiny_forward_flops("wersa");  // 135936
  // Step 1 (setup, not in the ETA), then steps of 200 and 400 ms: 300 ms x 7 steps left = 2.1 s.
  meter.step(1000);
  meter.step(200);
  meter.step(400);
  const std::string l = meter.line(3, 48, 400);
  char want[64];
  std::snprintf(want, sizeof want, "| %.1f GFLOP/s | ETA 2.1 s", per_token * 48 / 0.4 / 1e9);
  EXPECT_EQ(l, want);
  // A step of 0.05 ms: 135936 x 48 FLOPs in 5e-5 s = 130.49856 GFLOP/s (by hand).
  EXPECT_EQ(meter.line(3, 48, 0.05), "| 130.5 GFLOP/s | ETA 2.1 s");
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
  expect_one_line_error(run_tool("wersa-bench train --config " + cfg + " -T 0"), "-T", 2);
  expect_one_line_error(run_tool("wersa-bench train --config " + cfg + " --max-memory lots"), "--max-memory",
                        2);
}

TEST(BenchTrain, OpTimesOfTheTrainingSteps) {
  TrainBenchOptions opt;
  opt.warmup = 1, opt.reps = 2, opt.forward = false, opt.probe_size = 0, opt.ops = true;
  const TrainBenchRow r = bench_train_case("tiny", tiny("wersa"), opt);
  ASSERT_FALSE(r.train_ops.empty());
  double in_ops = 0;
  bool matmul = false, adamw = false;
  for (size_t i = 0; i < r.train_ops.size(); ++i) {
    const OpTimes::Entry& e = r.train_ops[i];
    in_ops += e.seconds;
    EXPECT_EQ(e.calls % 2, 0) << e.op;  // the same calls in both timed steps, none of the warm-up
    if (i > 0) EXPECT_LE(e.seconds, r.train_ops[i - 1].seconds);  // by time
    matmul |= std::string(e.op) == "matmul_fwd";
    adamw |= std::string(e.op) == "adamw_step";
  }
  EXPECT_TRUE(matmul && adamw);
  EXPECT_GT(in_ops, 0.0);
  EXPECT_LE(in_ops, r.train_seconds);  // the ops run inside the timed steps
  const std::string md = train_bench_markdown({r}, 100.0, 1);
  EXPECT_NE(md.find("| op | calls/step | ms/step | of step |"), std::string::npos) << md;
  EXPECT_NE(md.find("| matmul_fwd | "), std::string::npos) << md;
  EXPECT_NE(md.find("| (outside ops) |"), std::string::npos) << md;
  // The matmul calls by shape add up to the matmul ops' calls and time.
  ASSERT_FALSE(r.train_gemms.empty());
  int64_t gemm_calls = 0, op_calls = 0;
  double gemm_seconds = 0, op_seconds = 0;
  for (const OpTimes::Gemm& g : r.train_gemms) gemm_calls += g.calls, gemm_seconds += g.seconds;
  for (const OpTimes::Entry& e : r.train_ops)
    if (std::string(e.op) == "matmul_fwd" || std::string(e.op) == "matmul_bwd")
      op_calls += e.calls, op_seconds += e.seconds;
  EXPECT_EQ(gemm_calls, op_calls);
  EXPECT_GE(gemm_seconds, op_seconds);       // timed around the dispatcher's own timing
  EXPECT_LE(gemm_seconds, r.train_seconds);  // and inside the steps
  EXPECT_NE(md.find("| op | products | n x i -> o |"), std::string::npos) << md;
  const nlohmann::json j = train_bench_json({r}, 100.0, 1);
  EXPECT_EQ(j.at("rows").at(0).at("train_ops").size(), r.train_ops.size());
  EXPECT_EQ(j.at("rows").at(0).at("train_gemms").size(), r.train_gemms.size());
  // Without the option there are none.
  opt.ops = false;
  EXPECT_TRUE(bench_train_case("tiny", tiny("wersa"), opt).train_ops.empty());
}

TEST(BenchDecode, StreamsPrintABatchedRowAndLineEach) {
  const std::string cfg = source_dir() + "/configs/tiny.json";
  const ToolRun r = run_tool("wersa-bench --config " + cfg + " -p 0 -n 3 -r 1 -t 1 --bw-mib 0 --streams 1,3");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("| tg3 |"), std::string::npos) << r.out;  // decode_step, as without --streams
  EXPECT_NE(r.out.find("| tg3 x1 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| tg3 x3 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 streams: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("t/s aggregate = "), std::string::npos) << r.out;
}

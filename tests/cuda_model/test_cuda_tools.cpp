// Every command-line tool with --device cuda (CUDA builds: on a GPU, or on the simulator), at the
// size of the quick start's first minutes: a short training run, its evaluation, generation, both
// benchmarks, an experiment and the server, each against the same command on the CPU where they compute the
// same thing. The text is this repository's own documentation, so nothing depends on ../shared.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "../server_util.h"
#include "../testutil.h"
#include "wersa/backend/backend.h"

using namespace wersa::test;
namespace fs = std::filesystem;

namespace {

// A CUDA build on a machine without a GPU has nothing to run these on (tests/allowed-skips.txt).
#define NEED_CUDA() \
  if (!wersa::cuda_available()) GTEST_SKIP() << "no CUDA device"

// The README and docs/*.md, concatenated: real English text with code and tables.
std::string corpus(const TempDir& dir) {
  const std::string path = dir / "corpus.txt";
  std::string text = read_file(source_dir() + "/README.md");
  for (const auto& e : fs::directory_iterator(source_dir() + "/docs"))
    if (e.path().extension() == ".md") text += read_file(e.path().string());
  write_file(path, text);
  return path;
}

std::vector<double> losses(const std::string& metrics) {
  std::vector<double> out;
  std::istringstream in(read_file(metrics));
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("loss")) out.push_back(j["loss"].get<double>());
  }
  return out;
}

// The value of a "key value" line of wersa-eval's output.
double eval_value(const std::string& out, const std::string& key) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + " ", 0) == 0) return std::stod(line.substr(key.size() + 1));
  ADD_FAILURE() << "no '" << key << "' line in: " << out;
  return NAN;
}

std::string train_cmd(const std::string& text, const std::string& out, const std::string& device) {
  return "wersa-train --config " + source_dir() +
         "/configs/tiny.json --set train.steps=4 --set train.seq_len=32 --set train.batch_size=2 "
         "--set train.warmup_steps=1 --set train.eval_every=0 --set train.log_every=1 --set data.val= "
         "--set data.train=" +
         text + " --device " + device + " --out " + out;
}

}  // namespace

TEST(CudaTools, TrainEvalAndGenerateFollowTheCpu) {
  NEED_CUDA();
  const TempDir dir("cuda_tools");
  const std::string text = corpus(dir);
  for (const char* dev : {"cpu", "cuda"}) {
    const ToolRun r = run_tool(train_cmd(text, dir / dev, dev));
    ASSERT_EQ(r.status, 0) << dev << ": " << r.err;
  }
  const auto lc = losses(dir / "cpu/metrics.jsonl"), lg = losses(dir / "cuda/metrics.jsonl");
  ASSERT_EQ(lc.size(), 4u);
  ASSERT_EQ(lg.size(), lc.size());
  for (size_t i = 0; i < lc.size(); ++i)
    EXPECT_NEAR(lg[i], lc[i], 1e-4 * std::fabs(lc[i])) << "step " << i + 1;
  const nlohmann::json cfg = nlohmann::json::parse(read_file(dir / "cuda/config.json"));
  EXPECT_EQ(cfg["train"]["device"], "cuda");

  // Evaluation of the CUDA run's checkpoint on either device: the same loss.
  double loss[2];
  int k = 0;
  for (const char* dev : {"cpu", "cuda"}) {
    const ToolRun r = run_tool("wersa-eval -m " + (dir / "cuda") + " --text " + text +
                               " --max-tokens 2000 --device " + dev);
    ASSERT_EQ(r.status, 0) << dev << ": " << r.err;
    loss[k++] = eval_value(r.out, "mean_loss");
  }
  EXPECT_NEAR(loss[1], loss[0], 1e-4 * std::fabs(loss[0]));

  // Greedy generation: the same text on both devices (logits agree far inside the gaps between them).
  std::string gen[2];
  k = 0;
  for (const char* dev : {"cpu", "cuda"}) {
    const ToolRun r = run_tool("wersa-generate -m " + (dir / "cuda") +
                               " -p 'The engine' -n 24 --temp 0 --seed 1 --device " + std::string(dev));
    ASSERT_EQ(r.status, 0) << dev << ": " << r.err;
    gen[k++] = r.out;
  }
  EXPECT_GT(gen[0].size(), std::string("The engine").size());
  EXPECT_EQ(gen[1], gen[0]);
}

TEST(CudaTools, BenchmarksRunOnTheDevice) {
  NEED_CUDA();
  const TempDir dir("cuda_bench");
  const std::string cfg = source_dir() + "/configs/tiny.json";
  const ToolRun d = run_tool("wersa-bench --device cuda --config " + cfg +
                             " -p 8 -n 4 -d 0,16 -r 1 --bw-mib 4 --json " + (dir / "decode.json"));
  ASSERT_EQ(d.status, 0) << d.err;
  const nlohmann::json jd = nlohmann::json::parse(read_file(dir / "decode.json"));
  EXPECT_EQ(jd["device"], "cuda");
  EXPECT_GT(jd["memory_bandwidth_gbs"].get<double>(), 0.0);
  std::vector<std::string> tests;
  for (const auto& row : jd["results"]) {
    tests.push_back(row["test"].get<std::string>() + "@" + std::to_string(row["depth"].get<int64_t>()));
    EXPECT_GT(row["avg_ts"].get<double>(), 0.0);
  }
  EXPECT_EQ(tests, (std::vector<std::string>{"pp8@0", "tg4@0", "pp8@16", "tg4@16"}));

  const ToolRun t = run_tool("wersa-bench train --device cuda --config " + cfg +
                             " -T 16,32 -b 1 -r 1 --warmup 0 --gemm-size 32 --no-forward --ops --json " +
                             (dir / "train.json"));
  ASSERT_EQ(t.status, 0) << t.err;
  const nlohmann::json jt = nlohmann::json::parse(read_file(dir / "train.json"))["rows"];
  ASSERT_EQ(jt.size(), 2u);
  for (const auto& row : jt) {
    EXPECT_EQ(row["device"], "cuda");
    EXPECT_EQ(row["status"], "ok");
    // The device holds the model and optimizer (state) and, at the peak, the step's activations too.
    EXPECT_GT(row["state_device_bytes"].get<size_t>(), 0u);
    EXPECT_GT(row["peak_device_bytes"].get<size_t>(), row["state_device_bytes"].get<size_t>());
    EXPECT_GT(row["train_tok_per_s_median"].get<double>(), 0.0);
    // --ops on the device: the attention's own ops and the GEMMs are timed (each call synchronised).
    std::vector<std::string> ops;
    for (const auto& op : row["train_ops"]) {
      ops.push_back(op["op"].get<std::string>());
      EXPECT_GT(op["calls_per_step"].get<double>(), 0.0) << ops.back();
      EXPECT_GE(op["seconds_per_step"].get<double>(), 0.0) << ops.back();
    }
    for (const char* want : {"haar_filter_fwd", "haar_filter_bwd", "linear_attention_fwd",
                             "linear_attention_bwd", "matmul_fwd", "matmul_bwd", "adamw_step"})
      EXPECT_NE(std::find(ops.begin(), ops.end(), want), ops.end()) << want;
  }
  // Twice the tokens per step, more activation memory on the device.
  EXPECT_GT(jt[1]["peak_device_bytes"].get<size_t>(), jt[0]["peak_device_bytes"].get<size_t>());
}

TEST(CudaTools, ExperimentTrainsAndEvaluatesOnTheDevice) {
  NEED_CUDA();
  const TempDir dir("cuda_experiment");
  const std::string text = corpus(dir);
  const nlohmann::json spec = {{"title", "two kinds on the device"},
                               {"mode", "lm"},
                               {"base", source_dir() + "/configs/tiny.json"},
                               {"set",
                                {"data.train=" + text, "data.val=" + text, "train.batch_size=2",
                                 "train.log_every=1", "train.warmup_steps=1"}},
                               {"variants",
                                {{{"name", "wersa"}, {"set", {"model.attention.type=wersa"}}},
                                 {{"name", "softmax"}, {"set", {"model.attention.type=softmax"}}}}},
                               {"lengths", {32}},
                               {"budget", {{"steps", 2}}},
                               {"eval", {{"max_tokens", 1000}}}};
  write_file(dir / "spec.json", spec.dump(2));
  const ToolRun r =
      run_tool("wersa-experiment " + (dir / "spec.json") + " -o " + (dir / "out") + " --device cuda");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json res = nlohmann::json::parse(read_file(dir / "out/results.json"));
  int ok = 0;
  for (const auto& run : res["runs"]) {
    ok += run["result"]["status"] == "ok";
    const std::string name = run["name"].get<std::string>();
    const nlohmann::json c = nlohmann::json::parse(read_file(dir / ("out/runs/" + name + "/config.json")));
    EXPECT_EQ(c["train"]["device"], "cuda") << name;
    EXPECT_NE(read_file(dir / ("out/runs/" + name + "/eval-log.txt")).find("mean_loss"), std::string::npos)
        << name;
  }
  EXPECT_EQ(ok, 2) << res["runs"].dump();
}

// wersa-server --device cuda: seeded completions (a 4-step model's greedy text is one repeated
// byte; sampling reads every probability), alone and two at once (batched steps of two rows on
// the device), are the tokens of the same server on the CPU; so is a prompt that extends a kept
// session, whose state went from the device into the session cache and back.
TEST(CudaTools, ServerOnTheDeviceAnswersAsOnTheCpu) {
  NEED_CUDA();
  const TempDir dir("cuda_server");
  const std::string text = corpus(dir), ckpt = dir / "run";
  const ToolRun t = run_tool(train_cmd(text, ckpt, "cpu"));
  ASSERT_EQ(t.status, 0) << t.err;
  Server gpu({"--device", "cuda", "--parallel", "2"}, ckpt), cpu({"--parallel", "2"}, ckpt);
  ASSERT_TRUE(gpu.port > 0 && cpu.port > 0);
  EXPECT_NE(read_file(gpu.dir / "err").find("on cuda"), std::string::npos) << read_file(gpu.dir / "err");
  auto req = [](const std::string& prompt, int seed) {
    return nlohmann::json{{"prompt", prompt},
                          {"max_tokens", 24},
                          {"temperature", 1.0},
                          {"seed", seed},
                          {"return_tokens", true}};
  };
  auto tokens = [](const Reply& r) {
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.status == 200 ? r.body["choices"][0]["tokens"] : nlohmann::json();
  };
  // Token-id prompts (the byte tokenizer's: a byte's id is its value): sampled bytes need not be
  // UTF-8, and the prompt that extends a kept session must be its exact tokens.
  auto ids = [](const std::string& s) {
    std::vector<int> v;
    for (unsigned char ch : s) v.push_back(ch);
    return v;
  };
  nlohmann::json a = req("", 1), b = req("Every op", 2);
  a["prompt"] = ids("The engine");
  const Reply first = complete(cpu, a);
  ASSERT_EQ(tokens(first).size(), 24u) << first.raw;
  std::set<int> distinct;
  for (const auto& x : tokens(first)) distinct.insert(x.get<int>());
  EXPECT_GE(distinct.size(), 6u) << first.raw;
  EXPECT_EQ(tokens(complete(gpu, a)), tokens(first));
  auto fa = std::async(std::launch::async, [&] { return complete(gpu, a); });
  auto fb = std::async(std::launch::async, [&] { return complete(gpu, b); });
  EXPECT_EQ(tokens(fa.get()), tokens(first));
  EXPECT_EQ(tokens(fb.get()), tokens(complete(cpu, b)));
  std::vector<int> longer = ids("The engine");
  for (const auto& x : tokens(first)) longer.push_back(x.get<int>());
  for (int x : ids(" and")) longer.push_back(x);
  nlohmann::json c = req("", 3);
  c["prompt"] = longer;
  const Reply resumed = complete(gpu, c);
  EXPECT_GE(resumed.body["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 10 + 24)
      << resumed.raw;
  EXPECT_EQ(tokens(resumed), tokens(complete(cpu, c)));
}

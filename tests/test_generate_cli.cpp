// wersa-generate and wersa-bench as a user runs them: greedy and seeded output is reproducible
// and independent of the thread count, a state saved by one run continues exactly in the next,
// errors are one line, the bench prints its table and JSON.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "testutil.h"
#include "wersa/io/checkpoint.h"

namespace fs = std::filesystem;
using namespace wersa;
using namespace wersa::test;

namespace {

// A directory of its own for `name`, under one temporary root removed at exit.
fs::path temp_dir(const std::string& name) {
  static const TempDir root("gencli");
  const fs::path p = root.path / name;
  fs::create_directories(p);
  return p;
}

// A byte-level checkpoint of a small random model.
std::string make_checkpoint(const std::string& name, const std::string& type, uint64_t seed = 1) {
  Config cfg;
  cfg.model.dim = 32;
  cfg.model.layers = 2;
  cfg.model.heads = 4;
  cfg.model.kv_heads = 2;
  cfg.model.ffn_dim = 64;
  cfg.model.init_std = 0.3;
  cfg.model.attention.type = attention_kind_from_name(type);
  cfg.model.attention.features = 16;
  cfg.model.attention.conv_width = 9;
  cfg.train.seq_len = 48;
  Model m(cfg.model, DType::F32, Device::CPU, false);
  m.init(seed);
  const fs::path dir = temp_dir(name);
  io::save_checkpoint(dir.string(), 1,
                      {&m, nullptr, nullptr, config_to_json(cfg), io::CheckpointState{1, 0, 0, 0}, ""});
  return dir.string();
}

}  // namespace

TEST(GenerateCli, GreedyAndSeededOutputIsReproducibleForAnyThreadCount) {
  const std::string ck = make_checkpoint("det", "wersa");
  const std::string base = "wersa-generate -m " + ck + " -p 'Once upon a time' -n 40 ";
  const ToolRun g1 = run_tool(base + "--temp 0 -t 1"), g2 = run_tool(base + "--temp 0 -t 2");
  ASSERT_EQ(g1.status, 0) << g1.err;
  EXPECT_EQ(g1.out, g2.out);
  EXPECT_EQ(g1.out.rfind("Once upon a time", 0), 0u) << g1.out;  // the prompt is echoed first
  EXPECT_GT(g1.out.size(), std::string("Once upon a time").size());
  EXPECT_NE(g1.err.find("prompt eval time"), std::string::npos) << g1.err;
  EXPECT_NE(g1.err.find("tokens per second"), std::string::npos) << g1.err;
  const ToolRun s1 = run_tool(base + "-s 5 --temp 1 -t 1"), s2 = run_tool(base + "-s 5 --temp 1 -t 2");
  ASSERT_EQ(s1.status, 0) << s1.err;
  EXPECT_EQ(s1.out, s2.out);
  EXPECT_NE(run_tool(base + "-s 6 --temp 1").out, s1.out);
}

TEST(GenerateCli, SavedStateContinuesExactly) {
  for (const char* type : {"wersa", "softmax", "linear"}) {
    const std::string ck = make_checkpoint(std::string("state_") + type, type);
    const fs::path d = temp_dir(std::string("st_") + type);
    const std::string st = (d / "s.safetensors").string();
    const std::string common = "wersa-generate -m " + ck + " --no-display-prompt -s 9 ";
    // One run of 20 tokens, against 10 tokens, a saved state, and 10 more from the loaded state.
    const ToolRun full = run_tool(common + "-p 'The state' -n 20 --temp 0.9");
    const ToolRun a = run_tool(common + "-p 'The state' -n 10 --temp 0.9 --save-state " + st);
    const ToolRun b = run_tool(common + "--load-state " + st + " -n 10 --temp 0.9");
    ASSERT_EQ(full.status, 0) << full.err;
    ASSERT_EQ(a.status, 0) << a.err;
    ASSERT_EQ(b.status, 0) << b.err;
    auto strip = [](std::string s) { return s.empty() || s.back() != '\n' ? s : s.substr(0, s.size() - 1); };
    EXPECT_EQ(strip(a.out) + strip(b.out), strip(full.out)) << type;
    // A document read once (-n 0), then a question appended from the saved state.
    const ToolRun read = run_tool(common + "-p 'A long document.' -n 0 --save-state " + st);
    ASSERT_EQ(read.status, 0) << read.err;
    const ToolRun q1 = run_tool(common + "--load-state " + st + " -p ' Question?' -n 12 --temp 0");
    const ToolRun q2 = run_tool(common + "-p 'A long document. Question?' -n 12 --temp 0");
    ASSERT_EQ(q1.status, 0) << q1.err;
    EXPECT_EQ(q1.out, q2.out) << type;
    // Another model refuses the state.
    const std::string other = make_checkpoint(std::string("other_") + type, type, 2);
    expect_one_line_error(run_tool("wersa-generate -m " + other + " --load-state " + st + " -n 1"),
                          "another model");
  }
}

TEST(GenerateCli, ErrorsAreOneLine) {
  const std::string soft = make_checkpoint("soft_err", "softmax");
  // seq_len 48: a 60-byte prompt (plus the EOS prefix) does not fit the KV cache.
  expect_one_line_error(run_tool("wersa-generate -m " + soft + " -p '" + std::string(60, 'x') + "' -n 1"),
                        "context of 48");
  // -c raises the limit.
  EXPECT_EQ(run_tool("wersa-generate -m " + soft + " -c 100 -p '" + std::string(60, 'x') + "' -n 1").status,
            0);
  const std::string ck = make_checkpoint("wersa_err", "wersa");
  expect_one_line_error(run_tool("wersa-generate -m " + ck), "-p", 2);
  expect_one_line_error(run_tool("wersa-generate -m " + ck + " -f /nonexistent/prompt.txt"),
                        "/nonexistent/prompt.txt", 2);
  expect_one_line_error(run_tool("wersa-generate -m " + ck + " -p x --top-p 1.5"), "--top-p", 2);
  expect_one_line_error(run_tool("wersa-generate -m /nonexistent/ckpt -p x"), "/nonexistent/ckpt", 2);
  const fs::path d = temp_dir("bad_state");
  std::ofstream(d / "junk.safetensors") << "not a safetensors file";
  expect_one_line_error(
      run_tool("wersa-generate -m " + ck + " --load-state " + (d / "junk.safetensors").string()),
      "junk.safetensors");
}

TEST(GenerateCli, InteractiveModeKeepsTheState) {
  const std::string ck = make_checkpoint("inter", "wersa");
  const ToolRun r = run_tool("wersa-generate -m " + ck + " -i -n 8 --temp 0 -p 'Hi' --save-state " +
                                 (temp_dir("inter_st") / "s.safetensors").string(),
                             "first line\nsecond line\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("> "), std::string::npos);
  // EOS + 'Hi' (3) + 8, then 11 + 8, then 12 + 8 tokens.
  EXPECT_NE(r.err.find("state of 50 tokens"), std::string::npos) << r.err;
}

TEST(GenerateCli, BenchPrintsTheTableAndJson) {
  const fs::path d = temp_dir("bench");
  const std::string json = (d / "bench.json").string();
  const ToolRun r = run_tool(
      "wersa-bench --config " + source_dir() +
      "/configs/tiny.json --attention wersa,softmax -p 16 -n 8 -d 0,32 -r 2 --bw-mib 16 --json " + json);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("| test | t/s |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| pp16 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tg8 @ d32"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("memory bandwidth"), std::string::npos) << r.out;
  std::ifstream f(json);
  const nlohmann::json j = nlohmann::json::parse(f);
  EXPECT_EQ(j["results"].size(), 8u);  // 2 attention types x 2 depths x (pp, tg)
  EXPECT_GT(j["memory_bandwidth_gbs"].get<double>(), 0.0);
  for (const auto& row : j["results"]) EXPECT_EQ(row["samples_ts"].size(), 2u);
  expect_one_line_error(run_tool("wersa-bench --config " + source_dir() + "/configs/tiny.json -d 1,x"), "-d",
                        2);
  expect_one_line_error(run_tool("wersa-bench"), "--config", 2);
}

TEST(GenerateCli, BenchRunsTheLinearAttention) {
  const fs::path d = temp_dir("bench_linear");
  const std::string json = (d / "bench.json").string();
  const ToolRun r =
      run_tool("wersa-bench --config " + source_dir() +
               "/configs/tiny.json --attention linear -p 16 -n 8 -d 0,32 -r 2 --bw-mib 0 --json " + json);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("| linear |"), std::string::npos) << r.out;
  std::ifstream f(json);
  const nlohmann::json j = nlohmann::json::parse(f);
  EXPECT_EQ(j["results"].size(), 4u);  // 2 depths x (pp, tg)
  for (const auto& row : j["results"]) EXPECT_GT(row["avg_ts"].get<double>(), 0.0);
  EXPECT_LT(j["models"][0]["state_bytes"].get<double>(), 64 * 1024);  // S and z only
}

// --save-state onto a device writes in place: /dev/full gives one line and stays a device; a
// damaged or non-finite checkpoint is refused in one line before anything is generated.
TEST(GenerateCli, DevicesAndDamagedCheckpoints) {
  const std::string ck = make_checkpoint("robust", "wersa");
  struct stat st {};
  if (::stat("/dev/full", &st) == 0) {
    expect_one_line_error(run_tool("wersa-generate -m " + ck + " -p 'The' -n 4 --save-state /dev/full"),
                          "/dev/full: cannot write file: No space left on device");
    ASSERT_EQ(::stat("/dev/full", &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
  }
  const std::string model = io::find_latest_checkpoint(ck) + "/model.safetensors";
  std::string bytes = read_file(model);
  bytes[bytes.size() - 7] = char(bytes[bytes.size() - 7] ^ 1);
  write_file(model, bytes);
  expect_one_line_error(run_tool("wersa-generate -m " + ck + " -p 'The' -n 4"), "the tensor data is damaged");
  expect_one_line_error(run_tool("wersa-eval -m " + ck + " --text " + model), "the tensor data is damaged");
}

// wersa-eval --by-position: every predicted position falls in the bucket of its place in the
// window (windows start at multiples of --seq), and the buckets recombine into the mean loss.
TEST(GenerateCli, Bf16WeightsGenerateEvaluateAndBench) {
  // --weights bf16 rounds the linear-layer weights once at load: generation runs and differs from
  // f32 only by that rounding (same length, reproducible), the held-out loss moves by a bf16-sized
  // amount, and wersa-bench runs both formats in one run and prints their ratio.
  const std::string ck = make_checkpoint("bf16", "wersa");
  const std::string base = "wersa-generate -m " + ck + " -p 'Once upon a time' -n 30 --temp 0 ";
  const ToolRun f = run_tool(base), h1 = run_tool(base + "--weights bf16 -t 1"),
                h2 = run_tool(base + "--weights bf16 -t 2");
  ASSERT_EQ(h1.status, 0) << h1.err;
  EXPECT_EQ(h1.out, h2.out);
  EXPECT_EQ(h1.out.rfind("Once upon a time", 0), 0u) << h1.out;
  const fs::path dir = temp_dir("bf16_text");
  write_file((dir / "t.txt").string(), real_text(3000));
  auto loss_of = [&](const std::string& weights) {
    const ToolRun r = run_tool("wersa-eval -m " + ck + " --text " + (dir / "t.txt").string() +
                               " --seq 200 --weights " + weights);
    EXPECT_EQ(r.status, 0) << r.err;
    std::istringstream in(r.out);
    std::string key;
    double v = -1;
    for (std::string line; std::getline(in, line);) {
      std::istringstream ls(line);
      if (ls >> key && key == "mean_loss") ls >> v;
    }
    return v;
  };
  const double lf = loss_of("f32"), lh = loss_of("bf16");
  ASSERT_GT(lf, 0);
  EXPECT_NE(lf, lh);
  EXPECT_LT(std::fabs(lh - lf) / lf, 0.01) << lf << " vs " << lh;
  const ToolRun b = run_tool("wersa-bench -m " + ck + " --weights f32,bf16 -p 8 -n 8 -r 1 --bw-mib 0");
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_NE(b.out.find("| bf16 |"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("| f32 |"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("tg8 @ d0: bf16"), std::string::npos) << b.out;
}

TEST(GenerateCli, EvalLossByPosition) {
  const std::string ck = make_checkpoint("bypos", "wersa");
  const fs::path dir = temp_dir("bypos_text");
  const std::string text = real_text(2500);
  write_file((dir / "t.txt").string(), text);
  const ToolRun r =
      run_tool("wersa-eval -m " + ck + " --text " + (dir / "t.txt").string() + " --seq 300 --by-position");
  ASSERT_EQ(r.status, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  int64_t tokens = -1, sum_n = 0;
  double mean = 0, sum = 0;
  std::map<std::string, int64_t> got;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string key;
    ls >> key;
    if (key == "tokens") ls >> tokens;
    if (key == "mean_loss") ls >> mean;
    if (key != "by_position") continue;
    std::string range, w1, w2;
    int64_t n = 0;
    double m = 0;
    ls >> range >> w1 >> n >> w2 >> m;
    got[range] = n;
    sum_n += n;
    sum += m * double(n);
  }
  ASSERT_GT(tokens, 0) << r.out;
  EXPECT_EQ(sum_n, tokens);
  EXPECT_NEAR(sum / double(tokens), mean, 2e-6 * std::max(1.0, mean));
  std::map<std::string, int64_t> want;
  for (int64_t pos = 1; pos <= tokens; ++pos) {
    const int64_t t = (pos - 1) % 300;
    want[t < 64 ? "0-63" : t < 256 ? "64-255" : "256-299"]++;
  }
  EXPECT_EQ(got, want) << r.out;
}

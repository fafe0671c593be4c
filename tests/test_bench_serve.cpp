// wersa-bench serve on a tiny random model: the report's structure and invariants (every token
// requested arrives and is counted once, by the client and by the server; percentiles ordered;
// one kept session per request), and the memory mode's session bytes: a WERSA session grows by
// its token ids only, a softmax session by its KV rows (2 x layers x kv_heads x head_dim floats
// per token) as well.
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "testutil.h"
#include "wersa/io/checkpoint.h"
#include "wersa/model/model.h"

using namespace wersa;
using namespace wersa::test;
using nlohmann::json;

namespace {

Config tiny_config(const std::string& type) {
  Config cfg;
  cfg.model.dim = 32;
  cfg.model.layers = 2;
  cfg.model.heads = 4;
  cfg.model.kv_heads = 2;
  cfg.model.ffn_dim = 64;
  cfg.model.attention.type = attention_kind_from_name(type);
  cfg.model.attention.features = 16;
  cfg.model.attention.conv_width = 9;
  cfg.train.seq_len = 64;
  return cfg;
}

std::string checkpoint(const TempDir& dir, const std::string& type) {
  const Config cfg = tiny_config(type);
  Model m(cfg.model, DType::F32, Device::CPU, false);
  m.init(3);
  io::save_checkpoint(dir / type, 1,
                      {&m, nullptr, nullptr, config_to_json(cfg), io::CheckpointState{1, 0, 0, 0}, ""});
  return dir / type;
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

}  // namespace

TEST(BenchServe, ReportCountsEveryTokenRequested) {
  const TempDir dir("bench-serve");
  const std::string ck = checkpoint(dir, "wersa");
  const ToolRun r = run_tool("wersa-bench serve -m " + ck +
                             " --clients 3 --requests 2 -n 17 -p 9 -t 1 --temp 1 --json " + (dir / "r.json"));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("102 of 102 tokens received, 0 errors"), std::string::npos) << r.out;
  const json j = read_json(dir / "r.json");
  EXPECT_EQ(j["requests"], 6);
  EXPECT_EQ(j["errors"], 0);
  EXPECT_EQ(j["tokens_requested"], 3 * 2 * 17);
  EXPECT_EQ(j["tokens_received"], 3 * 2 * 17);
  EXPECT_EQ(j["server"]["completion_tokens"], 3 * 2 * 17);
  EXPECT_EQ(j["server"]["sessions_cached"], 7);  // distinct prompts: one kept session each, and the warm-up's
  const double rows = j["server"]["rows_per_step"].get<double>();
  EXPECT_GE(rows, 1.0);
  EXPECT_LE(rows, 3.0);
  for (const char* k : {"ttft_ms", "itl_ms"}) {
    EXPECT_GT(j[k]["p50"].get<double>(), 0) << k;
    EXPECT_LE(j[k]["p50"].get<double>(), j[k]["p99"].get<double>()) << k;
  }
  const json& st = j["stream_tokens_per_s"];
  EXPECT_GT(st["min"].get<double>(), 0);
  EXPECT_LE(st["min"].get<double>(), st["mean"].get<double>());
  EXPECT_LE(st["mean"].get<double>(), st["max"].get<double>());
  EXPECT_NEAR(j["aggregate_tokens_per_s"].get<double>(), 102 / j["wall_s"].get<double>(), 1e-6);
}

TEST(BenchServe, SessionBytesByContextLength) {
  const TempDir dir("bench-serve-mem");
  std::map<std::string, json> got;
  for (const char* type : {"wersa", "softmax"}) {
    const ToolRun r = run_tool("wersa-bench serve -m " + checkpoint(dir, type) +
                               " --context 50,200 -t 1 --parallel 1 --json " + (dir / "m.json"));
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    got[type] = read_json(dir / "m.json")["memory"];
    ASSERT_EQ(got[type].size(), 2u);
    EXPECT_EQ(got[type][0]["context"], 51);  // the prompt and the one generated token
    EXPECT_EQ(got[type][1]["context"], 201);
  }
  auto growth = [&](const std::string& t) {
    return got[t][1]["session_bytes"].get<double>() - got[t][0]["session_bytes"].get<double>();
  };
  EXPECT_EQ(growth("wersa"), 150 * 4);      // the token ids
  const int kv = 2 * 2 * 2 * (32 / 4) * 4;  // K and V, 2 layers, 2 kv heads, head_dim 8, f32
  EXPECT_EQ(growth("softmax"), 150 * (4 + kv));
}

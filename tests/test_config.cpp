// Config: defaults, JSON round trip of every field, unknown keys, wrong types, ranges, files,
// --set, cross-field rules, and that help and config.json list exactly the same keys.
#include <unistd.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "testutil.h"
#include "wersa/common/version.h"
#include "wersa/model/config.h"

using namespace wersa;
using json = nlohmann::json;

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string json_error(const std::string& text, const std::string& source = "configs/x.json") {
  return error_of([&] { config_from_json(json::parse(text), source); });
}

#define EXPECT_CONTAINS(haystack, needle)                                                           \
  do {                                                                                              \
    const std::string h_ = (haystack);                                                              \
    EXPECT_NE(h_.find(needle), std::string::npos) << "message: " << h_ << "\nwanted: " << (needle); \
    EXPECT_EQ(h_.find('\n'), std::string::npos) << "multi-line message: " << h_;                    \
  } while (0)

void leaf_keys(const json& j, const std::string& prefix, std::set<std::string>& out) {
  for (const auto& item : j.items()) {
    const std::string path = prefix.empty() ? item.key() : prefix + "." + item.key();
    if (item.value().is_object())
      leaf_keys(item.value(), path, out);
    else
      out.insert(path);
  }
}

// Temporary files, removed when the test program exits.
struct TmpFiles {
  std::vector<std::string> paths;
  ~TmpFiles() {
    for (const std::string& p : paths) ::unlink(p.c_str());
  }
} tmp_files;

std::string tmp_file(const std::string& name, const std::string& contents) {
  const std::string path = ::testing::TempDir() + "wersa_cfg_" + std::to_string(::getpid()) + "_" + name;
  tmp_files.paths.push_back(path);
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// Every field of every struct set to a valid non-default value, written out member by member,
// so that a field missing from the declaration list fails the round trip below.
Config all_non_default() {
  Config c;
  ModelConfig& m = c.model;
  m.vocab_size = 1000, m.dim = 96, m.layers = 3, m.heads = 6, m.kv_heads = 3, m.ffn_dim = 200;
  m.tie_embeddings = false, m.rope_theta = 500000.0, m.norm_eps = 1e-5, m.init_std = 0.015;
  AttentionConfig& a = m.attention;
  a.type = AttentionKind::Softmax, a.features = 48, a.levels = 4, a.conv_width = 17,
  a.shared_qk_features = false;
  a.feature_map = "exp";
  a.causal = false, a.chunk = 128, a.eps = 1e-5, a.qkv_bias = false, a.gate_dim = 20, a.head_norm_eps = 1e-4;
  TrainConfig& t = c.train;
  t.steps = 5000, t.batch_size = 16, t.seq_len = 512, t.lr = 6e-4, t.min_lr = 6e-5, t.warmup_steps = 300;
  t.weight_decay = 0.05, t.grad_clip = 0.5, t.grad_accum = 2, t.seed = 18446744073709551557ull;
  t.eval_every = 250, t.eval_batches = 20, t.checkpoint_every = 1000, t.keep_last = 3, t.log_every = 10,
  t.beta1 = 0.8;
  t.beta2 = 0.99, t.adam_eps = 1e-7, t.device = "cuda", t.threads = 3, t.recompute = true;
  t.precision = "bf16";
  t.class_weights = "balanced", t.init_from = "runs/lm/step_000100", t.freeze_trunk_steps = 50;
  c.data.train = "data/train.txt", c.data.val = "data/val.txt", c.data.tokenizer = "tok.model";
  c.data.truncate = "head_tail", c.data.val_fraction = 0.2, c.data.test_fraction = 0.15;
  TaskConfig& k = m.task;
  k.type = "classify", k.num_classes = 3, k.pooling = "last", k.labels = {"cs", "math", "physics"};
  return c;
}

void expect_same(const Config& x, const Config& y) {
  const ModelConfig &m = x.model, &n = y.model;
  EXPECT_EQ(m.vocab_size, n.vocab_size);
  EXPECT_EQ(m.dim, n.dim);
  EXPECT_EQ(m.layers, n.layers);
  EXPECT_EQ(m.heads, n.heads);
  EXPECT_EQ(m.kv_heads, n.kv_heads);
  EXPECT_EQ(m.ffn_dim, n.ffn_dim);
  EXPECT_EQ(m.tie_embeddings, n.tie_embeddings);
  EXPECT_EQ(m.rope_theta, n.rope_theta);
  EXPECT_EQ(m.norm_eps, n.norm_eps);
  EXPECT_EQ(m.init_std, n.init_std);
  const AttentionConfig &a = m.attention, &b = n.attention;
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.features, b.features);
  EXPECT_EQ(a.levels, b.levels);
  EXPECT_EQ(a.conv_width, b.conv_width);
  EXPECT_EQ(a.shared_qk_features, b.shared_qk_features);
  EXPECT_EQ(a.feature_map, b.feature_map);
  EXPECT_EQ(a.causal, b.causal);
  EXPECT_EQ(a.chunk, b.chunk);
  EXPECT_EQ(a.eps, b.eps);
  EXPECT_EQ(a.qkv_bias, b.qkv_bias);
  EXPECT_EQ(a.gate_dim, b.gate_dim);
  EXPECT_EQ(a.head_norm_eps, b.head_norm_eps);
  const TrainConfig &t = x.train, &u = y.train;
  EXPECT_EQ(t.steps, u.steps);
  EXPECT_EQ(t.batch_size, u.batch_size);
  EXPECT_EQ(t.seq_len, u.seq_len);
  EXPECT_EQ(t.lr, u.lr);
  EXPECT_EQ(t.min_lr, u.min_lr);
  EXPECT_EQ(t.warmup_steps, u.warmup_steps);
  EXPECT_EQ(t.weight_decay, u.weight_decay);
  EXPECT_EQ(t.grad_clip, u.grad_clip);
  EXPECT_EQ(t.grad_accum, u.grad_accum);
  EXPECT_EQ(t.seed, u.seed);
  EXPECT_EQ(t.eval_every, u.eval_every);
  EXPECT_EQ(t.eval_batches, u.eval_batches);
  EXPECT_EQ(t.checkpoint_every, u.checkpoint_every);
  EXPECT_EQ(t.keep_last, u.keep_last);
  EXPECT_EQ(t.log_every, u.log_every);
  EXPECT_EQ(t.beta1, u.beta1);
  EXPECT_EQ(t.beta2, u.beta2);
  EXPECT_EQ(t.adam_eps, u.adam_eps);
  EXPECT_EQ(t.device, u.device);
  EXPECT_EQ(t.threads, u.threads);
  EXPECT_EQ(t.recompute, u.recompute);
  EXPECT_EQ(t.precision, u.precision);
  EXPECT_EQ(x.data.train, y.data.train);
  EXPECT_EQ(x.data.val, y.data.val);
  EXPECT_EQ(x.data.tokenizer, y.data.tokenizer);
  EXPECT_EQ(t.class_weights, u.class_weights);
  EXPECT_EQ(t.init_from, u.init_from);
  EXPECT_EQ(t.freeze_trunk_steps, u.freeze_trunk_steps);
  EXPECT_EQ(x.data.truncate, y.data.truncate);
  EXPECT_EQ(x.data.val_fraction, y.data.val_fraction);
  EXPECT_EQ(x.data.test_fraction, y.data.test_fraction);
  const TaskConfig &k = x.model.task, &l = y.model.task;
  EXPECT_EQ(k.type, l.type);
  EXPECT_EQ(k.num_classes, l.num_classes);
  EXPECT_EQ(k.pooling, l.pooling);
  EXPECT_EQ(k.labels, l.labels);
}

}  // namespace

TEST(Config, DefaultsValidate) {
  Config c;
  EXPECT_NO_THROW(config_validate(c, "defaults"));
  EXPECT_EQ(config_head_dim(c.model), 16);
  EXPECT_EQ(config_gate_dim(c.model), 16);
  const Config parsed = config_from_json(json::object(), "empty");
  expect_same(parsed, c);
  // Training needs data; the default config has none.
  EXPECT_CONTAINS(error_of([&] { require_training_data(c, "cfg"); }), "cfg: data.train: is empty");
  c.data.train = "x.txt";
  EXPECT_NO_THROW(require_training_data(c, "cfg"));
}

TEST(Config, RoundTripEveryField) {
  const Config c = all_non_default();
  ASSERT_NO_THROW(config_validate(c, "test"));
  const json j = config_to_json(c);
  const Config back = config_from_json(json::parse(j.dump()), "round trip");
  expect_same(back, c);
  EXPECT_EQ(config_to_json(back), j);
  // Every field really differs from its default, so the comparison above means something.
  const json d = config_to_json(Config{});
  std::set<std::string> keys;
  leaf_keys(d, "", keys);
  for (const std::string& k : keys) {
    std::string ptr = "/" + k;
    std::replace(ptr.begin(), ptr.end(), '.', '/');
    EXPECT_NE(j.at(json::json_pointer(ptr)), d.at(json::json_pointer(ptr))) << k << " has its default";
  }
}

TEST(Config, PartialJsonKeepsDefaults) {
  const Config c = config_from_json(json::parse(R"({"model": {"dim": 128, "attention": {"levels": 5}},
                                                    "train": {"seed": 7}})"),
                                    "x");
  EXPECT_EQ(c.model.dim, 128);
  EXPECT_EQ(c.model.attention.levels, 5);
  EXPECT_EQ(c.train.seed, 7u);
  EXPECT_EQ(c.model.heads, 4);
  EXPECT_EQ(c.model.attention.type, AttentionKind::Wersa);
  EXPECT_EQ(c.train.lr, 1e-3);
}

TEST(Config, UnknownKeysNameTheFullPath) {
  EXPECT_EQ(json_error(R"({"foo": 1})"), "configs/x.json: unknown key 'foo'");
  EXPECT_EQ(json_error(R"({"model": {"foo": 1}})"), "configs/x.json: unknown key 'model.foo'");
  EXPECT_EQ(json_error(R"({"model": {"attention": {"bar": {"x": 1}}}})"),
            "configs/x.json: unknown key 'model.attention.bar'");
  EXPECT_EQ(json_error(R"({"train": {"stpes": 10}})"),
            "configs/x.json: unknown key 'train.stpes' (did you mean 'train.steps'?)");
  EXPECT_EQ(json_error(R"({"model.dim": 64})"),
            "configs/x.json: unknown key 'model.dim' (keys are nested objects: {\"model\": {\"dim\": ...}})");
  EXPECT_CONTAINS(json_error(R"({"model": 3})"), "configs/x.json: model: expected an object");
  EXPECT_CONTAINS(json_error(R"({"model": {"attention": []}})"), "model.attention: expected an object");
  EXPECT_CONTAINS(json_error(R"({"model": {"dim": {"x": 1}}})"),
                  "model.dim: expected an integer, got {\"x\":1}");
  EXPECT_CONTAINS(json_error("[1, 2]"), "configs/x.json: expected a JSON object at the top level, got [1,2]");
}

// A saved config.json carries "written_by", the version line of the engine that wrote it
// (wersa/common/version.h): read back, it is accepted (a string, at the top level only) and ignored.
TEST(Config, WrittenByIsAcceptedAndIgnored) {
  json j = config_to_json(Config{});
  j["written_by"] = version_line();
  EXPECT_EQ(config_to_json(config_from_json(j, "x")), config_to_json(Config{}));
  EXPECT_EQ(json_error(R"({"written_by": 3})"), "configs/x.json: written_by: expected a string, got 3");
  EXPECT_EQ(json_error(R"({"model": {"written_by": "x"}})"),
            "configs/x.json: unknown key 'model.written_by'");
  EXPECT_EQ(version_line().rfind(std::string("wersa ") + version() + " (commit " + git_commit() + "; ", 0),
            0u)
      << version_line();
}

TEST(Config, WrongTypes) {
  EXPECT_EQ(json_error(R"({"model": {"dim": "abc"}})"),
            "configs/x.json: model.dim: expected an integer, got \"abc\"");
  EXPECT_EQ(json_error(R"({"model": {"dim": 3.5}})"),
            "configs/x.json: model.dim: expected an integer, got 3.5");
  EXPECT_EQ(json_error(R"({"model": {"dim": true}})"),
            "configs/x.json: model.dim: expected an integer, got true");
  EXPECT_EQ(json_error(R"({"model": {"dim": null}})"),
            "configs/x.json: model.dim: expected an integer, got null");
  EXPECT_EQ(json_error(R"({"model": {"tie_embeddings": 1}})"),
            "configs/x.json: model.tie_embeddings: expected true or false, got 1");
  EXPECT_EQ(json_error(R"({"model": {"tie_embeddings": "true"}})"),
            "configs/x.json: model.tie_embeddings: expected true or false, got \"true\"");
  EXPECT_EQ(json_error(R"({"train": {"lr": "fast"}})"),
            "configs/x.json: train.lr: expected a number, got \"fast\"");
  EXPECT_EQ(json_error(R"({"train": {"lr": [1]}})"), "configs/x.json: train.lr: expected a number, got [1]");
  EXPECT_EQ(json_error(R"({"data": {"train": 3}})"), "configs/x.json: data.train: expected a string, got 3");
  EXPECT_EQ(json_error(R"({"train": {"device": false}})"),
            "configs/x.json: train.device: expected a string, got false");
  EXPECT_EQ(json_error(R"({"train": {"seed": 1.5}})"),
            "configs/x.json: train.seed: expected an integer, got 1.5");
  // Integral numbers written as floats are integers.
  EXPECT_EQ(
      config_from_json(json::parse(R"({"train": {"steps": 1e4, "warmup_steps": 10.0}})"), "x").train.steps,
      10000);
  EXPECT_EQ(config_from_json(json::parse(R"({"train": {"seed": 18446744073709551615}})"), "x").train.seed,
            18446744073709551615ull);
}

TEST(Config, OutOfRange) {
  EXPECT_EQ(json_error(R"({"model": {"dim": -3}})"),
            "configs/x.json: model.dim: -3 is out of range (expected an integer in [1, 65536])");
  EXPECT_EQ(json_error(R"({"model": {"dim": 1e20}})"),
            "configs/x.json: model.dim: 1e+20 is out of range (expected an integer in [1, 65536])");
  EXPECT_EQ(
      json_error(R"({"model": {"dim": 18446744073709551615}})"),
      "configs/x.json: model.dim: 18446744073709551615 is out of range (expected an integer in [1, 65536])");
  EXPECT_EQ(json_error(R"({"model": {"attention": {"levels": 13}}})"),
            "configs/x.json: model.attention.levels: 13 is out of range (expected an integer in [1, 12])");
  EXPECT_EQ(json_error(R"({"model": {"attention": {"eps": 0}}})"),
            "configs/x.json: model.attention.eps: 0 is out of range (expected a number in (0, 1])");
  EXPECT_EQ(json_error(R"({"model": {"rope_theta": 0.5}})"),
            "configs/x.json: model.rope_theta: 0.5 is out of range (expected 0 or a number in [1, 1e+12])");
  EXPECT_EQ(json_error(R"({"train": {"beta2": 1}})"),
            "configs/x.json: train.beta2: 1 is out of range (expected a number in [0, 1))");
  EXPECT_EQ(
      json_error(R"({"train": {"seed": -1}})"),
      "configs/x.json: train.seed: -1 is out of range (expected an integer in [0, 18446744073709551615])");
  EXPECT_EQ(json_error(R"({"model": {"attention": {"type": "flash"}}})"),
            "configs/x.json: model.attention.type: \"flash\" is not a valid choice (expected one of: wersa, "
            "softmax, linear)");
  EXPECT_EQ(json_error(R"({"train": {"device": "tpu"}})"),
            "configs/x.json: train.device: \"tpu\" is not a valid choice (expected one of: cpu, cuda)");
  EXPECT_EQ(json_error(R"({"train": {"precision": "fp16"}})"),
            "configs/x.json: train.precision: \"fp16\" is not a valid choice (expected one of: fp32, bf16)");
  // Boundaries are inclusive where the help says so.
  EXPECT_NO_THROW(
      config_from_json(json::parse(R"({"model": {"rope_theta": 0, "attention": {"eps": 1}}})"), "x"));
  // Direct struct edits are caught by config_validate.
  Config c;
  c.model.layers = 0;
  EXPECT_EQ(error_of([&] { config_validate(c, "mine"); }),
            "mine: model.layers: 0 is out of range (expected an integer in [1, 1024])");
  c = Config{};
  c.train.grad_clip = -1;
  EXPECT_CONTAINS(error_of([&] { config_validate(c, "mine"); }), "mine: train.grad_clip: -1 is out of range");
}

TEST(Config, Files) {
  const std::string bad = tmp_file("bad.json", "{\n  \"model\": {\"dim\": 64,}\n}\n");
  const std::string msg = error_of([&] { config_from_file(bad); });
  EXPECT_CONTAINS(msg, bad + ": invalid JSON: ");
  EXPECT_CONTAINS(msg, "line 2");
  EXPECT_EQ(msg.find("[json.exception"), std::string::npos) << msg;

  EXPECT_EQ(error_of([&] { config_from_file("/nonexistent/x.json"); }),
            "/nonexistent/x.json: cannot open file: No such file or directory");
  EXPECT_CONTAINS(error_of([&] { config_from_file(::testing::TempDir()); }), "it is a directory");
  EXPECT_CONTAINS(error_of([&] { config_from_file(tmp_file("empty.json", "")); }), "invalid JSON");

  const std::string dup = tmp_file("dup.json", R"({"model": {"dim": 64, "dim": 128}})");
  EXPECT_EQ(error_of([&] { config_from_file(dup); }), dup + ": invalid JSON: duplicate key 'dim'");

  const std::string range = tmp_file("range.json", R"({"model": {"dim": -3}})");
  EXPECT_EQ(error_of([&] { config_from_file(range); }),
            range + ": model.dim: -3 is out of range (expected an integer in [1, 65536])");

  const std::string good = tmp_file("good.json", config_to_json(all_non_default()).dump(2));
  expect_same(config_from_file(good), all_non_default());
}

TEST(Config, SetOverrides) {
  Config c;
  config_set(c, "model.dim=128");
  config_set(c, "model.attention.levels=5");
  config_set(c, "model.attention.type=softmax");
  config_set(c, "model.tie_embeddings=false");
  config_set(c, "train.lr=3e-3");
  config_set(c, "train.seed=99");
  config_set(c, "train.device=cuda");
  EXPECT_EQ(c.train.precision, "fp32");  // the default
  config_set(c, "train.precision=bf16");
  config_set(c, "data.train=corpus/a=b.txt");  // only the first '=' splits
  config_set(c, "data.val=2024");              // string settings take the text as written
  config_set(c, "data.tokenizer=\"quoted.model\"");
  EXPECT_EQ(c.model.dim, 128);
  EXPECT_EQ(c.model.attention.levels, 5);
  EXPECT_EQ(c.model.attention.type, AttentionKind::Softmax);
  EXPECT_FALSE(c.model.tie_embeddings);
  EXPECT_EQ(c.train.lr, 3e-3);
  EXPECT_EQ(c.train.seed, 99u);
  EXPECT_EQ(c.train.device, "cuda");
  EXPECT_EQ(c.train.precision, "bf16");
  EXPECT_EQ(config_to_json(c)["train"]["precision"], "bf16");  // the saved config keeps it
  EXPECT_EQ(c.data.train, "corpus/a=b.txt");
  EXPECT_EQ(c.data.val, "2024");
  EXPECT_EQ(c.data.tokenizer, "quoted.model");
  config_set(c, "data.val=");
  EXPECT_EQ(c.data.val, "");

  const Config before = c;
  EXPECT_EQ(error_of([&] { config_set(c, "model.dim"); }),
            "--set: 'model.dim': expected KEY=VALUE (e.g. model.dim=128); see the settings list for keys");
  EXPECT_EQ(error_of([&] { config_set(c, "model.foo=1"); }), "--set: unknown key 'model.foo'");
  EXPECT_EQ(error_of([&] { config_set(c, "=1"); }), "--set: unknown key ''");
  EXPECT_EQ(error_of([&] { config_set(c, "model=1"); }),
            "--set: 'model' is a section, not a setting (expected a key such as model.vocab_size)");
  EXPECT_EQ(
      error_of([&] { config_set(c, "model.attention=1"); }),
      "--set: 'model.attention' is a section, not a setting (expected a key such as model.attention.type)");
  EXPECT_EQ(error_of([&] { config_set(c, "model.dim=abc"); }),
            "--set: model.dim: expected an integer, got \"abc\"");
  EXPECT_EQ(error_of([&] { config_set(c, "model.dim=3.5"); }),
            "--set: model.dim: expected an integer, got 3.5");
  EXPECT_EQ(error_of([&] { config_set(c, "model.dim=0", "cli"); }),
            "cli: model.dim: 0 is out of range (expected an integer in [1, 65536])");
  EXPECT_EQ(error_of([&] { config_set(c, "model.causal=yes"); }), "--set: unknown key 'model.causal'");
  EXPECT_EQ(error_of([&] { config_set(c, "model.attention.causal=yes"); }),
            "--set: model.attention.causal: expected true or false, got \"yes\"");
  EXPECT_EQ(error_of([&] { config_set(c, "train.lr=nan"); }),
            "--set: train.lr: expected a number, got \"nan\"");
  // A value that passes its own range but breaks a cross-field rule: the whole config is checked.
  EXPECT_EQ(
      error_of([&] { config_set(c, "model.heads=5"); }),
      "--set: model.dim: 128 is not a multiple of model.heads = 5 (expected model.dim % model.heads == 0)");
  expect_same(c, before);  // failed --set leaves the config unchanged
}

TEST(Config, CrossFieldRules) {
  auto err = [](const std::function<void(Config&)>& edit) {
    Config c;
    edit(c);
    return error_of([&] { config_validate(c, "x.json"); });
  };
  EXPECT_EQ(
      err([](Config& c) { c.model.heads = 5; }),
      "x.json: model.dim: 64 is not a multiple of model.heads = 5 (expected model.dim % model.heads == 0)");
  EXPECT_EQ(err([](Config& c) { c.model.kv_heads = 3; }),
            "x.json: model.heads: 4 is not a multiple of model.kv_heads = 3 (expected model.heads % "
            "model.kv_heads == 0)");
  EXPECT_EQ(
      err([](Config& c) { c.model.kv_heads = 8; }),
      "x.json: model.kv_heads: 8 is more than model.heads = 4 (expected model.kv_heads <= model.heads)");
  EXPECT_EQ(
      err([](Config& c) { c.model.dim = 28; }),
      "x.json: model.rope_theta: RoPE needs an even head width, but model.dim / model.heads = 28 / 4 = 7 "
      "(expected an even head width, or model.rope_theta = 0)");
  EXPECT_EQ(err([](Config& c) { c.model.dim = 28, c.model.rope_theta = 0; }), "(no error)");
  EXPECT_EQ(err([](Config& c) { c.train.min_lr = 0.01; }),
            "x.json: train.min_lr: 0.01 is larger than train.lr = 0.001 (expected train.min_lr <= train.lr)");
  EXPECT_EQ(err([](Config& c) { c.train.warmup_steps = 101; }),
            "x.json: train.warmup_steps: 101 is more than train.steps = 100 (expected train.warmup_steps <= "
            "train.steps)");
  EXPECT_EQ(
      err([](Config& c) { c.model.attention.type = static_cast<AttentionKind>(9); }),
      "x.json: model.attention.type: 9 is not a valid choice (expected one of: wersa, softmax, linear)");
  EXPECT_EQ(err([](Config& c) { c.train.device = "gpu"; }),
            "x.json: train.device: \"gpu\" is not a valid choice (expected one of: cpu, cuda)");
  // The same rules apply to files.
  EXPECT_CONTAINS(json_error(R"({"model": {"heads": 3}})"),
                  "configs/x.json: model.dim: 64 is not a multiple");
}

TEST(Config, HelpListsEveryKey) {
  const std::string help = config_help();
  std::set<std::string> help_keys;
  std::istringstream lines(help);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    std::istringstream words(line);
    std::string key, type, def;
    words >> key >> type >> def;
    EXPECT_TRUE(help_keys.insert(key).second) << "listed twice: " << key;
    EXPECT_TRUE(type == "int" || type == "uint64" || type == "number" || type == "string" || type == "bool" ||
                type == "strings")
        << line;
    EXPECT_FALSE(def.empty()) << line;
  }
  std::set<std::string> json_keys;
  leaf_keys(config_to_json(Config{}), "", json_keys);
  EXPECT_EQ(help_keys, json_keys);
  EXPECT_EQ(n, int(json_keys.size()));
  // 10 model + 12 attention + 4 task + 25 train + 6 data, less nothing
  EXPECT_EQ(json_keys.size(), 57u);
  // Defaults and ranges appear on the key's line.
  auto line_of = [&](const std::string& key) {
    const size_t at = help.find(key + " ");
    return at == std::string::npos ? std::string() : help.substr(at, help.find('\n', at) - at);
  };
  EXPECT_NE(line_of("model.dim").find(" 64 "), std::string::npos) << line_of("model.dim");
  EXPECT_NE(line_of("model.dim").find("[1, 65536]"), std::string::npos) << line_of("model.dim");
  EXPECT_NE(line_of("model.rope_theta").find(" 10000 "), std::string::npos) << line_of("model.rope_theta");
  EXPECT_NE(line_of("model.rope_theta").find("0 or [1, 1e+12]"), std::string::npos);
  EXPECT_NE(line_of("model.norm_eps").find(" 1e-06 "), std::string::npos) << line_of("model.norm_eps");
  EXPECT_NE(line_of("model.attention.type").find("wersa|softmax"), std::string::npos);
  EXPECT_NE(line_of("train.device").find("cpu|cuda"), std::string::npos);
  EXPECT_NE(line_of("train.precision").find("\"fp32\""), std::string::npos) << line_of("train.precision");
  EXPECT_NE(line_of("train.precision").find("fp32|bf16"), std::string::npos) << line_of("train.precision");
  EXPECT_NE(line_of("train.lr").find("(0, 10]"), std::string::npos) << line_of("train.lr");
}

TEST(Config, DerivedSizes) {
  ModelConfig m;
  m.dim = 96, m.heads = 6;
  EXPECT_EQ(config_head_dim(m), 16);
  EXPECT_EQ(config_gate_dim(m), 24);
  m.attention.gate_dim = 7;
  EXPECT_EQ(config_gate_dim(m), 7);
  m.dim = 2, m.heads = 1, m.attention.gate_dim = 0;
  EXPECT_EQ(config_gate_dim(m), 1);
}

TEST(Config, TinyConfigLoads) {
  const Config c = config_from_file(wersa::test::source_dir() + "/configs/tiny.json");
  EXPECT_EQ(c.model.vocab_size, 259);
  EXPECT_EQ(c.model.dim, 64);
  EXPECT_EQ(c.model.layers, 2);
  EXPECT_EQ(c.model.heads, 4);
  EXPECT_EQ(c.model.kv_heads, 2);
  EXPECT_EQ(c.model.ffn_dim, 192);
  EXPECT_EQ(c.model.attention.features, 32);
  EXPECT_EQ(c.model.attention.levels, 3);
  EXPECT_EQ(c.model.attention.conv_width, 9);
  EXPECT_EQ(c.model.attention.chunk, 32);
  EXPECT_EQ(c.train.seq_len, 128);
  EXPECT_EQ(c.train.batch_size, 8);
  EXPECT_EQ(c.train.steps, 200);
  EXPECT_EQ(c.train.lr, 3e-3);
  EXPECT_EQ(c.train.min_lr, 3e-4);
  EXPECT_EQ(c.train.warmup_steps, 20);
  EXPECT_EQ(c.train.eval_every, 50);
  EXPECT_EQ(c.train.eval_batches, 4);
  EXPECT_EQ(c.train.checkpoint_every, 0);
  EXPECT_EQ(c.data.train, "");
  EXPECT_EQ(c.data.val, "");
  EXPECT_EQ(c.data.tokenizer, "");
}

TEST(Config, ClassificationSettings) {
  Config c;
  EXPECT_CONTAINS(error_of([&] { config_set(c, "task.num_classes=3"); }),
                  "task.num_classes: is a classification setting, but task.type = \"lm\"");
  EXPECT_CONTAINS(error_of([&] { config_set(c, "train.class_weights=balanced"); }), "train.class_weights");
  config_set_all(c, {"task.type=classify", "task.labels=[\"a\",\"b\",\"c\"]", "train.freeze_trunk_steps=10"});
  EXPECT_EQ(c.model.task.labels, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_CONTAINS(error_of([&] { config_set(c, "task.num_classes=4"); }),
                  "task.num_classes: 4 but task.labels names 3 classes");
  EXPECT_CONTAINS(error_of([&] { config_set(c, "task.labels=[\"a\",\"a\"]"); }),
                  "task.labels: \"a\" appears twice");
  EXPECT_CONTAINS(error_of([&] { config_set(c, "task.labels=[\"a\",3]"); }), "expected a list of strings");
  EXPECT_CONTAINS(error_of([&] { config_set(c, "task.num_classes=1"); }), "1 class cannot be classified");
  EXPECT_CONTAINS(error_of([&] { config_set(c, "data.test_fraction=0.95"); }), "leaves nothing to train on");
  EXPECT_CONTAINS(error_of([&] { config_set(c, "task.pooling=max"); }), "expected one of: mean, last");
  EXPECT_CONTAINS(error_of([&] { config_set(c, "train.freeze_trunk_steps=1000"); }),
                  "train.freeze_trunk_steps: 1000 is more than train.steps = 100");
}

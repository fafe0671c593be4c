// What the engine does with damaged, inconsistent or hostile files, interrupted runs, full disks
// and a second trainer: each case the robustness issue listed, with the one-line error (or the
// checkpoint) it must end with. Real training runs of the tiny config on real text.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "testutil.h"
#include "trainutil.h"
#include "wersa/backend/backend.h"
#include "wersa/common/file.h"
#include "wersa/common/json.h"
#include "wersa/common/version.h"
#include "wersa/io/checkpoint.h"
#include "wersa/io/safetensors.h"
#include "wersa/optim/optimizer.h"
#include "wersa/train/interrupt.h"
#include "wersa/train/memory.h"
#include "wersa/train/trainer.h"

using namespace wersa;
using namespace wersa::test;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A run of `steps` steps into DIR/run with a checkpoint every step; returns the run directory.
std::string trained_run(const TempDir& dir, Config& c, int steps = 2) {
  c = tiny_config(dir.path);
  c.train.steps = steps;
  c.train.warmup_steps = 1;
  c.train.checkpoint_every = 1;
  TrainOptions o;
  o.quiet = true;
  o.out_dir = dir / "run";
  train(c, o);
  return o.out_dir;
}

TrainResult resume(const Config& c, const std::string& run) {
  TrainOptions o;
  o.quiet = true;
  o.out_dir = run;
  o.resume = true;
  return train(c, o);
}

void flip_byte(const std::string& path, size_t from_end) {
  std::string b = test::read_file(path);
  ASSERT_GT(b.size(), from_end);
  b[b.size() - 1 - from_end] = char(b[b.size() - 1 - from_end] ^ 0x10);
  test::write_file(path, b);
}

// Rewrites a checkpoint's model.safetensors with `edit` applied to its tensors (and checksum).
void rewrite_weights(const std::string& ck, const Config& c,
                     const std::function<void(std::vector<Tensor>&)>& edit, bool keep_metadata = true) {
  Model m(c.model, DType::F32, Device::CPU, false);
  io::load_model_weights(ck, m);
  std::vector<Tensor> ts;
  for (const Tensor& t : m.params_arena().tensors()) ts.push_back(t);
  for (const Tensor& t : m.buffers_arena().tensors()) ts.push_back(t);
  std::map<std::string, std::string> meta;
  if (keep_metadata) {
    meta = io::SafeTensorsFile(ck + "/model.safetensors").metadata();
    meta.erase("data_sha256");
  }
  edit(ts);
  io::save_safetensors(ck + "/model.safetensors", ts, meta);
}

void edit_json(const std::string& path, const std::function<void(json&)>& edit) {
  json j = json::parse(test::read_file(path));
  edit(j);
  test::write_file(path, j.dump(2));
}

// Rewrites a safetensors file's header with `edit` applied to its __metadata__ (the data untouched).
void edit_metadata(const std::string& path, const std::function<void(json&)>& edit) {
  const std::string b = test::read_file(path);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(static_cast<unsigned char>(b[size_t(i)])) << (8 * i);
  json header = json::parse(b.substr(8, n));
  edit(header["__metadata__"]);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[size_t(i)] = char((uint64_t(text.size()) >> (8 * i)) & 0xff);
  test::write_file(path, prefix + text + b.substr(8 + n));
}

std::string deep(int n) { return std::string(size_t(n), '[') + std::string(size_t(n), ']'); }

}  // namespace

TEST(Robust, JsonNestingNulAndTrailingBytesAreRefused) {
  const TempDir dir("json");
  const std::string tiny = test::read_file(source_dir() + "/configs/tiny.json");
  test::write_file(dir / "deep.json", "{\"model\": " + deep(100000) + "}");
  expect_error_contains([&] { config_from_file(dir / "deep.json"); }, "nested more than 64 levels deep");
  test::write_file(dir / "trailing.json", tiny + " {\"x\": 1}");
  expect_error_contains([&] { config_from_file(dir / "trailing.json"); },
                        dir / "trailing.json" + ": invalid JSON");
  test::write_file(dir / "nul.json", tiny + std::string(1, '\0'));
  expect_error_contains([&] { config_from_file(dir / "nul.json"); }, "a NUL byte at offset");
  // Within the limit, nesting is fine; --set values obey the same limit.
  EXPECT_NO_THROW(parse_json(deep(60), "x"));
  Config c;
  expect_error_contains([&] { config_set(c, "data.train=" + deep(100000)); }, "nested more than 64");
  EXPECT_NO_THROW(config_set(c, "data.train=[x"));  // not JSON: a string
  EXPECT_EQ(c.data.train, "[x");
}

TEST(Robust, DamagedOrNonFiniteTensorsAreRefusedOnLoad) {
  const TempDir dir("damage");
  Config c;
  const std::string run = trained_run(dir, c);
  const std::string ck = io::find_latest_checkpoint(run);
  Model m(c.model, DType::F32, Device::CPU, false);
  for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
    const std::string path = ck + "/" + file;
    const std::string good = test::read_file(path);
    flip_byte(path, 1000);
    expect_error_contains([&] { resume(c, run); }, path + ": the tensor data is damaged");
    test::write_file(path, good);
  }
  const std::string good = test::read_file(ck + "/model.safetensors");
  flip_byte(ck + "/model.safetensors", 3);
  expect_error_contains([&] { io::load_model_weights(ck, m); }, "damaged");
  test::write_file(ck + "/model.safetensors", good);
  rewrite_weights(ck, c, [](std::vector<Tensor>& ts) { ts[1].host<float>()[5] = std::nanf(""); });
  expect_error_contains([&] { io::load_model_weights(ck, m); },
                        "' holds nan at element 5 (weights must be finite)");
  test::write_file(ck + "/model.safetensors", good);
  rewrite_weights(ck, c, [](std::vector<Tensor>& ts) { ts[0].host<float>()[0] = INFINITY; });
  expect_error_contains([&] { io::load_model_weights(ck, m); }, "holds inf at element 0");
}

// A file this engine wrote (its metadata's written_by holds the engine's version line) whose
// checksum key is lost or malformed is refused, naming the file, on every load; a file without
// the engine's word (another writer's, or an engine's before the checksum) loads unverified.
TEST(Robust, AnEngineFileWithoutItsChecksumIsRefusedAForeignOneLoads) {
  const TempDir dir("checksum");
  Config c;
  const std::string run = trained_run(dir, c);
  const std::string ck = io::find_latest_checkpoint(run);
  for (const char* file : {"model.safetensors", "optimizer.safetensors"}) {
    const std::string path = ck + "/" + file, good = test::read_file(path);
    ASSERT_EQ(io::SafeTensorsFile(path).metadata().at(kWrittenByKey).rfind("wersa ", 0), 0u) << path;
    // The key's name damaged: the checksum is missing.
    edit_metadata(path, [](json& m) {
      m["data_sha25x"] = m.at("data_sha256");
      m.erase("data_sha256");
    });
    expect_error_contains([&] { io::SafeTensorsFile f(path); },
                          path + ": the file says 'wersa " + version() + " ");
    expect_error_contains([&] { resume(c, run); }, path + ": the file says 'wersa ");
    // Its value damaged into something that is no SHA-256.
    test::write_file(path, good);
    edit_metadata(path, [](json& m) { m["data_sha256"] = std::string(64, 'g'); });
    expect_error_contains([&] { io::SafeTensorsFile f(path); },
                          path + ": __metadata__ 'data_sha256' is 'gggg");
    test::write_file(path, good);
    EXPECT_TRUE(io::SafeTensorsFile(path).checksummed());
  }
  // The same weights as another writer leaves them: no written_by of this engine, no checksum.
  const std::string path = ck + "/model.safetensors";
  Model m(c.model, DType::F32, Device::CPU, false);
  for (const char* writer : {"", "safetensors 0.4.5 (torch)"}) {
    edit_metadata(path, [&](json& meta) {
      meta.erase("data_sha256");
      meta.erase(kWrittenByKey);
      if (*writer) meta[kWrittenByKey] = writer;
    });
    EXPECT_FALSE(io::SafeTensorsFile(path).checksummed()) << writer;
    EXPECT_NO_THROW(io::load_model_weights(ck, m)) << writer;
  }
}

TEST(Robust, ConfigThatDisagreesWithTheTensorsIsRefused) {
  const TempDir dir("disagree");
  Config c;
  const std::string run = trained_run(dir, c, 1);
  const std::string ck = io::find_latest_checkpoint(run);
  const std::string cfg = ck + "/config.json", good = test::read_file(cfg);
  const std::string weights = test::read_file(ck + "/model.safetensors");
  auto load = [&] {
    const Config saved = io::load_checkpoint_config(ck);
    Model m(saved.model, DType::F32, Device::CPU, false);
    io::load_model_weights(ck, m);
  };
  EXPECT_NO_THROW(load());
  const std::vector<std::pair<std::string, json>> edits = {{"/model/attention/type", "softmax"},
                                                           {"/model/attention/qkv_bias", false},
                                                           {"/model/rope_theta", 500000.0},
                                                           {"/model/attention/chunk", 16}};
  for (const auto& edit : edits) {
    const std::string& ptr = edit.first;
    edit_json(cfg, [&](json& j) { j[json::json_pointer(ptr)] = edit.second; });
    std::string key = ptr.substr(1);
    std::replace(key.begin(), key.end(), '/', '.');
    expect_error_contains(load, cfg + " disagrees with " + ck + "/model.safetensors: " + key + " = ");
    test::write_file(cfg, good);
  }
  // Weights saved before a model setting existed (its key absent from the saved copy) load under
  // the setting's default, as config.json does.
  rewrite_weights(ck, c, [](std::vector<Tensor>&) {});
  {
    Model m(c.model, DType::F32, Device::CPU, false);
    io::load_model_weights(ck, m);
    std::vector<Tensor> ts(m.params_arena().tensors().begin(), m.params_arena().tensors().end());
    for (const Tensor& t : m.buffers_arena().tensors()) ts.push_back(t);
    auto meta = io::SafeTensorsFile(ck + "/model.safetensors").metadata();
    meta.erase("data_sha256");
    json saved = json::parse(meta.at("model_config"));
    ASSERT_EQ(saved.at("norm_eps").get<double>(), ModelConfig{}.norm_eps);
    saved.erase("norm_eps");
    meta["model_config"] = saved.dump();
    io::save_safetensors(ck + "/model.safetensors", ts, meta);
  }
  EXPECT_NO_THROW(load());
  test::write_file(ck + "/model.safetensors", weights);
  // An extra tensor, and a file of another writer (no saved model section) under a config that
  // says softmax: the tensor set itself disagrees.
  rewrite_weights(ck, c, [](std::vector<Tensor>& ts) {
    Tensor extra = ts[0];
    extra.name = "extra.weight";
    ts.push_back(extra);
  });
  expect_error_contains(load, "tensor 'extra.weight' is not one of the");
  test::write_file(ck + "/model.safetensors", weights);
  rewrite_weights(
      ck, c, [](std::vector<Tensor>&) {}, /*keep_metadata=*/false);
  EXPECT_NO_THROW(load());
  edit_json(cfg, [](json& j) { j["model"]["attention"]["type"] = "softmax"; });
  expect_error_contains(load, "describes (the config and the tensors disagree)");
}

TEST(Robust, StateJsonIsValidated) {
  const TempDir dir("state");
  Config c;
  const std::string run = trained_run(dir, c);
  const std::string st = io::find_latest_checkpoint(run) + "/state.json", good = test::read_file(st);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"step": 2, "train_pos": -5, "seed": 1234, "tokens_seen": 512})", "'train_pos' is -5"},
      {R"({"step": 2, "train_pos": 9223372036854775807, "seed": 1234, "tokens_seen": 512})",
       "'train_pos' is"},
      {R"({"step": 2, "train_pos": 18446744073709551615, "seed": 1234, "tokens_seen": 512})",
       "'train_pos' is"},
      {R"({"step": 2, "train_pos": 1000000000, "seed": 1234, "tokens_seen": 512})",
       "lies outside the training data"},
      {R"({"step": 2, "seed": 1234, "tokens_seen": 512})", "'train_pos' is missing"},
      {R"({"step": 1e15, "train_pos": 0, "seed": 1234, "tokens_seen": 512})", "'step' must be an integer"},
      {R"({"step": 1000000000000000, "train_pos": 0, "seed": 1234, "tokens_seen": 0})", "'step' is"},
      {R"({"step": 13, "train_pos": 0, "seed": 1234, "tokens_seen": 0})",
       "step 13 is beyond train.steps = 2"},
      {R"({"step": "2", "train_pos": 0, "seed": 1234, "tokens_seen": 0})", "'step' must be an integer"},
      {R"({"step": 2, "train_pos": 0, "seed": 1234, "tokens_seen": 0, "x": 1})", "unknown key 'x'"},
      {R"([1, 2])", "expected a JSON object"},
      {"{\"step\": " + deep(100000) + "}", "nested more than"},
      {R"({"step": 2, "train_pos": 0, "seed": 1234, "tokens_seen": 0} 7)", "invalid JSON"},
  };
  for (const auto& [text, needle] : cases) {
    test::write_file(st, text);
    const std::string msg = expect_error_contains([&] { resume(c, run); }, needle);
    EXPECT_NE(msg.find(st), std::string::npos) << msg;
  }
  test::write_file(st, good);
  EXPECT_NO_THROW(resume(c, run));
  // The checkpoint's config.json is read by the same reader, with the same limits.
  const std::string ck = io::find_latest_checkpoint(run), cfg = ck + "/config.json";
  test::write_file(cfg, "{\"model\": " + deep(100000) + "}");
  expect_error_contains([&] { io::load_checkpoint_config(ck); },
                        cfg + ": invalid JSON: nested more than 64 levels deep");
}

TEST(Robust, IncompleteNewestCheckpointIsSkippedForTheNewestComplete) {
  const TempDir dir("incomplete");
  Config c;
  trained_run(dir, c, 4);  // the reference: 4 uninterrupted steps
  const std::vector<double> want = metrics_losses(dir / "run");
  ASSERT_EQ(want.size(), 4u);
  // Damage the newest two checkpoints: step 4 lacks its state, step 3 its weights.
  fs::remove(dir / "run/step-000004/state.json");
  fs::remove(dir / "run/step-000003/model.safetensors");
  const io::CheckpointSearch s = io::find_checkpoints(dir / "run", true);
  EXPECT_EQ(s.newest, dir / "run/step-000002");
  ASSERT_EQ(s.skipped.size(), 2u);
  EXPECT_NE(s.skipped[0].find("step-000004 (lacks state.json)"), std::string::npos) << s.skipped[0];
  const TrainResult r = resume(c, dir / "run");
  ASSERT_EQ(r.losses.size(), 2u);
  EXPECT_EQ(r.losses[0], want[2]);
  EXPECT_EQ(r.losses[1], want[3]);
  // With no complete checkpoint at all, resuming is an error, not a silent restart from step 0.
  for (const auto& e : fs::directory_iterator(dir / "run"))
    if (e.path().filename().string().rfind("step-", 0) == 0) fs::remove(e.path() / "optimizer.safetensors");
  expect_error_contains([&] { resume(c, dir / "run"); }, "no complete checkpoint to resume from");
}

TEST(Robust, KeepLastPrunesOldCheckpoints) {
  const TempDir dir("keep");
  Config c = tiny_config(dir.path);
  c.train.steps = 5;
  c.train.checkpoint_every = 1;
  c.train.keep_last = 2;
  TrainOptions o;
  o.quiet = true;
  o.out_dir = dir / "run";
  train(c, o);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(o.out_dir))
    if (e.path().filename().string().rfind("step-", 0) == 0) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"step-000004", "step-000005"}));
}

TEST(Robust, WritesAreCheckedAndTheRunDirectoryIsLocked) {
  const TempDir dir("writes");
  Config c = tiny_config(dir.path);
  c.train.steps = 3;
  TrainOptions o;
  o.quiet = true;
  // A full disk under metrics.jsonl ends the run at the first write, with one line.
  struct stat st {};
  if (::stat("/dev/full", &st) == 0) {
    fs::create_directories(dir / "full");
    fs::create_symlink("/dev/full", dir / "full/metrics.jsonl");
    o.out_dir = dir / "full";
    expect_error_contains([&] { train(c, o); }, "metrics.jsonl: write failed: No space left on device");
  }
  // A run directory that cannot be written is found before the first step (also as root).
  test::write_file(dir / "file", "x");
  o.out_dir = dir / "file/run";
  expect_error_contains([&] { train(c, o); }, "cannot create run directory");
  o.out_dir = "/proc";
  expect_error_contains([&] { train(c, o); }, "/proc/.lock: cannot create the lock file");
  // A second trainer on the same directory is refused, naming the holder.
  o.out_dir = dir / "locked";
  fs::create_directories(o.out_dir);
  {
    const DirLock held(o.out_dir, ".lock", "another wersa-train");
    expect_error_contains([&] { train(c, o); }, "another wersa-train (pid " + std::to_string(::getpid()) +
                                                    ") is using this directory");
  }
  EXPECT_NO_THROW(train(c, o));  // released
}

TEST(Robust, MemoryIsEstimatedBeforeAnythingIsAllocated) {
  const TempDir dir("memory");
  Config c = tiny_config(dir.path);
  const MemoryEstimate e = estimate_train_memory(c);
  // The estimate is what the same planning allocates for real.
  Model m(c.model, DType::F32);
  AdamW adam(m);
  Workspace ws(m, c.train.batch_size, c.train.seq_len, true);
  adam.plan(ws.ctx(), c.train);
  EXPECT_EQ(e.params, m.params_arena().bytes() + m.buffers_arena().bytes());
  EXPECT_EQ(e.grads, m.grads_arena().bytes());
  EXPECT_GE(e.optimizer, 2 * m.params_arena().bytes());
  EXPECT_EQ(e.scratch, ws.scratch_bytes());
  EXPECT_EQ(e.activations, ws.bytes());
  EXPECT_GE(e.total, e.params + e.grads + e.optimizer + e.activations + e.scratch);
  // A 16M-token vocabulary (4.3 GB of embeddings alone) is refused from the estimate, in one line,
  // before any memory is committed.
  c.model.vocab_size = 16777216;
  TrainOptions o;
  o.quiet = true;
  o.max_memory = size_t(1) << 30;
  const std::string msg = expect_error_contains([&] { train(c, o); }, "this run needs an estimated ");
  EXPECT_NE(msg.find("more than the limit of 1.00 GiB"), std::string::npos) << msg;
  const MemoryEstimate big = estimate_train_memory(c);
  EXPECT_GT(big.params, size_t(16777216) * 64 * 4);
  EXPECT_EQ(parse_bytes("16G", "x"), size_t(16) << 30);
  EXPECT_EQ(parse_bytes("512MiB", "x"), size_t(512) << 20);
  EXPECT_EQ(parse_bytes("1.5k", "x"), size_t(1536));
  for (const char* bad : {"", "-1G", "G", "12Q", "0", "1e30"})
    expect_error_contains([&] { parse_bytes(bad, "--max-memory"); }, "--max-memory");
}

TEST(Robust, InterruptFinishesTheStepAndCheckpoints) {
  const TempDir dir("interrupt");
  Config c = tiny_config(dir.path);
  c.train.steps = 6;
  TrainOptions o;
  o.quiet = true;
  o.out_dir = dir / "full";
  const TrainResult full = train(c, o);
  o.out_dir = dir / "part";
  TrainResult part;
  {
    const InterruptHandlers handlers;
    ::raise(SIGINT);  // arrives before the first step ends: one step, then a checkpoint
    part = train(c, o);
  }
  EXPECT_EQ(part.interrupted, SIGINT);
  EXPECT_EQ(part.final_step, 1);
  EXPECT_EQ(part.last_checkpoint, dir / "part/step-000001");
  const TrainResult rest = resume(c, o.out_dir);
  ASSERT_EQ(rest.losses.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(rest.losses[i], full.losses[i + 1]) << "step " << i + 2;
}

// Training-level tests on real text: overfitting one batch, identical runs, bitwise resume (losses
// and checkpoint files), checkpoint validation; bf16 mixed precision against fp32.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "testutil.h"
#include "trainutil.h"
#include "wersa/io/checkpoint.h"
#include "wersa/io/safetensors.h"
#include "wersa/optim/optimizer.h"
#include "wersa/train/memory.h"
#include "wersa/train/trainer.h"

using namespace wersa;
using namespace wersa::test;
namespace fs = std::filesystem;

// Shared by the tests of each attention kind (defined below the tests that read first).
void expect_identical_runs(const Config& c);
void expect_bitwise_resume(const TempDir& dir, Config c);

TEST(Train, OverfitsOneBatch) {
  const TempDir dir("overfit");
  Config c = tiny_config(dir.path);
  // A 130-token training set is exactly one batch of 2 x 64 (+1): every step sees the same batch.
  std::ofstream(dir / "one.txt") << real_text(129);
  c.data.train = (dir / "one.txt");
  c.data.val = "";
  c.train.batch_size = 2;
  c.train.steps = 150;
  c.train.lr = 3e-3;
  c.train.min_lr = 3e-3;
  c.train.warmup_steps = 5;
  c.train.weight_decay = 0;
  TrainOptions o;
  o.quiet = true;
  const TrainResult r = train(c, o);
  ASSERT_EQ(r.losses.size(), 150u);
  EXPECT_GT(r.losses.front(), 4.0);  // ~ln(259) at init
  EXPECT_LT(r.losses.back(), 0.1);
}

TEST(Train, IdenticalRunsGiveIdenticalLosses) {
  const TempDir dir("identical");
  const Config c = tiny_config(dir.path);
  expect_identical_runs(c);
}

TEST(Train, IdenticalRunsGiveIdenticalLossesForEveryAttentionKind) {
  for (AttentionKind kind : {AttentionKind::Softmax, AttentionKind::Linear}) {
    const TempDir dir("identical");
    Config c = tiny_config(dir.path);
    c.model.attention.type = kind;
    expect_identical_runs(c);
  }
}

void expect_identical_runs(const Config& c) {
  TrainOptions o;
  o.quiet = true;
  const TrainResult a = train(c, o), b = train(c, o);
  ASSERT_EQ(a.losses.size(), b.losses.size());
  for (size_t i = 0; i < a.losses.size(); ++i) EXPECT_EQ(a.losses[i], b.losses[i]) << "step " << i + 1;
  EXPECT_LT(a.losses.back(), a.losses.front());
}

TEST(Train, ResumeIsBitwiseIdentical) {
  const TempDir dir("resume");
  expect_bitwise_resume(dir, tiny_config(dir.path));
}

TEST(Train, ResumeIsBitwiseIdenticalForEveryAttentionKind) {
  for (AttentionKind kind : {AttentionKind::Softmax, AttentionKind::Linear}) {
    const TempDir dir("resume");
    Config c = tiny_config(dir.path);
    c.model.attention.type = kind;
    expect_bitwise_resume(dir, c);
  }
}

void expect_bitwise_resume(const TempDir& dir, Config c) {
  c.train.checkpoint_every = 5;
  c.train.grad_accum = 2;
  TrainOptions full;
  full.quiet = true;
  full.out_dir = (dir / "full");
  const TrainResult a = train(c, full);
  // Interrupted after 7 steps (the newest checkpoint is step 5), then resumed.
  TrainOptions part = full;
  part.out_dir = (dir / "part");
  part.stop_after = 7;
  train(c, part);
  EXPECT_EQ(io::find_latest_checkpoint(part.out_dir), (fs::path(part.out_dir) / "step-000005").string());
  part.stop_after = -1;
  part.resume = true;
  const TrainResult b = train(c, part);
  ASSERT_EQ(b.losses.size(), a.losses.size() - 5);
  for (size_t i = 0; i < b.losses.size(); ++i) EXPECT_EQ(b.losses[i], a.losses[i + 5]) << "step " << i + 6;
  // The checkpoints the resumed run wrote (step 10 and the final one) are byte for byte those of
  // the uninterrupted run: the last step's update, which no loss shows, included.
  for (int64_t step : {int64_t(10), int64_t(c.train.steps)})
    expect_same_checkpoint(fs::path(full.out_dir) / io::checkpoint_name(step),
                           fs::path(part.out_dir) / io::checkpoint_name(step));
  // metrics.jsonl of the resumed run has each step once.
  std::ifstream f(fs::path(part.out_dir) / "metrics.jsonl");
  std::string line;
  int64_t lines = 0, last = 0;
  while (std::getline(f, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("step").get<int64_t>(), last + 1);
    last = j.at("step").get<int64_t>();
    for (const char* k : {"loss", "grad_norm", "lr", "ms", "tok_per_s"}) EXPECT_TRUE(j.contains(k)) << k;
    ++lines;
  }
  EXPECT_EQ(lines, c.train.steps);
}

TEST(Train, ValidationLossIsReported) {
  const TempDir dir("val");
  Config c = tiny_config(dir.path);
  c.train.eval_every = 6;
  TrainOptions o;
  o.quiet = true;
  const TrainResult r = train(c, o);
  ASSERT_EQ(r.val_losses.size(), 2u);
  EXPECT_EQ(r.val_losses[0].first, 6);
  EXPECT_LT(r.val_losses[1].second, r.val_losses[0].second + 0.5);
}

TEST(Checkpoint, MissingOrMisshapedTensorIsAClearError) {
  const TempDir dir("ckpt");
  Config c = tiny_config(dir.path);
  c.train.steps = 1;
  TrainOptions o;
  o.quiet = true;
  o.out_dir = (dir / "run");
  train(c, o);
  const std::string ck = io::find_latest_checkpoint(o.out_dir);
  ASSERT_FALSE(ck.empty());
  Model m(c.model, DType::F32, Device::CPU, false);
  io::load_model_weights(ck, m);  // loads
  // Rewrite the weights without one tensor, then with one tensor of the wrong shape.
  std::vector<Tensor> ts;
  for (const Tensor& t : m.params_arena().tensors()) ts.push_back(t);
  for (const Tensor& t : m.buffers_arena().tensors()) ts.push_back(t);
  std::vector<Tensor> missing(ts.begin() + 1, ts.end());
  io::save_safetensors(ck + "/model.safetensors", missing);
  try {
    io::load_model_weights(ck, m);
    FAIL() << "a missing tensor was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(ts[0].name), std::string::npos) << e.what();
  }
  std::vector<Tensor> bad = ts;
  size_t k = 1;
  while (ts[k].rank() != 2) ++k;  // a matrix, flattened to a vector of the same size
  bad[k] = bad[k].view({bad[k].numel()});
  io::save_safetensors(ck + "/model.safetensors", bad);
  try {
    io::load_model_weights(ck, m);
    FAIL() << "a mis-shaped tensor was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(ts[k].name), std::string::npos) << e.what();
  }
}

TEST(Schedule, WarmupThenCosine) {
  TrainConfig t;
  t.steps = 100;
  t.warmup_steps = 10;
  t.lr = 1e-3;
  t.min_lr = 1e-4;
  EXPECT_NEAR(lr_at(t, 0), 1e-4, 1e-12);
  EXPECT_NEAR(lr_at(t, 9), 1e-3, 1e-12);
  EXPECT_NEAR(lr_at(t, 10), 1e-3, 1e-12);
  EXPECT_NEAR(lr_at(t, 99), 1e-4, 1e-12);
  EXPECT_NEAR(lr_at(t, 10 + 89 / 2.0), 0.5 * (1e-3 + 1e-4), 2e-5);
  for (int s = 10; s < 99; ++s) EXPECT_LE(lr_at(t, s + 1), lr_at(t, s));
}

// ---- train.precision bf16 ----------------------------------------------------------------------

// 20 steps in bf16 mixed precision follow the fp32 run within 2e-2 relative at every step, for
// every attention kind; the bf16 GEMMs do change the numbers, and the model learns.
TEST(TrainBf16, LossesFollowFp32ForEveryAttentionKind) {
  for (AttentionKind kind : {AttentionKind::Wersa, AttentionKind::Linear, AttentionKind::Softmax}) {
    const TempDir dir("bf16");
    Config c = tiny_config(dir.path);
    c.model.attention.type = kind;
    c.train.steps = 20;
    TrainOptions o;
    o.quiet = true;
    const TrainResult fp32 = train(c, o);
    c.train.precision = "bf16";
    const TrainResult bf = train(c, o);
    ASSERT_EQ(bf.losses.size(), fp32.losses.size());
    double worst = 0;
    for (size_t i = 0; i < bf.losses.size(); ++i)
      worst = std::max(worst, std::fabs(bf.losses[i] - fp32.losses[i]) / fp32.losses[i]);
    std::printf("%s: bf16 losses %.4f -> %.4f, largest relative difference from fp32 %.2e\n",
                attention_kind_name(kind), bf.losses.front(), bf.losses.back(), worst);
    EXPECT_LT(worst, 2e-2) << attention_kind_name(kind);
    EXPECT_GT(worst, 0) << attention_kind_name(kind) << ": bf16 operands should change the losses";
    EXPECT_LT(bf.losses.back(), bf.losses.front() - 0.5) << attention_kind_name(kind);
  }
}

TEST(TrainBf16, ResumeIsBitwiseIdentical) {
  const TempDir dir("resume_bf16");
  Config c = tiny_config(dir.path);
  c.train.precision = "bf16";
  expect_bitwise_resume(dir, c);
}

// A bf16 run's checkpoint holds the f32 master weights (not their bf16 shadow: some weights have
// bits below bf16's), and an f32 model loads it and evaluates it near the run's last loss.
TEST(TrainBf16, CheckpointHoldsF32MasterWeights) {
  const TempDir dir("ckpt_bf16");
  Config c = tiny_config(dir.path);
  c.train.precision = "bf16";
  c.train.steps = 6;
  TrainOptions o;
  o.quiet = true;
  o.out_dir = (dir / "run");
  const TrainResult r = train(c, o);
  const std::string ck = io::find_latest_checkpoint(o.out_dir);
  ASSERT_FALSE(ck.empty());
  Model m(c.model, DType::F32, Device::CPU, false);
  io::load_model_weights(ck, m);
  int64_t below_bf16 = 0, n = 0;
  for (size_t i = 0; i < m.param_decls().size(); ++i) {
    if (!m.param_decls()[i].bf16_ok) continue;
    const Tensor& t = m.params_arena().tensors()[i];
    for (int64_t k = 0; k < t.numel(); ++k, ++n) {
      uint32_t u;
      std::memcpy(&u, t.host<float>() + k, 4);
      below_bf16 += (u & 0xffffu) != 0;
    }
  }
  EXPECT_GT(below_bf16, n / 2) << "the checkpoint should hold f32 master weights";
  const Config saved = io::load_checkpoint_config(ck);
  EXPECT_EQ(saved.train.precision, "bf16");
  auto tok = data::load_tokenizer("byte");
  auto ds = data::open_dataset(c.data.train, *tok, c.model.vocab_size);
  const auto model = io::load_inference_model(ck, saved, "f32", "cpu");
  const EvalResult e = evaluate(*model, *ds, 64, 4, 4096);
  EXPECT_TRUE(std::isfinite(e.mean_loss));
  EXPECT_LT(std::fabs(e.mean_loss - r.losses.back()), 0.5) << e.mean_loss << " vs " << r.losses.back();
}

// The memory estimate of a bf16 run counts the shadow weights (2 bytes per bf16_ok parameter) and
// the mixed GEMMs' scratch (on the CPU the weight widened to f32 and rounded activation tiles). A
// vocabulary of 16384 makes the LM head's widened weight (4 MiB) the largest scratch of the step.
TEST(TrainBf16, MemoryEstimateCountsShadowAndScratch) {
  const TempDir dir("mem_bf16");
  Config c = tiny_config(dir.path);
  c.model.vocab_size = 16384;
  const MemoryEstimate fp32 = estimate_train_memory(c);
  c.train.precision = "bf16";
  const MemoryEstimate bf = estimate_train_memory(c);
  Model m(c.model, DType::F32, Device::CPU, false);
  size_t shadow = 0;
  for (size_t i = 0; i < m.param_decls().size(); ++i)
    if (m.param_decls()[i].bf16_ok) shadow += 2 * size_t(m.params_arena().tensors()[i].numel());
  EXPECT_GE(bf.params - fp32.params, shadow);
  EXPECT_LT(bf.params - fp32.params, shadow + 64 * m.param_decls().size());  // at most alignment beyond
  EXPECT_GE(bf.scratch, size_t(c.model.vocab_size) * size_t(c.model.dim) * 4);
  EXPECT_GT(bf.scratch, fp32.scratch);
  EXPECT_EQ(bf.grads, fp32.grads);
  EXPECT_EQ(bf.optimizer, fp32.optimizer);
  EXPECT_EQ(bf.activations, fp32.activations);
  EXPECT_GE(bf.total, fp32.total + (bf.params - fp32.params));
}

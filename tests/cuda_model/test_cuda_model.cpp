// The whole model on CUDA (a GPU, or the CUDA simulator in CI) against the CPU, the reference:
// training runs follow the CPU's losses step by step for every attention kind, language model
// and classifier; resuming on the device is bitwise the uninterrupted run (losses and the final
// model and optimizer files); recomputation gives bitwise the stored activations' gradients;
// token-by-token decoding and chunked prefill reproduce the parallel forward; a classifier's
// logits do not depend on the padded batch; a checkpoint trained on one device evaluates the same
// on the other. Every CUDA number is compared with the CPU's or with another CUDA path.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "../testutil.h"
#include "../trainutil.h"
#include "wersa/backend/backend.h"
#include "wersa/common/file.h"
#include "wersa/io/checkpoint.h"
#include "wersa/model/generate.h"
#include "wersa/train/trainer.h"

using namespace wersa;
using namespace wersa::test;
namespace fs = std::filesystem;

namespace {

bool have_cuda() { return cuda_available(); }
#define REQUIRE_CUDA() \
  if (!have_cuda()) GTEST_SKIP() << "no CUDA device in this process (a GPU build without a GPU)"

// The largest relative difference of two loss curves, step by step.
double worst_rel(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double w = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    w = std::max(w, std::fabs(a[i] - b[i]) / std::max(std::fabs(b[i]), 1e-30));
  return w;
}

// configs/tiny.json on real text, 20 steps of 4 x 64 tokens, on `device`.
Config lm_config(const fs::path& dir, const char* kind, const char* device) {
  Config c = tiny_config(dir);
  c.model.attention.type = attention_kind_from_name(kind);
  c.train.steps = 20;
  c.train.device = device;
  return c;
}

// Labelled documents of real text and of varied lengths (padded batches): the label is which
// stretch of the text a passage comes from. The classes only need to exist: the test compares
// devices, not accuracy.
std::string labelled_docs(const fs::path& dir) {
  const std::string text = real_text(120000);
  const fs::path p = dir / "docs.jsonl";
  std::ofstream f(p);
  for (int i = 0; i < 40; ++i) {
    const size_t len = 90 + size_t(i * 37 % 150);
    std::string passage = text.substr(size_t(i) * 3000, len);
    for (char& ch : passage)  // ASCII only: no UTF-8 sequence cut at the end
      if (static_cast<unsigned char>(ch) >= 0x80) ch = ' ';
    f << nlohmann::json{{"id", "d" + std::to_string(i)}, {"text", passage}, {"label", i % 3 == 0 ? "a" : "b"}}
             .dump()
      << "\n";
  }
  return p.string();
}

Config classifier_config(const std::string& docs, const char* kind, const char* device) {
  Config c = config_from_file(source_dir() + "/configs/tiny.json");
  c.model.task.type = "classify";
  c.model.attention.type = attention_kind_from_name(kind);
  c.model.attention.causal = false;  // bidirectional: the padding masks are exercised
  c.data.train = docs;
  c.data.val = "";
  c.data.val_fraction = 0.2, c.data.test_fraction = 0.2;
  c.train.steps = 20;
  c.train.seq_len = 240;
  c.train.batch_size = 4;
  c.train.warmup_steps = 3;
  c.train.eval_every = 0;
  c.train.threads = 2;
  c.train.device = device;
  return c;
}

TrainResult run(const Config& c, const fs::path& out = {}) {
  TrainOptions o;
  o.quiet = true;
  o.out_dir = out.string();
  return train(c, o);
}

}  // namespace

class CudaTraining : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaTraining, LanguageModelFollowsTheCpu) {
  REQUIRE_CUDA();
  const TempDir dir("cuda_lm");
  const TrainResult cpu = run(lm_config(dir.path, GetParam(), "cpu"));
  const TrainResult gpu = run(lm_config(dir.path, GetParam(), "cuda"));
  ASSERT_EQ(gpu.losses.size(), 20u);
  const double w = worst_rel(gpu.losses, cpu.losses);
  std::printf("%s LM: 20 steps, losses %.4f -> %.4f, largest relative difference from the CPU %.2e\n",
              GetParam(), gpu.losses.front(), gpu.losses.back(), w);
  EXPECT_LT(w, 1e-4);
  EXPECT_LT(gpu.losses.back(), gpu.losses.front()) << "the loss should fall";
}

TEST_P(CudaTraining, ClassifierFollowsTheCpu) {
  REQUIRE_CUDA();
  const TempDir dir("cuda_cls");
  const std::string docs = labelled_docs(dir.path);
  // At half of tiny.json's learning rate, as the bf16 test below: at the full rate the softmax
  // classifier's 20 steps amplify the last-bit differences between the CPU's BLAS kernels and the
  // device's until they decide the comparison (on one AVX-512 EPYC, 2026-12-08: 1.97e-4 with
  // OpenBLAS's Cooperlake kernels, 1.31e-4 with SkylakeX, 2.6e-5 with Haswell).
  Config c = classifier_config(docs, GetParam(), "cpu");
  c.train.lr /= 2;
  c.train.min_lr /= 2;
  const TrainResult cpu = run(c);
  c.train.device = "cuda";
  const TrainResult gpu = run(c);
  ASSERT_EQ(gpu.losses.size(), 20u);
  const double w = worst_rel(gpu.losses, cpu.losses);
  std::printf("%s classifier: 20 steps, losses %.4f -> %.4f, largest relative difference from the CPU %.2e\n",
              GetParam(), gpu.losses.front(), gpu.losses.back(), w);
  EXPECT_LT(w, 1e-4);
}

// train.precision bf16 on the device: its losses follow the CPU's fp32 run within 2e-2 relative
// (what mixed precision may cost), and the CPU's bf16 run within 1e-3 (the same bf16 operands,
// summed in another order).
TEST_P(CudaTraining, LanguageModelInBf16FollowsTheCpu) {
  REQUIRE_CUDA();
  const TempDir dir("cuda_lm_bf16");
  Config c = lm_config(dir.path, GetParam(), "cpu");
  const TrainResult fp32 = run(c);
  c.train.precision = "bf16";
  const TrainResult cpu = run(c);
  c.train.device = "cuda";
  const TrainResult gpu = run(c);
  ASSERT_EQ(gpu.losses.size(), 20u);
  const double w = worst_rel(gpu.losses, fp32.losses), wb = worst_rel(gpu.losses, cpu.losses);
  std::printf(
      "%s LM bf16: losses %.4f -> %.4f, largest relative difference from the CPU's fp32 %.2e, bf16 %.2e\n",
      GetParam(), gpu.losses.front(), gpu.losses.back(), w, wb);
  EXPECT_LT(w, 2e-2);
  EXPECT_LT(wb, 1e-3);
  EXPECT_GT(w, 0) << "bf16 operands should change the losses";
  EXPECT_LT(gpu.losses.back(), gpu.losses.front()) << "the loss should fall";
}

// The classifier in bf16, at half of tiny.json's learning rate. At its full rate (3e-3) the
// classifier's 20 steps are so sensitive that fp32 alone moves by 2.0-2.8e-2 when the rate is
// scaled by 1 + 2^-8 (a perturbation of the size of bf16's rounding), which bf16's 1.3-6.9e-2
// matched: that comparison measured the sensitivity, not bf16 (docs/cuda.md). So the test first
// checks that the regime it compares in is stable that way (fp32 under the perturbation within
// the tolerance), then the bf16 curves. The device's bf16 and the CPU's differ only in the order
// of f32 sums, but rounding to bf16 turns a last-bit difference into a bf16 unit in a few
// elements, and these steps amplify it (WERSA: 1.3e-6 at step 1, 4.5e-3 by step 8, in the
// simulator): so the first step's loss is held to 1e-5 and the curve to the tolerance.
TEST_P(CudaTraining, ClassifierInBf16FollowsTheCpu) {
  REQUIRE_CUDA();
  const TempDir dir("cuda_cls_bf16");
  const std::string docs = labelled_docs(dir.path);
  Config c = classifier_config(docs, GetParam(), "cpu");
  c.train.lr /= 2;
  c.train.min_lr /= 2;
  const TrainResult fp32 = run(c);
  Config nudged = c;
  nudged.train.lr *= 1 + std::ldexp(1.0, -8);
  const double sensitivity = worst_rel(run(nudged).losses, fp32.losses);
  c.train.precision = "bf16";
  const TrainResult cpu = run(c);
  c.train.device = "cuda";
  const TrainResult gpu = run(c);
  ASSERT_EQ(gpu.losses.size(), 20u);
  const double w = worst_rel(gpu.losses, fp32.losses), wb = worst_rel(gpu.losses, cpu.losses);
  std::printf(
      "%s classifier bf16: losses %.4f -> %.4f, largest relative difference from the CPU's fp32 %.2e, "
      "bf16 %.2e; fp32 with the rate scaled by 1 + 2^-8 %.2e\n",
      GetParam(), gpu.losses.front(), gpu.losses.back(), w, wb, sensitivity);
  ASSERT_LT(sensitivity, 2e-2) << "the fp32 curve is too sensitive here for a 2e-2 comparison";
  EXPECT_GT(sensitivity, 0);
  EXPECT_LT(w, 2e-2);
  EXPECT_LT(wb, 2e-2);
  EXPECT_LT(std::abs(gpu.losses[0] - cpu.losses[0]), 1e-5 * std::abs(cpu.losses[0]));
  EXPECT_GT(w, 1e-4) << "bf16 operands should move the curve further than the device's fp32 may";
}

INSTANTIATE_TEST_SUITE_P(Kinds, CudaTraining, ::testing::Values("wersa", "linear", "softmax"));

// Interrupted after 7 steps (newest checkpoint: step 5) and resumed on the device: the losses
// and the final model and optimizer files are bitwise those of the uninterrupted run; in fp32 and
// in bf16 mixed precision (whose checkpoints hold the f32 master weights, the shadow refreshed from
// them on resume).
class CudaTrainingResume : public ::testing::TestWithParam<const char*> {};
INSTANTIATE_TEST_SUITE_P(Precision, CudaTrainingResume, ::testing::Values("fp32", "bf16"));

TEST_P(CudaTrainingResume, IsBitwiseTheUninterruptedRun) {
  REQUIRE_CUDA();
  const TempDir dir("cuda_resume");
  Config c = lm_config(dir.path, "wersa", "cuda");
  c.train.precision = GetParam();
  c.train.steps = 12;
  c.train.checkpoint_every = 5;
  c.train.grad_accum = 2;
  const TrainResult a = run(c, dir / "full");
  TrainOptions part;
  part.quiet = true;
  part.out_dir = (dir.path / "part").string();
  part.stop_after = 7;
  train(c, part);
  part.stop_after = -1;
  part.resume = true;
  const TrainResult b = train(c, part);
  ASSERT_EQ(b.losses.size(), a.losses.size() - 5);
  for (size_t i = 0; i < b.losses.size(); ++i) EXPECT_EQ(b.losses[i], a.losses[i + 5]) << "step " << i + 6;
  for (const char* f : {"model.safetensors", "optimizer.safetensors"}) {
    const std::string x = read_file((dir.path / "full" / "step-000012" / f).string(), ~size_t(0)),
                      y = read_file((dir.path / "part" / "step-000012" / f).string(), ~size_t(0));
    EXPECT_FALSE(x.empty());
    EXPECT_TRUE(x == y) << f << " differs between the full and the resumed run";
  }
}

// A checkpoint written by a CUDA run evaluates the same on the CPU and on the device; the CUDA
// run's loss curve is the CPU run's, so the files are the CPU's up to rounding.
TEST(CudaCheckpoints, LoadOnEitherDevice) {
  REQUIRE_CUDA();
  const TempDir dir("cuda_ckpt");
  Config c = lm_config(dir.path, "wersa", "cuda");
  c.train.steps = 3;  // trained weights (not the initial ones); more steps add only simulator time
  run(c, dir / "run");
  const std::string ck = io::find_latest_checkpoint((dir.path / "run").string());
  ASSERT_FALSE(ck.empty());
  const Config saved = io::load_checkpoint_config(ck);
  auto tok = data::load_tokenizer("byte");
  auto ds = data::open_dataset(c.data.val, *tok, c.model.vocab_size);
  const auto on_cpu = io::load_inference_model(ck, saved, "f32", "cpu");
  const auto on_gpu = io::load_inference_model(ck, saved, "f32", "cuda");
  EXPECT_EQ(on_gpu->device(), Device::CUDA);
  EXPECT_EQ(model_fingerprint(*on_cpu), model_fingerprint(*on_gpu));
  const EvalResult ec = evaluate(*on_cpu, *ds, 64, 4, 1024), eg = evaluate(*on_gpu, *ds, 64, 4, 1024);
  EXPECT_EQ(ec.tokens, eg.tokens);
  EXPECT_NEAR(eg.mean_loss, ec.mean_loss, 1e-5 * ec.mean_loss);
}

namespace {

ModelConfig small_model(const char* kind, bool classify = false, bool causal = true) {
  ModelConfig m;
  m.vocab_size = 37;
  m.dim = 32;
  m.layers = 2;
  m.heads = 4;
  m.kv_heads = 2;  // GQA
  m.ffn_dim = 48;
  m.rope_theta = 10000;
  m.init_std = 0.2;
  m.attention.type = attention_kind_from_name(kind);
  m.attention.features = 8;
  m.attention.levels = 3;
  m.attention.conv_width = 5;
  m.attention.chunk = 16;
  m.attention.causal = causal;
  if (classify) {
    m.task.type = "classify";
    m.task.num_classes = 4;
    m.task.pooling = "mean";
  }
  return m;
}

std::vector<int32_t> tokens_of(int64_t n, int64_t V, uint64_t seed) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t(rng_bits(seed, 3, uint64_t(i)) % uint64_t(V));
  return t;
}

std::vector<float> host_copy(const Tensor& t) {
  std::vector<float> out(size_t(t.numel()));
  tensor_copy(Tensor(out.data(), DType::F32, Device::CPU, t.shape), t);
  return out;
}

// Logits [T, V] of the parallel forward over `toks` (model on any device).
std::vector<float> forward_logits(Model& m, const std::vector<int32_t>& toks) {
  const int64_t T = int64_t(toks.size());
  Workspace ws(m, RunSpec{1, T, false, true, false, 0, true});
  int32_t* ids = ws.host_ids.host<int32_t>();
  for (int64_t i = 0; i < T; ++i) ids[i] = toks[size_t(i)], ids[T + i] = -1;
  ws.upload_ids();
  model_forward(m, ws);
  return host_copy(ws.logits);
}

// max |a - b| / max |b| over row `row` of V values.
double row_err(const float* got, const std::vector<float>& want, int64_t row, int64_t V) {
  double err = 0, scale = 1e-30;
  for (int64_t v = 0; v < V; ++v) {
    const double w = want[size_t(row * V + v)];
    err = std::max(err, std::fabs(double(got[v]) - w));
    scale = std::max(scale, std::fabs(w));
  }
  return err / scale;
}

// Fixed ids (some targets -1) for a workspace of 3 x 21 rows; a classifier's documents padded.
void fill_ids(Workspace& ws, const ModelConfig& cfg) {
  const int64_t B = ws.batch(), T = ws.seq();
  int32_t* ids = ws.host_ids.host<int32_t>();
  for (int64_t i = 0; i < B * T; ++i) {
    ids[i] = int32_t(rng_bits(5, 0, uint64_t(i)) % uint64_t(cfg.vocab_size));
    ids[B * T + i] = i % 7 == 3 ? -1 : int32_t(rng_bits(6, 0, uint64_t(i)) % uint64_t(cfg.vocab_size));
  }
  const int32_t lens[] = {21, 9, 14};
  if (cfg.task.classify())
    for (int64_t b = 0; b < B; ++b) {
      ws.host_docs.host<int32_t>()[b] = lens[b];
      ws.host_docs.host<int32_t>()[B + b] = int32_t(b + 1);
    }
  ws.upload_ids();
}

// Gradients of two forward/backward passes over fixed ids, read back: bytes.
std::vector<unsigned char> gradients(const ModelConfig& cfg, bool recompute, double* loss) {
  Model host(cfg, DType::F32, Device::CPU, false);
  host.init(11);
  Model m(host, Device::CUDA, true);
  const int64_t B = 3, T = 21;
  Workspace ws(m, RunSpec{B, T, true, true, recompute});
  fill_ids(ws, cfg);
  m.zero_grads();
  *loss = 0;
  for (int pass = 0; pass < 2; ++pass) {
    if (cfg.task.classify()) {
      *loss += classify_forward(m, ws, B, T);
      classify_backward(m, ws, B, T, 0.5);
    } else {
      *loss += model_forward(m, ws);
      model_backward(m, ws, 0.01);
    }
  }
  const Tensor g = m.grads_arena().flat(DType::F32);
  const std::vector<float> gh = host_copy(g);
  std::vector<unsigned char> out(g.bytes());
  std::memcpy(out.data(), gh.data(), out.size());
  return out;
}

}  // namespace

TEST(CudaModel, RecomputationGivesBitwiseTheStoredGradients) {
  REQUIRE_CUDA();
  for (const char* kind : {"wersa", "linear", "softmax"})
    for (bool classify : {false, true}) {
      SCOPED_TRACE(std::string(kind) + (classify ? " classifier (bidirectional, padded)" : " LM"));
      const ModelConfig cfg = small_model(kind, classify, !classify);
      double l1 = 0, l2 = 0;
      const auto stored = gradients(cfg, false, &l1), recomputed = gradients(cfg, true, &l2);
      EXPECT_EQ(l1, l2);
      EXPECT_TRUE(stored == recomputed) << "the gradients differ";
      size_t nonzero = 0;
      for (unsigned char c : stored) nonzero += c != 0;
      EXPECT_GT(nonzero, stored.size() / 2) << "most gradient bytes are zero: the check proves little";
    }
}

TEST(CudaModel, GradientsFollowTheCpu) {
  REQUIRE_CUDA();
  for (const char* kind : {"wersa", "linear", "softmax"}) {
    SCOPED_TRACE(kind);
    const ModelConfig cfg = small_model(kind);
    double lg = 0;
    const auto g = gradients(cfg, false, &lg);
    // The same on the CPU.
    Model m(cfg, DType::F32);
    m.init(11);
    const int64_t B = 3, T = 21;
    Workspace ws(m, RunSpec{B, T, true, true, false});
    fill_ids(ws, cfg);
    m.zero_grads();
    double lc = 0;
    for (int pass = 0; pass < 2; ++pass) {
      lc += model_forward(m, ws);
      model_backward(m, ws, 0.01);
    }
    EXPECT_NEAR(lg, lc, 1e-5 * std::fabs(lc));
    const float* want = m.grads_arena().flat(DType::F32).host<float>();
    const float* got = reinterpret_cast<const float*>(g.data());
    double num = 0, den = 0;
    for (size_t i = 0; i < g.size() / 4; ++i)
      num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]), den += double(want[i]) * want[i];
    EXPECT_GT(den, 0);
    EXPECT_LT(num / den, 1e-9) << "normalised squared error of the gradients";
  }
}

TEST(CudaModel, DecodeAndChunkedPrefillReproduceTheForward) {
  REQUIRE_CUDA();
  for (const char* kind : {"wersa", "linear", "softmax"}) {
    SCOPED_TRACE(kind);
    Model host(small_model(kind), DType::F32, Device::CPU, false);
    host.init(42);
    Model m(host, Device::CUDA);
    const int64_t T = 70, V = m.config().vocab_size;
    const auto toks = tokens_of(T, V, 9);
    const auto want = forward_logits(m, toks);
    const auto cpu = forward_logits(host, toks);
    double worst_cpu = 0;
    for (int64_t t = 0; t < T; ++t) worst_cpu = std::max(worst_cpu, row_err(want.data() + t * V, cpu, t, V));
    EXPECT_LT(worst_cpu, 1e-5) << "the CUDA forward against the CPU's";
    DecodeState st(m, DecodeOptions{T, 512});
    double worst = 0;
    for (int64_t t = 0; t < T; ++t) {
      const Tensor& l = decode_step(m, st, toks[size_t(t)]);
      EXPECT_EQ(l.device, Device::CPU);
      worst = std::max(worst, row_err(l.host<float>(), want, t, V));
    }
    EXPECT_LT(worst, 1e-4) << "decode against the forward";
    for (int64_t chunk : {1, 16, 33, 512}) {
      DecodeState ps(m, DecodeOptions{T, chunk});
      const Tensor& last = prefill(m, ps, toks);
      EXPECT_LT(row_err(last.host<float>(), want, T - 1, V), 1e-4) << "chunk " << chunk;
      EXPECT_EQ(ps.pos(), T);
    }
  }
}

TEST(CudaModel, ClassifierLogitsDoNotDependOnThePaddedBatch) {
  REQUIRE_CUDA();
  for (const char* kind : {"wersa", "linear", "softmax"})
    for (bool causal : {true, false}) {
      SCOPED_TRACE(std::string(kind) + (causal ? " causal" : " bidirectional"));
      Model host(small_model(kind, true, causal), DType::F32, Device::CPU, false);
      host.init(7);
      Model m(host, Device::CUDA);
      const int64_t C = 4, V = m.config().vocab_size;
      const std::vector<int32_t> lens = {9, 3, 17, 1, 12};
      const int64_t B = int64_t(lens.size());
      auto fill = [&](Workspace& ws, const std::vector<int>& order, int64_t Tpad) {
        int32_t* ids = ws.host_ids.host<int32_t>();
        int32_t* docs = ws.host_docs.host<int32_t>();
        for (int64_t i = 0; i < int64_t(order.size()); ++i) {
          const auto toks = tokens_of(lens[size_t(order[size_t(i)])], V, uint64_t(order[size_t(i)]));
          for (int64_t t = 0; t < Tpad; ++t)
            ids[i * Tpad + t] = t < int64_t(toks.size()) ? toks[size_t(t)] : int32_t((t * 7 + i) % V);
          docs[i] = lens[size_t(order[size_t(i)])];
          docs[ws.batch() + i] = 1;
        }
        ws.upload_ids();
      };
      std::vector<std::vector<float>> alone;
      for (int b = 0; b < B; ++b) {
        Workspace ws(m, RunSpec{1, lens[size_t(b)], false, true});
        fill(ws, {b}, lens[size_t(b)]);
        classify_forward(m, ws, 1, lens[size_t(b)]);
        alone.push_back(host_copy(ws.logits.rows(0, 1)));
      }
      for (int64_t Tpad : {17, 21}) {
        Workspace ws(m, RunSpec{B + 1, Tpad + 3, false, true});
        const std::vector<int> order = {3, 0, 4, 2, 1};
        fill(ws, order, Tpad);
        classify_forward(m, ws, B, Tpad);
        const auto got = host_copy(ws.logits.rows(0, B));
        for (int64_t i = 0; i < B; ++i)
          for (int64_t c = 0; c < C; ++c) {
            const double w = alone[size_t(order[size_t(i)])][size_t(c)];
            EXPECT_NEAR(got[size_t(i * C + c)], w, 2e-5 * (1 + std::fabs(w)))
                << "document " << order[size_t(i)] << " class " << c << " padded to " << Tpad;
          }
      }
    }
}

// Activation recomputation (RunSpec::recompute, train.recompute): a workspace that keeps only each
// block's input and recomputes the block in the backward gives bitwise the same losses and
// parameter gradients as one that stores every layer's activations, for every attention kind and
// feature map, language model and classifier (causal and bidirectional padded batches), f32 and
// f64; it plans fewer activation bytes, and the memory estimate of a run sees the difference.
#include <cstring>

#include "testutil.h"
#include "wersa/model/model.h"
#include "wersa/train/memory.h"

using namespace wersa;
using namespace wersa::test;

namespace {

ModelConfig config(const std::string& type, const std::string& feature_map, bool classify, bool causal) {
  ModelConfig m;
  m.vocab_size = 37;
  m.dim = 16;
  m.layers = 3;
  m.heads = 4;
  m.kv_heads = 2;
  m.ffn_dim = 24;
  m.rope_theta = 10000;
  m.init_std = 0.3;
  m.attention.type = attention_kind_from_name(type);
  m.attention.feature_map = feature_map;
  m.attention.features = 8;
  m.attention.levels = 2;
  m.attention.conv_width = 5;
  m.attention.chunk = 4;
  m.attention.causal = causal;
  if (classify) {
    m.task.type = "classify";
    m.task.num_classes = 4;
    m.task.pooling = "mean";
  }
  return m;
}

struct Result {
  std::vector<unsigned char> grads;
  double loss = 0;
  size_t bytes = 0;
};

// Two forward/backward passes (the gradients accumulate) over fixed token ids.
Result run(const ModelConfig& cfg, DType dt, bool recompute) {
  Model m(cfg, dt);
  m.init(11);
  const int64_t B = 3, T = 13;
  Workspace ws(m, RunSpec{B, T, true, true, recompute});
  EXPECT_EQ(ws.block_inputs.size(), recompute ? size_t(cfg.layers) : size_t(0));
  int32_t* ids = ws.host_ids.host<int32_t>();
  for (int64_t i = 0; i < B * T; ++i) {
    ids[i] = int32_t(rng_bits(5, 0, uint64_t(i)) % uint64_t(cfg.vocab_size));
    ids[B * T + i] = i % 7 == 3 ? -1 : int32_t(rng_bits(6, 0, uint64_t(i)) % uint64_t(cfg.vocab_size));
  }
  const std::vector<int32_t> lens = {13, 6, 9};  // padded documents (classifier)
  if (cfg.task.classify())
    for (int64_t b = 0; b < B; ++b) {
      ws.host_docs.host<int32_t>()[b] = lens[size_t(b)];
      ws.host_docs.host<int32_t>()[B + b] = int32_t(b + 1);
    }
  ws.upload_ids();
  m.zero_grads();
  Result r;
  for (int pass = 0; pass < 2; ++pass) {
    if (cfg.task.classify()) {
      r.loss += classify_forward(m, ws, B, T);
      classify_backward(m, ws, B, T, 0.5);
    } else {
      r.loss += model_forward(m, ws);
      model_backward(m, ws, 0.01);
    }
  }
  const Tensor g = m.grads_arena().flat(dt);
  r.grads.resize(g.bytes());
  std::memcpy(r.grads.data(), g.data, r.grads.size());
  r.bytes = ws.bytes();
  return r;
}

void check(const ModelConfig& cfg) {
  for (DType dt : {DType::F32, DType::F64}) {
    SCOPED_TRACE(dt == DType::F32 ? "f32" : "f64");
    const Result stored = run(cfg, dt, false), recomputed = run(cfg, dt, true);
    EXPECT_EQ(stored.loss, recomputed.loss);
    ASSERT_EQ(stored.grads.size(), recomputed.grads.size());
    EXPECT_TRUE(stored.grads == recomputed.grads) << "the gradients differ";
    size_t nonzero = 0;
    for (unsigned char c : stored.grads) nonzero += c != 0;
    EXPECT_GT(nonzero, stored.grads.size() / 2) << "most gradient bytes are zero: the check proves little";
    EXPECT_LT(recomputed.bytes, stored.bytes) << "recomputation should plan fewer activation bytes";
  }
}

}  // namespace

TEST(Recompute, LanguageModelEveryKind) {
  for (const char* type : {"wersa", "linear", "softmax"}) {
    SCOPED_TRACE(type);
    check(config(type, "relu", false, true));
  }
  SCOPED_TRACE("wersa exp");
  check(config("wersa", "exp", false, true));
}

TEST(Recompute, ClassifierCausalAndBidirectionalPadded) {
  for (const char* type : {"wersa", "linear", "softmax"})
    for (bool causal : {true, false}) {
      SCOPED_TRACE(std::string(type) + (causal ? " causal" : " bidirectional"));
      check(config(type, "relu", true, causal));
    }
}

TEST(Recompute, MemoryEstimateSeesIt) {
  Config cfg;
  cfg.model = config("wersa", "relu", false, true);
  cfg.model.layers = 6;
  cfg.train.batch_size = 2;
  cfg.train.seq_len = 256;
  const MemoryEstimate stored = estimate_train_memory(cfg);
  cfg.train.recompute = true;
  const MemoryEstimate recomputed = estimate_train_memory(cfg);
  EXPECT_EQ(recomputed.params, stored.params);
  EXPECT_EQ(recomputed.optimizer, stored.optimizer);
  // Six per-layer sets become one shared set plus six block inputs.
  EXPECT_LT(double(recomputed.activations), 0.5 * double(stored.activations));
  EXPECT_LT(recomputed.total, stored.total);
}

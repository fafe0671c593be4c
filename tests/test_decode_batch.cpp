// Batched decoding (DecodeBatch): for WERSA (f32 and bf16 weights), linear and softmax attention, sequences
// at different positions that join and leave the batch between steps get, every step, the logits decode_step
// gives them alone (bit for bit, on one thread, two, and with every GEMV split over two) and the
// same greedy tokens; the batch's checks reject bad input before changing any state.
#include <cmath>

#include "testutil.h"
#include "wersa/backend/backend.h"
#include "wersa/model/decode_batch.h"
#include "wersa/model/generate.h"
#include "wersa/model/sampler.h"

using namespace wersa;
using namespace wersa::test;

namespace {

ModelConfig batch_model(const std::string& type) {
  ModelConfig m;
  m.vocab_size = 41;
  m.dim = 64;  // rows of several 32-column blocks of the bf16 GEMV (plus a tail in the FFN's)
  m.layers = 2;
  m.heads = 4;
  m.kv_heads = 2;
  m.ffn_dim = 80;
  m.rope_theta = 10000.0;
  m.init_std = 0.2;  // large enough that every path moves the logits
  m.attention.type = attention_kind_from_name(type);
  m.attention.features = 8;
  m.attention.levels = 3;
  m.attention.conv_width = 5;
  m.attention.chunk = 16;
  return m;
}

std::unique_ptr<Model> make_model(const std::string& type) {
  auto m = std::make_unique<Model>(batch_model(type), DType::F32, Device::CPU, false);
  m->init(7);
  // Move the norms, biases and scales off their symmetric init values, so every path matters.
  const auto& params = m->params_arena().tensors();
  for (size_t i = 0; i < params.size(); ++i) {
    if (m->param_decls()[i].kind == ParamKind::Matrix) continue;
    for (int64_t j = 0; j < params[i].numel(); ++j)
      params[i].ptr<float>()[j] += float(0.2 * rng_normal(11, uint64_t(i), uint64_t(j)));
  }
  return m;
}

std::vector<int32_t> tokens_of(int64_t n, int64_t V, uint64_t seed) {
  std::vector<int32_t> t(size_t(n), 0);
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t(rng_bits(seed, 3, uint64_t(i)) % uint64_t(V));
  return t;
}

std::vector<float> copy_logits(const Tensor& t) { return {t.ptr<float>(), t.ptr<float>() + t.numel()}; }

// max |a - b| / max |b|.
double rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, scale = 1e-30;
  for (size_t v = 0; v < want.size(); ++v) {
    err = std::max(err, std::fabs(double(got[v]) - double(want[v])));
    scale = std::max(scale, std::fabs(double(want[v])));
  }
  return err / scale;
}

// When each sequence is in the batch: sequence i runs steps [join[i], leave[i]).
constexpr int kSeqs = 4, kSteps = 12;
const int kPrompt[kSeqs] = {3, 17, 40, 1};
const int kJoin[kSeqs] = {0, 0, 3, 5};
const int kLeave[kSeqs] = {12, 7, 11, 10};  // 2, 3, 4, 3, 2 rows, then 1

struct Trace {
  std::vector<std::vector<std::vector<float>>> logits;  // [sequence][its step] logits after it
  std::vector<std::vector<int32_t>> tokens;             // greedy tokens fed, per sequence
};

// Each sequence alone: prefill its prompt, then feed greedy tokens one decode_step at a time.
Trace alone(const Model& m, const DecodeOptions& opt) {
  Trace r;
  Sampler greedy(SamplerOptions{0.0});
  for (int i = 0; i < kSeqs; ++i) {
    DecodeState s(m, opt);
    prefill(m, s, tokens_of(kPrompt[i], m.config().vocab_size, uint64_t(i)));
    r.logits.emplace_back();
    r.tokens.emplace_back();
    for (int step = kJoin[i]; step < kLeave[i]; ++step) {
      const int32_t t = greedy.sample(s.logits(), s.tokens());
      decode_step(m, s, t);
      r.tokens.back().push_back(t);
      r.logits.back().push_back(copy_logits(s.logits()));
    }
  }
  return r;
}

// The same sequences in one DecodeBatch, joining and leaving at their steps.
Trace batched(const Model& m, const DecodeOptions& opt) {
  Trace r;
  r.logits.resize(kSeqs);
  r.tokens.resize(kSeqs);
  Sampler greedy(SamplerOptions{0.0});
  std::vector<std::unique_ptr<DecodeState>> st;
  for (int i = 0; i < kSeqs; ++i) {
    st.push_back(std::make_unique<DecodeState>(m, opt));
    prefill(m, *st.back(), tokens_of(kPrompt[i], m.config().vocab_size, uint64_t(i)));
  }
  DecodeBatch batch(m, kSeqs, opt);
  for (int step = 0; step < kSteps; ++step) {
    std::vector<DecodeState*> states;
    std::vector<int32_t> toks;
    std::vector<int> who;
    for (int i = 0; i < kSeqs; ++i)
      if (step >= kJoin[i] && step < kLeave[i]) {
        states.push_back(st[size_t(i)].get());
        toks.push_back(greedy.sample(st[size_t(i)]->logits(), st[size_t(i)]->tokens()));
        who.push_back(i);
      }
    batch.step(states, toks);
    for (size_t j = 0; j < who.size(); ++j) {
      r.tokens[size_t(who[j])].push_back(toks[j]);
      r.logits[size_t(who[j])].push_back(copy_logits(states[j]->logits()));
    }
  }
  return r;
}

}  // namespace

TEST(DecodeBatch, EachSequenceGetsItsLogitsAlone) {
  // One thread and two: the kernels' scratch differs with the thread count and the row count,
  // and a step over fewer rows than planned must find what it needs. With two threads also every
  // GEMV split over the decode team (set_gemv_split_bytes(0)). The few-row GEMV computes each row
  // as the one-row GEMV does, so the logits are the same bits alone and batched.
  for (const auto& [threads, split] : std::vector<std::pair<int, int64_t>>{{1, -1}, {2, -1}, {2, 0}})
    for (const char* type : {"wersa", "linear", "softmax", "wersa-bf16"}) {
      set_cpu_threads(threads);
      set_gemv_split_bytes(split);
      auto m = make_model(std::string(type).substr(0, 5) == "wersa" ? "wersa" : type);
      if (std::string(type) == "wersa-bf16") m = std::make_unique<Model>(*m, DType::BF16);  // bf16 weights
      const DecodeOptions opt{64, 16};
      const Trace a = alone(*m, opt), b = batched(*m, opt);
      for (int i = 0; i < kSeqs; ++i) {
        ASSERT_EQ(b.tokens[size_t(i)], a.tokens[size_t(i)])
            << type << " sequence " << i << ": greedy text differs";
        ASSERT_EQ(b.logits[size_t(i)].size(), a.logits[size_t(i)].size());
        double worst = 0;
        for (size_t k = 0; k < a.logits[size_t(i)].size(); ++k)
          worst = std::max(worst, rel_err(b.logits[size_t(i)][k], a.logits[size_t(i)][k]));
        EXPECT_EQ(worst, 0.0) << type << " sequence " << i << ", " << threads << " threads, split " << split
                              << ": batched logits differ from the sequence's alone (relative " << worst
                              << ")";
      }
    }
  set_cpu_threads(0);  // all cores again
  set_gemv_split_bytes(-1);
}

TEST(DecodeBatch, BadInputIsAnErrorBeforeAnyStateChanges) {
  auto m = make_model("softmax");
  const DecodeOptions opt{8, 4};
  DecodeBatch batch(*m, 2, opt);
  DecodeState a(*m, opt), b(*m, opt), other(*m, DecodeOptions{16, 4});
  prefill(*m, a, tokens_of(3, 41, 1));
  const std::vector<int32_t> a_tokens = a.tokens();
  EXPECT_THROW(batch.step({&a, &b}, {1}), Error);                // counts differ
  EXPECT_THROW(batch.step({&a, &a}, {1, 2}), Error);             // the same state twice
  EXPECT_THROW(batch.step({&a, &b}, {1, 41}), Error);            // outside the vocabulary
  EXPECT_THROW(batch.step({&a, &other}, {1, 2}), Error);         // another context
  EXPECT_THROW(batch.step({&a, &b, &other}, {1, 2, 3}), Error);  // more than max rows
  EXPECT_THROW(batch.step({}, {}), Error);
  prefill(*m, b, tokens_of(8, 41, 2));  // full context
  EXPECT_THROW(batch.step({&a, &b}, {1, 2}), Error);
  EXPECT_EQ(a.tokens(), a_tokens);
  EXPECT_EQ(b.pos(), 8);
}

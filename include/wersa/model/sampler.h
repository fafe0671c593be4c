// Next-token sampling, llama.cpp style. The chain, in order:
//   1. repetition penalty over the last repeat_last_n tokens of the history (each distinct token
//      once: logit / penalty if > 0, else logit * penalty);
//   2. temp <= 0: greedy, the argmax (lowest id on ties); stop here;
//   3. top-k (keep the k largest logits; 0 = off);
//   4. top-p (keep the smallest set of most probable tokens whose probability reaches p; 1 = off);
//   5. min-p (keep tokens with probability >= min_p * the largest; 0 = off);
//   6. temperature, softmax over what is left, one draw.
// Probabilities in 4-5 are softmax(logits) at temperature 1 (as llama.cpp's default chain), each
// step renormalising over the kept tokens; at least one token is always kept. Candidates are
// ordered by (logit descending, id ascending), so ties never depend on sort internals.
// The draw is u = rng_uniform(seed, stream, position) with position = the length of the history:
// no hidden state, single-threaded, so the same seed gives the same tokens for any thread count,
// and a sequence saved and reloaded draws what it would have drawn unbroken.
#pragma once
#include <cstdint>
#include <vector>

#include "wersa/tensor/tensor.h"

namespace wersa {

struct SamplerOptions {
  double temp = 0.8;
  int top_k = 40;
  double top_p = 0.95;
  double min_p = 0.05;
  double repeat_penalty = 1.0;  // 1 = off
  int repeat_last_n = 64;       // 0 = off, -1 = the whole history
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& o);
  const SamplerOptions& options() const { return o_; }
  // Chooses the token that follows `history` from logits [V] (f32 or f64). `banned` (e.g. EOS
  // with --ignore-eos) is never chosen; -1 = none.
  int32_t sample(const Tensor& logits, const std::vector<int32_t>& history, int32_t banned = -1);

 private:
  SamplerOptions o_;
  std::vector<double> logit_;  // working copy, grown once
  std::vector<int32_t> cand_;  // candidate ids
  std::vector<double> prob_;
  std::vector<uint8_t> seen_;
};

}  // namespace wersa

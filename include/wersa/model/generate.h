// Generation: the recurrent decoder of the causal LM (spec "Generation state"), the chunked
// parallel prefill that hands its final state to the recurrence, and the generation loop over a
// sampler (sampler.h). Both run the trunk of model.h over a workspace with a generation state:
// decoding is that function over one row. State files: io/state_file.h.
//
// WERSA keeps, per layer and sequence, a state whose size does not depend on the position:
//   conv    [K-1, D]        the last K-1 rows of u = RMSNorm(x) (gate-convolution window; ring,
//                           position p in row p mod (K-1))
//   haar_q  [2^L - 1, H*d]  for q^ = GELU(q): a_{l-1} at the last 2^(l-1) positions, l = 1..L
//   haar_k  [2^L - 1, Hkv*d] the same for k^ (ring layout of include/wersa/ops/haar.h)
//   S, z    [Hkv, m, d], [Hkv, m]  the linear-attention sums (in the model's dtype: fp32 for f32)
// so decode_step costs O(1) per token (`linear` keeps S and z only). The softmax baseline keeps a
// KV cache [ctx, Hkv, d] per layer instead (k after RoPE), so it has a context limit and its step
// cost grows with position.
//
// prefill() runs the prompt through the training forward's block function, in chunks of
// `prefill_chunk` rows (memory bounded for any prompt length): every op with memory continues from
// the state (the convolution from its window, the Haar analysis from its rings, linear attention
// from (S, z), RoPE at the chunk's position, softmax over the KV cache) and advances it, so any
// split of a sequence into prefill chunks and decode steps computes the logits of model_forward
// over the whole sequence (up to rounding: fp32 relative error < 1e-4).
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "wersa/model/model.h"
#include "wersa/tensor/arena.h"

namespace wersa {

class Workspace;

struct DecodeOptions {
  // Most tokens the state may hold: required (> 0) for softmax models, whose KV cache it sizes;
  // 0 = unlimited for WERSA (a positive value is then only a limit).
  int64_t context = 0;
  int64_t prefill_chunk = 512;  // rows per parallel prefill chunk
};

// The generation state of one sequence, planned once: the state arena (what the attention kind
// keeps per layer), a workspace of one row for decode steps and one of prefill_chunk rows for
// prefill (built on first use), both planned by the same function as training's. Decoding
// allocates nothing per token. It refers to `model`, which must outlive it.
class DecodeState {
 public:
  DecodeState(const Model& model, const DecodeOptions& opt = {});
  ~DecodeState();
  DecodeState(const DecodeState&) = delete;
  DecodeState& operator=(const DecodeState&) = delete;

  void reset();                                            // position 0: zero state, no tokens
  int64_t pos() const { return int64_t(tokens_.size()); }  // tokens consumed
  int64_t context() const { return opt_.context; }         // 0 = unlimited
  int64_t prefill_chunk() const { return opt_.prefill_chunk; }
  // Tokens that still fit (INT64_MAX when unlimited).
  int64_t room() const;
  const std::vector<int32_t>& tokens() const { return tokens_; }  // every token consumed, in order
  // [V]: the logits that predict the next token (valid once pos() > 0), on the host: a model on
  // a device reads them back once per step.
  const Tensor& logits() const { return logits_; }
  // Bytes of the recurrent state (WERSA: constant; softmax: the whole KV cache).
  size_t state_bytes() const;
  // The state tensors in the order of the state file, and whether tensor i's rows are positions
  // (a KV cache, of which only the first pos() rows are in use).
  const std::deque<Tensor>& state_tensors() const;
  bool per_position(size_t i) const { return per_position_[i]; }
  // Copies position, tokens, logits and state from a state of the same model and options.
  void copy_from(const DecodeState& o);
  // State files: after the caller has filled the state tensors and the logits, the tokens they
  // stand for.
  void restore_tokens(std::vector<int32_t> tokens) { tokens_ = std::move(tokens); }
  const Model& model() const { return *model_; }
  // Op calls of the decode steps add their times to `t` from now on (nullptr: stop; OpTimes,
  // wersa/tensor/context.h): wersa-bench --ops.
  void set_op_times(OpTimes* t);

 private:
  friend const Tensor& decode_step(const Model& m, DecodeState& s, int32_t token);
  friend const Tensor& prefill(const Model& m, DecodeState& s, const std::vector<int32_t>& tokens,
                               const Tensor& all_logits);
  friend class DecodeBatch;  // decode_batch.h: steps of several states in one forward
  Workspace& chunk();        // the prefill workspace, built and planned on first use
  void plan(Workspace& ws, int64_t rows);
  const Model* model_;
  DecodeOptions opt_;
  std::vector<int32_t> tokens_;
  std::unique_ptr<Arena> state_;
  std::vector<Slots> layers_;  // per layer: the attention kind's state
  std::vector<bool> per_position_;
  std::unique_ptr<Workspace> step_, chunk_;
  // [V]: a view of step_'s [1, V] logits on the model's device (written by each step), and the
  // logits the callers read, on the host: dev_logits_ itself on the CPU, else its read-back.
  Tensor dev_logits_;
  Tensor logits_;
  std::unique_ptr<Arena> host_logits_;
  void read_back_logits(Ctx& ctx);
};

// Checks that the state belongs to the model and that n more tokens fit (an Error otherwise).
void check_decode_state(const Model& m, const DecodeState& s, int64_t n, const char* what);

// One token through every layer from the state; advances the state by one position and returns
// the logits of the next token (s.logits()). A token outside [0, V) or a full context is an Error.
const Tensor& decode_step(const Model& m, DecodeState& s, int32_t token);

// The tokens in parallel chunks of s.prefill_chunk(); advances the state past them and returns the
// logits after the last one. When all_logits [n, V] is given, every position's logits go there.
const Tensor& prefill(const Model& m, DecodeState& s, const std::vector<int32_t>& tokens,
                      const Tensor& all_logits = {});

// Bytes of parameters and buffers one decode step reads: every matrix and vector once, the
// embedding once as the LM head when tied (else one row of it, plus the LM head).
size_t decode_weight_bytes(const Model& m);

// Hex digest identifying a model: its config and the bytes of its parameters and buffers.
std::string model_fingerprint(const Model& m);

class Sampler;

struct GenerateOptions {
  int64_t n_predict = 128;  // tokens to generate; -1 = until EOS or the context is full
  int32_t eos_id = -1;      // generation stops after it (unless ignore_eos); -1 = none
  bool ignore_eos = false;  // EOS is never sampled (its logit is masked)
};
struct GenerateStats {
  int64_t prompt_tokens = 0, generated = 0;
  double prompt_ms = 0, generate_ms = 0;  // prefill; sampling + decode steps
  bool hit_eos = false, context_full = false;
};
// Prefills `prompt` (may be empty when the state already holds tokens), then samples and feeds
// tokens one at a time, calling on_token for each as soon as it is chosen. Every generated token
// (EOS too) is fed to the state, so the state afterwards has consumed everything shown.
GenerateStats generate(const Model& m, DecodeState& s, Sampler& sampler, const std::vector<int32_t>& prompt,
                       const GenerateOptions& opt, const std::function<void(int32_t)>& on_token = {});

}  // namespace wersa

// Internal to the model: the interface every attention kind implements, in one file per kind
// (attn_wersa.cpp, attn_linear.cpp, attn_softmax.cpp). The block (block.cpp) runs the parts all
// kinds share (RMSNorm, the q/k/v projections with RoPE, the output projection Wo and the
// residual); a kind maps (u, q, k, v) to the attention output o [N, H*d] and back. A kind declares
// its own parameters, buffers, saved activations, backward temporaries and generation state as
// Slots named by its own enum, so nothing outside its file lists them. Adding a kind is a file
// like those, an AttentionKind value and one row of the table in attention.cpp.
//
// Rows: every activation is planned with the run's rows (positions) as its leading dimension, so
// that a call over fewer rows than planned (a prefill chunk, one decode position) uses the first
// rows of each buffer. A call with a generation state continues its sequence at position pos0 and
// advances the state; the ops pick their one-position step kernels when the call has one row.
//
// Padding (spec "Classification"): a bidirectional classifier pass over documents padded to T
// gives the call `lengths`; a kind then takes every padded row (t >= n_b) out of what the real
// rows read: u as 0 in the centred gate convolution, phi(k~) as 0 in the linear-attention sums,
// keys and values masked out for softmax (forward and backward). Causal calls never get lengths:
// right padding cannot reach an earlier position, so they run exactly as without padding.
#pragma once
#include <memory>
#include <string>

#include "wersa/model/config.h"
#include "wersa/model/params.h"
#include "wersa/tensor/context.h"

namespace wersa::detail {

// Sizes used by the block and the kinds.
struct Dims {
  int64_t D, H, Hkv, d, M, L, K, G, V, F;
  explicit Dims(const ModelConfig& c);
};

// Plans activations: add(name, per-row shape) returns [rows, ...] in the run's arena.
struct ActPlan {
  Arena& arena;
  const std::string prefix;  // "act.3." (per layer) or "act." (shared)
  DType dt;
  int64_t rows;
  bool backward;  // activations are kept for a backward pass
  Tensor add(const std::string& name, std::initializer_list<int64_t> per_row) const;
};

// Plans generation state tensors (one sequence): add(name, shape, rows_are_positions) with the
// name "layers.<i>.<name>" (the state file's tensor names).
struct StatePlan {
  Arena& arena;
  const std::string prefix;  // "layers.3."
  DType dt;
  int64_t context;                  // most tokens the state may hold (0 = unlimited)
  std::vector<bool>* per_position;  // one flag per added tensor: its rows are positions (a cache)
  Tensor add(const std::string& name, Shape shape, bool rows_are_positions = false) const;
};

// One call of a kind over N = B * T rows (B sequences of T positions).
struct AttnCall {
  const ModelConfig& c;
  const Dims& s;
  int64_t B, T, pos0;  // pos0: position of each sequence's first row (0 unless continuing a state)
  const Slots& p;      // parameters
  Slots* g;            // parameter gradients (backward)
  const Slots& buf;    // buffers (random features)
  const Slots& a;      // this layer's activations (N rows)
  const Slots* bw;     // backward temporaries (N rows)
  Slots* state;        // generation state, or null (training, evaluation)
  Tensor u, q, k, v;   // [N, D], [N, H*d], [N, Hkv*d], [N, Hkv*d] (q, k after RoPE)
  Tensor o{};          // [N, H*d] out
  Tensor du{}, dq{}, dk{}, dv{}, dout{};  // backward: dout given; dq, dk, dv overwritten; du see reads_u
  Tensor lengths{};  // [B] i32: each sequence's real rows, when padding must be masked (else undefined)
  // The weights the kind's GEMMs read (Model::gemm_weights: the bf16 shadow in mixed precision;
  // null: p) and whether they run with bf16 operands (matmul's bf16 flag).
  const Slots* w = nullptr;
  bool bf16 = false;
  int64_t N() const { return B * T; }
};

class Attention {
 public:
  virtual ~Attention() = default;
  // Parameters between the q/k/v projections and Wo (prefix "layers.<i>.").
  virtual void params(const std::string& prefix, Slots& p, const ParamFn& f) const = 0;
  virtual void buffers(const std::string& prefix, Slots& b, const ParamFn& f) const = 0;
  virtual void acts(const ActPlan& plan, Slots& a) const = 0;
  virtual void backward_buffers(const ActPlan& plan, Slots& g) const = 0;
  virtual void state(const StatePlan& plan, Slots& st) const = 0;
  // o = Attn(u, q, k, v); with c.state, continues and advances the state.
  virtual void fwd(Ctx& ctx, const AttnCall& c) const = 0;
  // From dout: dq, dk, dv (overwritten), parameter gradients (accumulated) and, when reads_u(),
  // du (overwritten).
  virtual void bwd(Ctx& ctx, const AttnCall& c) const = 0;
  // Whether the kind reads u besides the projections (the WERSA gates do).
  virtual bool reads_u() const = 0;
  // Whether the state grows with the position (a KV cache): then a context length is required.
  virtual bool needs_context() const = 0;
};

// The kind of the config (the table in attention.cpp).
std::unique_ptr<Attention> make_attention(const ModelConfig& c);

}  // namespace wersa::detail

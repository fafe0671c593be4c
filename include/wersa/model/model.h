// The causal language model: parameters, gradients and buffers in arenas, plus a Workspace of
// activations planned for one (batch, sequence) shape. forward() computes per-token losses;
// backward() accumulates parameter gradients (call zero_grads() at the start of a step).
#pragma once
#include <memory>
#include <vector>

#include "wersa/model/config.h"
#include "wersa/model/params.h"

namespace wersa {

class Model {
 public:
  // Plans and allocates parameters (and, when `trainable`, gradients) in dtype `dt`.
  Model(const ModelConfig& cfg, DType dt = DType::F32, Device dev = Device::CPU, bool trainable = true);
  void init(uint64_t seed);  // parameters and random-feature buffers from one seed
  void zero_grads();

  const ModelConfig& config() const { return cfg_; }
  DType dtype() const { return dt_; }
  Device device() const { return dev_; }
  int64_t num_params() const;
  bool trainable() const { return grads_arena_ != nullptr; }

  ModelParams params, grads;  // grads: undefined tensors when not trainable
  ModelBuffers buffers;
  Arena& params_arena() { return *params_arena_; }
  Arena& grads_arena() { return *grads_arena_; }
  Arena& buffers_arena() { return *buffers_arena_; }

 private:
  ModelConfig cfg_;
  DType dt_;
  Device dev_;
  std::unique_ptr<Arena> params_arena_, grads_arena_, buffers_arena_;
};

// Activations saved by the forward pass for one layer (rows are the B*T positions).
struct LayerActs {
  Tensor x, u, rstd1;             // block input, RMSNorm(x), its 1/rms
  Tensor q, k, v;                 // projections (q, k after RoPE)   [N, H*d] / [N, Hkv*d]
  Tensor c, h1, a1, z, g, gamma;  // WERSA gates: conv out, fc1 pre/post ReLU, fc2 out, sigmoid, gamma
  Tensor qh, kh, qt, kt;          // GELU(q), GELU(k), and their gated Haar filterings
  Tensor phiq, phik;              // random features [N, H, m], [N, Hkv, m]
  Tensor o, den, lse;             // attention output [N, H*d]; linear-attn denominators / softmax lse
  Tensor on, ln_mean, ln_rstd;    // head LayerNorm output and statistics [N*H]
  Tensor h, u2, rstd2;            // after the attention residual, its RMSNorm
  Tensor gate, up, act;           // SwiGLU
};

class Workspace {
 public:
  Workspace(const Model& model, int64_t batch, int64_t seq, bool for_backward = true);
  int64_t batch() const { return B_; }
  int64_t seq() const { return T_; }
  int64_t rows() const { return B_ * T_; }
  size_t bytes() const;

  Tensor tokens, targets;  // [B*T] i32, filled by the caller; target -1 = no loss at that position
  Tensor logits, losses;   // [B*T, V], [B*T]
  std::vector<LayerActs> acts;
  Tensor x_out;      // output of the last block [B*T, D]
  Tensor xf, rstdf;  // final RMSNorm output and 1/rms
  // backward scratch (shared by all layers)
  struct Grads {
    Tensor dres, du, dq, dk, dv, dqh, dkh, dqt, dkt, dphiq, dphik, do_, don, dgamma, dz, da1, dh1, dc;
    Tensor dcoef;  // [L+1, B, T, H*d]; the coefficients are recomputed into coef_scratch
    Tensor dgate, dup, dact;
  } g;
  Tensor coef_scratch;  // forward Haar coefficients [L+1, B, T, H*d]

 private:
  int64_t B_, T_;
  std::unique_ptr<Arena> arena_, iarena_;
};

// Forward: fills ws.logits and ws.losses (per-token NLL, 0 where target == -1). Returns the sum of
// the losses and sets *count to the number of counted targets.
double model_forward(Model& m, Workspace& ws, int64_t* count = nullptr);
// Backward of (loss_scale * sum of losses): accumulates into m.grads. Needs the forward's ws.
void model_backward(Model& m, Workspace& ws, double loss_scale);

}  // namespace wersa

// Internal to the model: random-feature linear attention (spec steps 3, 6, 7, 8), the attention
// kind `linear` and the base of `wersa`, which adds its gated Haar filter (steps 2, 4, 5) between
// GELU and the features. Per layer:
//   q^ = GELU(q), k^ = GELU(k)                       (q, k after RoPE)
//   q~, k~ = filter(q^, k^)                          (linear: the identity; WERSA: attn_wersa.cpp)
//   phi_q = phi(q~), phi_k = phi(k~),  phi(z) = ReLU(z Omega) / sqrt(m) (or the exp map)
//   phi_k = mask_padding(phi_k)                      (bidirectional over padded documents only)
//   o_lin = causal linear attention(phi_q, phi_k, v) (fp32 states S, z; chunked)
//   o = LayerNorm_d(o_lin)                           (weights shared by the heads)
// and the backward runs the adjoints in reverse (each op's header has its derivative).
// Generation state per layer: S [Hkv, m, d] and z [Hkv, m], plus whatever the filter keeps.
#pragma once
#include "attention.h"
#include "wersa/ops/feature_map.h"

namespace wersa::detail {

class LinearAttention : public Attention {
 public:
  explicit LinearAttention(const ModelConfig& c)
      : s_(c), cfg_(c), map_(c.attention.feature_map == "exp" ? FeatureMapKind::Exp : FeatureMapKind::Relu) {}
  void params(const std::string& prefix, Slots& p, const ParamFn& f) const override;
  void buffers(const std::string& prefix, Slots& b, const ParamFn& f) const override;
  void acts(const ActPlan& plan, Slots& a) const override;
  void backward_buffers(const ActPlan& plan, Slots& g) const override;
  void state(const StatePlan& plan, Slots& st) const override;
  void fwd(Ctx& ctx, const AttnCall& c) const override;
  void bwd(Ctx& ctx, const AttnCall& c) const override;
  bool reads_u() const override { return false; }
  bool needs_context() const override { return false; }

 protected:
  // Slots of the base; a derived kind numbers its own from the k* values on.
  enum Param { HnW, HnB, kParams };
  enum Buffer { OmegaQ, OmegaK, kBuffers };
  enum Act { Qh, Kh, Phiq, Phik, Lin, Den, LnMean, LnRstd, kActs };
  enum Grad { Dqh, Dkh, Dphiq, Dphik, Dlin, kGrads };
  enum State { S, Z, kStates };

  // The filter between GELU and the features. The base: q~ = q^, k~ = k^.
  virtual void filter_fwd(Ctx& ctx, const AttnCall& c) const;
  // Where the features' backward writes dq~, dk~ (the base: dq^, dk^ directly).
  virtual Tensor filtered_q(const AttnCall& c) const { return c.a[Qh]; }
  virtual Tensor filtered_k(const AttnCall& c) const { return c.a[Kh]; }
  virtual Tensor filtered_dq(const AttnCall& c) const { return (*c.bw)[Dqh]; }
  virtual Tensor filtered_dk(const AttnCall& c) const { return (*c.bw)[Dkh]; }
  // dq^, dk^ (and any parameter and du contributions of the filter) from dq~, dk~.
  virtual void filter_bwd(Ctx&, const AttnCall&) const {}
  // State planning of the filter (before S and z, so a state file lists them first).
  virtual void filter_state(const StatePlan&, Slots&) const {}

  const Dims s_;
  const ModelConfig cfg_;
  const FeatureMapKind map_;  // model.attention.feature_map
};

}  // namespace wersa::detail

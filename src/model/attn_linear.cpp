// Attention kind `linear` (see attn_linear.h): the random-feature linear attention without the
// wavelet filter, forward and backward side by side.
#include "attn_linear.h"

#include "kinds.h"
#include "wersa/ops/activation.h"
#include "wersa/ops/feature_map.h"
#include "wersa/ops/layernorm.h"
#include "wersa/ops/linear_attention.h"
#include "wersa/ops/mask.h"

namespace wersa::detail {

void LinearAttention::params(const std::string& pre, Slots& p, const ParamFn& f) const {
  f(p[HnW], {pre + "attn.head_norm.weight", {s_.d}, ParamKind::NormWeight});
  f(p[HnB], {pre + "attn.head_norm.bias", {s_.d}, ParamKind::Bias});
}

void LinearAttention::buffers(const std::string& pre, Slots& b, const ParamFn& f) const {
  const ParamKind kind = map_ == FeatureMapKind::Exp ? ParamKind::FeaturesExp : ParamKind::Features;
  f(b[OmegaQ], {pre + "attn.omega_q", {s_.d, s_.M}, kind});
  if (cfg_.attention.shared_qk_features)
    b[OmegaK] = b[OmegaQ];
  else
    f(b[OmegaK], {pre + "attn.omega_k", {s_.d, s_.M}, kind});
}

void LinearAttention::acts(const ActPlan& plan, Slots& a) const {
  a[Qh] = plan.add("qh", {s_.H * s_.d});
  a[Kh] = plan.add("kh", {s_.Hkv * s_.d});
  a[Phiq] = plan.add("phiq", {s_.H, s_.M});
  a[Phik] = plan.add("phik", {s_.Hkv, s_.M});
  a[Lin] = plan.add("lin", {s_.H * s_.d});
  a[Den] = plan.add("den", {s_.H});
  if (plan.backward) {  // the head LayerNorm's statistics, for its backward
    a[LnMean] = plan.add("ln_mean", {s_.H});
    a[LnRstd] = plan.add("ln_rstd", {s_.H});
  }
}

void LinearAttention::backward_buffers(const ActPlan& plan, Slots& g) const {
  g[Dqh] = plan.add("qh", {s_.H * s_.d});
  g[Dkh] = plan.add("kh", {s_.Hkv * s_.d});
  g[Dphiq] = plan.add("phiq", {s_.H, s_.M});
  g[Dphik] = plan.add("phik", {s_.Hkv, s_.M});
  g[Dlin] = plan.add("lin", {s_.H * s_.d});
}

void LinearAttention::state(const StatePlan& plan, Slots& st) const {
  filter_state(plan, st);
  st[S] = plan.add("S", {s_.Hkv, s_.M, s_.d});
  st[Z] = plan.add("z", {s_.Hkv, s_.M});
}

void LinearAttention::filter_fwd(Ctx&, const AttnCall&) const {}

void LinearAttention::fwd(Ctx& ctx, const AttnCall& c) const {
  const int64_t B = c.B, T = c.T, N = c.N(), H = s_.H, Hkv = s_.Hkv, d = s_.d, M = s_.M;
  const Slots& a = c.a;
  activation_fwd(ctx, {a[Qh], c.q, Activation::Gelu});
  activation_fwd(ctx, {a[Kh], c.k, Activation::Gelu});
  filter_fwd(ctx, c);
  feature_map_fwd(ctx, {a[Phiq], filtered_q(c).view({N, H, d}), c.buf[OmegaQ], map_});
  feature_map_fwd(ctx, {a[Phik], filtered_k(c).view({N, Hkv, d}), c.buf[OmegaK], map_});
  if (c.lengths.defined()) {  // padded documents: phi(k~) = 0 at the padding, out of every sum
    const Tensor phik = a[Phik].view({B, T, Hkv * M});
    mask_padding(ctx, {phik, phik, c.lengths});
  }
  LinearAttnFwd la{a[Lin].view({B, T, H, d}),    a[Den].view({B, T, H}),   a[Phiq].view({B, T, H, M}),
                   a[Phik].view({B, T, Hkv, M}), c.v.view({B, T, Hkv, d}), cfg_.attention.chunk,
                   cfg_.attention.eps,           cfg_.attention.causal};
  if (c.state) {  // continue the sequence from (S, z) and advance them
    la.S0 = (*c.state)[S].view({1, Hkv, M, d});
    la.z0 = (*c.state)[Z].view({1, Hkv, M});
    la.advance = true;
  }
  linear_attention_fwd(ctx, la);
  const Tensor ln_mean = a[LnMean].defined() ? a[LnMean].view({N * H}) : Tensor();
  const Tensor ln_rstd = a[LnRstd].defined() ? a[LnRstd].view({N * H}) : Tensor();
  layernorm_fwd(ctx, {c.o.view({N * H, d}), ln_mean, ln_rstd, a[Lin].view({N * H, d}), c.p[HnW], c.p[HnB],
                      cfg_.attention.head_norm_eps});
}

void LinearAttention::bwd(Ctx& ctx, const AttnCall& c) const {
  const int64_t B = c.B, T = c.T, N = c.N(), H = s_.H, Hkv = s_.Hkv, d = s_.d, M = s_.M;
  const Slots& a = c.a;
  const Slots& g = *c.bw;
  Slots& gp = *c.g;
  layernorm_bwd(ctx, {g[Dlin].view({N * H, d}), gp[HnW], gp[HnB], c.dout.view({N * H, d}),
                      a[Lin].view({N * H, d}), c.p[HnW], a[LnMean].view({N * H}), a[LnRstd].view({N * H})});
  linear_attention_bwd(ctx,
                       {g[Dphiq].view({B, T, H, M}), g[Dphik].view({B, T, Hkv, M}), c.dv.view({B, T, Hkv, d}),
                        g[Dlin].view({B, T, H, d}), a[Lin].view({B, T, H, d}), a[Den].view({B, T, H}),
                        a[Phiq].view({B, T, H, M}), a[Phik].view({B, T, Hkv, M}), c.v.view({B, T, Hkv, d}),
                        cfg_.attention.chunk, cfg_.attention.eps, cfg_.attention.causal});
  // The mask's adjoint: no gradient reaches phi(k~) at the padding (feature_map_bwd, reading the
  // masked phi, would also give 0 there; the adjoint keeps that independent of how it does).
  if (c.lengths.defined()) {
    const Tensor dphik = g[Dphik].view({B, T, Hkv * M});
    mask_padding(ctx, {dphik, dphik, c.lengths});
  }
  feature_map_bwd(ctx, {filtered_dq(c).view({N, H, d}), g[Dphiq], a[Phiq], c.buf[OmegaQ],
                        filtered_q(c).view({N, H, d}), map_});
  feature_map_bwd(ctx, {filtered_dk(c).view({N, Hkv, d}), g[Dphik], a[Phik], c.buf[OmegaK],
                        filtered_k(c).view({N, Hkv, d}), map_});
  filter_bwd(ctx, c);
  activation_bwd(ctx, {c.dq, g[Dqh], c.q, Activation::Gelu});
  activation_bwd(ctx, {c.dk, g[Dkh], c.k, Activation::Gelu});
}

std::unique_ptr<Attention> make_linear_attention(const ModelConfig& c) {
  return std::make_unique<LinearAttention>(c);
}

}  // namespace wersa::detail

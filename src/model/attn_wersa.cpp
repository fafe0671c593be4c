// Attention kind `wersa` (spec steps 1-8): the linear attention of attn_linear.h with WERSA's
// gated causal Haar filter between GELU and the random features:
//   c = causal depthwise conv(u)  (K taps, past and present)     (centred when bidirectional)
//       (bidirectional over padded documents: u at the padded rows taken as 0, c.lengths)
//   gamma = scale_weights * sigmoid(W2 ReLU(W1 c + b1) + b2)       one (L+1)-vector per token
//   q~ = HaarSynthesis(HaarAnalysis(q^), gamma),  k~ likewise       (same gates for q and k)
// Backward: the Haar filter's adjoint gives dq^, dk^ and dgamma (q and k add into one dgamma),
// then the gate MLP's and the convolution's adjoints give the parameter gradients and du.
// Generation state, besides S and z: the last K-1 rows of u (the convolution window) and, for q^
// and k^, the 2^L - 1 rows of Haar history (ops/haar.h), all of constant size.
#include <cmath>

#include "attn_linear.h"
#include "kinds.h"
#include "wersa/ops/activation.h"
#include "wersa/ops/conv.h"
#include "wersa/ops/gate.h"
#include "wersa/ops/haar.h"
#include "wersa/ops/matmul.h"

namespace wersa::detail {
namespace {

class WersaAttention final : public LinearAttention {
  enum Param { ConvW = kParams, ConvB, Fc1W, Fc1B, Fc2W, Fc2B, Scale };
  enum Act { Conv = kActs, H1, A1, Zg, Sig, Gamma, Qt, Kt };
  enum Grad { Dqt = kGrads, Dkt, Dgamma, Dz, Da1, Dh1, Dc };
  enum State { Window = kStates, HaarQ, HaarK };

 public:
  using LinearAttention::LinearAttention;

  void params(const std::string& pre, Slots& p, const ParamFn& f) const override {
    const int64_t D = s_.D, G = s_.G, L1 = s_.L + 1;
    f(p[ConvW], {pre + "attn.gate_conv.weight", {D, s_.K}, ParamKind::Matrix, 1.0 / std::sqrt(double(s_.K))});
    f(p[ConvB], {pre + "attn.gate_conv.bias", {D}, ParamKind::Bias});
    f(p[Fc1W], {pre + "attn.gate_fc1.weight", {G, D}, ParamKind::Matrix, cfg_.init_std, true});
    f(p[Fc1B], {pre + "attn.gate_fc1.bias", {G}, ParamKind::Bias});
    f(p[Fc2W], {pre + "attn.gate_fc2.weight", {L1, G}, ParamKind::Matrix, cfg_.init_std, true});
    f(p[Fc2B], {pre + "attn.gate_fc2.bias", {L1}, ParamKind::Bias});
    f(p[Scale], {pre + "attn.scale_weights", {L1}, ParamKind::Scale});
    LinearAttention::params(pre, p, f);  // the head LayerNorm
  }
  void acts(const ActPlan& plan, Slots& a) const override {
    const int64_t L1 = s_.L + 1;
    a[Conv] = plan.add("c", {s_.D});
    a[H1] = plan.add("h1", {s_.G});
    a[A1] = plan.add("a1", {s_.G});
    a[Zg] = plan.add("z", {L1});
    a[Sig] = plan.add("g", {L1});
    a[Gamma] = plan.add("gamma", {L1});
    a[Qt] = plan.add("qt", {s_.H * s_.d});
    a[Kt] = plan.add("kt", {s_.Hkv * s_.d});
    LinearAttention::acts(plan, a);
  }
  void backward_buffers(const ActPlan& plan, Slots& g) const override {
    const int64_t L1 = s_.L + 1;
    g[Dqt] = plan.add("qt", {s_.H * s_.d});
    g[Dkt] = plan.add("kt", {s_.Hkv * s_.d});
    g[Dgamma] = plan.add("gamma", {L1});
    g[Dz] = plan.add("z", {L1});
    g[Da1] = plan.add("a1", {s_.G});
    g[Dh1] = plan.add("h1", {s_.G});
    g[Dc] = plan.add("c", {s_.D});
    LinearAttention::backward_buffers(plan, g);
  }
  bool reads_u() const override { return true; }

 protected:
  void filter_state(const StatePlan& plan, Slots& st) const override {
    const int64_t P = (int64_t(1) << s_.L) - 1;
    if (s_.K > 1) st[Window] = plan.add("conv", {s_.K - 1, s_.D});
    st[HaarQ] = plan.add("haar_q", {P, s_.H * s_.d});
    st[HaarK] = plan.add("haar_k", {P, s_.Hkv * s_.d});
  }
  void filter_fwd(Ctx& ctx, const AttnCall& c) const override {
    const int64_t B = c.B, T = c.T, D = s_.D, L1 = s_.L + 1, Cq = s_.H * s_.d, Ck = s_.Hkv * s_.d;
    const int L = int(s_.L);
    const Slots& a = c.a;
    const Slots& p = c.p;
    const bool causal = cfg_.attention.causal;
    // Gates: one vector of L+1 values per token, shared by heads and by q and k.
    DepthwiseConvFwd conv{a[Conv].view({B, T, D}), c.u.view({B, T, D}), p[ConvW], p[ConvB], causal};
    conv.lengths = c.lengths;
    Tensor ring_q, ring_k;
    if (c.state) {
      if (s_.K > 1) conv.window = (*c.state)[Window].view({1, s_.K - 1, D});
      conv.pos0 = c.pos0;
      ring_q = (*c.state)[HaarQ].view({1, (*c.state)[HaarQ].dim(0), Cq});
      ring_k = (*c.state)[HaarK].view({1, (*c.state)[HaarK].dim(0), Ck});
    }
    depthwise_conv_fwd(ctx, conv);
    const Slots& w = c.w ? *c.w : p;
    matmul_fwd(ctx, {a[H1], a[Conv], w[Fc1W], p[Fc1B], false, c.bf16});
    activation_fwd(ctx, {a[A1], a[H1], Activation::Relu});
    matmul_fwd(ctx, {a[Zg], a[A1], w[Fc2W], p[Fc2B], false, c.bf16});
    gate_fwd(ctx, {a[Gamma], a[Sig], a[Zg], p[Scale]});
    const Tensor gamma = a[Gamma].view({B, T, L1});
    haar_filter_fwd(ctx, {a[Qt].view({B, T, Cq}), a[Qh].view({B, T, Cq}), gamma, L, ring_q, c.pos0});
    haar_filter_fwd(ctx, {a[Kt].view({B, T, Ck}), a[Kh].view({B, T, Ck}), gamma, L, ring_k, c.pos0});
  }
  Tensor filtered_q(const AttnCall& c) const override { return c.a[Qt]; }
  Tensor filtered_k(const AttnCall& c) const override { return c.a[Kt]; }
  Tensor filtered_dq(const AttnCall& c) const override { return (*c.bw)[Dqt]; }
  Tensor filtered_dk(const AttnCall& c) const override { return (*c.bw)[Dkt]; }
  void filter_bwd(Ctx& ctx, const AttnCall& c) const override {
    const int64_t B = c.B, T = c.T, D = s_.D, L1 = s_.L + 1, Cq = s_.H * s_.d, Ck = s_.Hkv * s_.d;
    const int L = int(s_.L);
    const Slots& a = c.a;
    const Slots& g = *c.bw;
    const Slots& p = c.p;
    Slots& gp = *c.g;
    const Tensor gamma = a[Gamma].view({B, T, L1}), dgamma = g[Dgamma].view({B, T, L1});
    haar_filter_bwd(ctx, {g[Dqh].view({B, T, Cq}), dgamma, g[Dqt].view({B, T, Cq}), a[Qh].view({B, T, Cq}),
                          gamma, L, false});
    haar_filter_bwd(ctx, {g[Dkh].view({B, T, Ck}), dgamma, g[Dkt].view({B, T, Ck}), a[Kh].view({B, T, Ck}),
                          gamma, L, true});
    // Gate MLP and convolution; the convolution's input gradient starts du.
    gate_bwd(ctx, {g[Dz], gp[Scale], g[Dgamma], a[Sig], p[Scale]});
    const Slots& w = c.w ? *c.w : p;
    matmul_bwd(ctx, {g[Da1], gp[Fc2W], gp[Fc2B], g[Dz], a[A1], w[Fc2W], false, c.bf16});
    activation_bwd(ctx, {g[Dh1], g[Da1], a[H1], Activation::Relu});
    matmul_bwd(ctx, {g[Dc], gp[Fc1W], gp[Fc1B], g[Dh1], a[Conv], w[Fc1W], false, c.bf16});
    depthwise_conv_bwd(ctx, {c.du.view({B, T, D}), gp[ConvW], gp[ConvB], g[Dc].view({B, T, D}),
                             c.u.view({B, T, D}), p[ConvW], cfg_.attention.causal, false, c.lengths});
  }
};

}  // namespace

std::unique_ptr<Attention> make_wersa_attention(const ModelConfig& c) {
  return std::make_unique<WersaAttention>(c);
}

}  // namespace wersa::detail

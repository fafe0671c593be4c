// The attention sub-layer of a block, forward and backward side by side.
// WERSA (spec steps 1-8):  q,k,v = u W + b (RoPE on q, k);  gates gamma = s * sigmoid(MLP(conv(u)));
//   q~ = Haar-synth(Haar-anal(GELU(q)), gamma), k~ likewise;  phi = ReLU(. Omega)/sqrt(m);
//   o = causal linear attention(phi(q~), phi(k~), v);  out = LayerNorm_d(o) Wo.
// Softmax baseline: out = softmax(q k^T / sqrt(d) + causal mask) v Wo.
#include <cmath>

#include "layers.h"
#include "wersa/backend/backend.h"
#include "wersa/ops/activation.h"
#include "wersa/ops/conv.h"
#include "wersa/ops/feature_map.h"
#include "wersa/ops/gate.h"
#include "wersa/ops/haar.h"
#include "wersa/ops/layernorm.h"
#include "wersa/ops/linear_attention.h"
#include "wersa/ops/matmul.h"
#include "wersa/ops/rope.h"
#include "wersa/ops/softmax_attention.h"

namespace wersa::detail {

namespace {
struct Dims {
  int64_t B, T, N, D, H, Hkv, d, M, L;
};
Dims dims(const Model& m, const Workspace& ws) {
  const ModelConfig& c = m.config();
  return {ws.batch(),           ws.seq(),          ws.rows(), c.dim, c.heads, c.kv_heads, config_head_dim(c),
          c.attention.features, c.attention.levels};
}
// The first (L+1)*N*C elements of the coefficient scratch, viewed as [L+1, B, T, C].
Tensor coef_view(const Tensor& scratch, const Dims& s, int64_t C) {
  return Tensor(scratch.data, scratch.dtype, scratch.device, Shape{s.L + 1, s.B, s.T, C}, scratch.name);
}
}  // namespace

void attention_fwd(const Model& m, int layer, const LayerActs& a, Workspace& ws) {
  const ModelConfig& c = m.config();
  const LayerParams& p = m.params.layers[layer];
  const Dims s = dims(m, ws);
  matmul_fwd({a.q, a.u, p.wq, p.bq});
  matmul_fwd({a.k, a.u, p.wk, p.bk});
  matmul_fwd({a.v, a.u, p.wv, p.bv});
  const Tensor q4 = a.q.view({s.B, s.T, s.H, s.d}), k4 = a.k.view({s.B, s.T, s.Hkv, s.d});
  const Tensor v4 = a.v.view({s.B, s.T, s.Hkv, s.d});
  if (c.rope_theta > 0) {
    rope_fwd({q4, q4, c.rope_theta, 0});
    rope_fwd({k4, k4, c.rope_theta, 0});
  }
  if (c.attention.type == "softmax") {
    softmax_attention_fwd({a.o.view({s.B, s.T, s.H, s.d}), a.lse, q4, k4, v4, 1.0 / std::sqrt(double(s.d)),
                           c.attention.causal});
    tensor_copy(a.h, a.x);
    matmul_fwd({a.h, a.o, p.wo, {}, true});
    return;
  }
  const bool causal = c.attention.causal;
  // Gates: one vector of L+1 values per token, shared by heads and by q and k.
  depthwise_conv_fwd({a.c.view({s.B, s.T, s.D}), a.u.view({s.B, s.T, s.D}), p.conv_w, p.conv_b, causal});
  matmul_fwd({a.h1, a.c, p.fc1_w, p.fc1_b});
  activation_fwd({a.a1, a.h1, Activation::Relu});
  matmul_fwd({a.z, a.a1, p.fc2_w, p.fc2_b});
  gate_fwd({a.gamma, a.g, a.z, p.scale});
  const Tensor gamma3 = a.gamma.view({s.B, s.T, s.L + 1});
  // GELU, then the gated causal Haar filter of q and k.
  activation_fwd({a.qh, a.q, Activation::Gelu});
  activation_fwd({a.kh, a.k, Activation::Gelu});
  const Tensor cq = coef_view(ws.coef_scratch, s, s.H * s.d), ck = coef_view(ws.coef_scratch, s, s.Hkv * s.d);
  const int L = int(s.L);
  haar_analysis_fwd({cq, a.qh.view({s.B, s.T, s.H * s.d}), L});
  haar_synthesis_fwd({a.qt.view({s.B, s.T, s.H * s.d}), cq, gamma3, L});
  haar_analysis_fwd({ck, a.kh.view({s.B, s.T, s.Hkv * s.d}), L});
  haar_synthesis_fwd({a.kt.view({s.B, s.T, s.Hkv * s.d}), ck, gamma3, L});
  // Random features and linear attention.
  feature_map_fwd({a.phiq, a.qt.view({s.N, s.H, s.d}), m.buffers.omega_q[layer]});
  feature_map_fwd({a.phik, a.kt.view({s.N, s.Hkv, s.d}), m.buffers.omega_k[layer]});
  linear_attention_fwd({a.o.view({s.B, s.T, s.H, s.d}), a.den, a.phiq.view({s.B, s.T, s.H, s.M}),
                        a.phik.view({s.B, s.T, s.Hkv, s.M}), v4, c.attention.chunk, c.attention.eps, causal});
  // Head LayerNorm over d (weights shared by heads), then the output projection + residual.
  layernorm_fwd({a.on.view({s.N * s.H, s.d}), a.ln_mean, a.ln_rstd, a.o.view({s.N * s.H, s.d}), p.hn_w,
                 p.hn_b, c.attention.head_norm_eps});
  tensor_copy(a.h, a.x);
  matmul_fwd({a.h, a.on, p.wo, {}, true});
}

void attention_bwd(Model& m, int layer, const LayerActs& a, Workspace& ws) {
  const ModelConfig& c = m.config();
  const LayerParams& p = m.params.layers[layer];
  LayerParams& gp = m.grads.layers[layer];
  Workspace::Grads& g = ws.g;
  const Dims s = dims(m, ws);
  const Tensor q4 = a.q.view({s.B, s.T, s.H, s.d}), k4 = a.k.view({s.B, s.T, s.Hkv, s.d});
  const Tensor v4 = a.v.view({s.B, s.T, s.Hkv, s.d});
  const Tensor dq4 = g.dq.view({s.B, s.T, s.H, s.d}), dk4 = g.dk.view({s.B, s.T, s.Hkv, s.d});
  const Tensor dv4 = g.dv.view({s.B, s.T, s.Hkv, s.d});
  if (c.attention.type == "softmax") {
    matmul_bwd({g.do_, gp.wo, {}, g.dres, a.o, p.wo});
    softmax_attention_bwd({dq4, dk4, dv4, g.do_.view({s.B, s.T, s.H, s.d}), a.o.view({s.B, s.T, s.H, s.d}),
                           a.lse, q4, k4, v4, 1.0 / std::sqrt(double(s.d)), c.attention.causal});
  } else {
    const bool causal = c.attention.causal;
    const int L = int(s.L);
    matmul_bwd({g.don, gp.wo, {}, g.dres, a.on, p.wo});
    layernorm_bwd({g.do_.view({s.N * s.H, s.d}), gp.hn_w, gp.hn_b, g.don.view({s.N * s.H, s.d}),
                   a.o.view({s.N * s.H, s.d}), p.hn_w, a.ln_mean, a.ln_rstd});
    linear_attention_bwd({g.dphiq.view({s.B, s.T, s.H, s.M}), g.dphik.view({s.B, s.T, s.Hkv, s.M}), dv4,
                          g.do_.view({s.B, s.T, s.H, s.d}), a.o.view({s.B, s.T, s.H, s.d}), a.den,
                          a.phiq.view({s.B, s.T, s.H, s.M}), a.phik.view({s.B, s.T, s.Hkv, s.M}), v4,
                          c.attention.chunk, c.attention.eps, causal});
    feature_map_bwd({g.dqt.view({s.N, s.H, s.d}), g.dphiq, a.phiq, m.buffers.omega_q[layer]});
    feature_map_bwd({g.dkt.view({s.N, s.Hkv, s.d}), g.dphik, a.phik, m.buffers.omega_k[layer]});
    // Haar: recompute the analysis coefficients (cheap, linear) instead of storing them.
    const Tensor gamma3 = a.gamma.view({s.B, s.T, s.L + 1}), dgamma3 = g.dgamma.view({s.B, s.T, s.L + 1});
    const Tensor cq = coef_view(ws.coef_scratch, s, s.H * s.d), dcq = coef_view(g.dcoef, s, s.H * s.d);
    haar_analysis_fwd({cq, a.qh.view({s.B, s.T, s.H * s.d}), L});
    haar_synthesis_bwd({dcq, dgamma3, g.dqt.view({s.B, s.T, s.H * s.d}), cq, gamma3, L, false});
    haar_analysis_bwd({g.dqh.view({s.B, s.T, s.H * s.d}), dcq, L});
    const Tensor ck = coef_view(ws.coef_scratch, s, s.Hkv * s.d), dck = coef_view(g.dcoef, s, s.Hkv * s.d);
    haar_analysis_fwd({ck, a.kh.view({s.B, s.T, s.Hkv * s.d}), L});
    haar_synthesis_bwd({dck, dgamma3, g.dkt.view({s.B, s.T, s.Hkv * s.d}), ck, gamma3, L, true});
    haar_analysis_bwd({g.dkh.view({s.B, s.T, s.Hkv * s.d}), dck, L});
    activation_bwd({g.dq, g.dqh, a.q, Activation::Gelu});
    activation_bwd({g.dk, g.dkh, a.k, Activation::Gelu});
    // Gate MLP and convolution; the conv's input gradient starts du.
    gate_bwd({g.dz, gp.scale, g.dgamma, a.g, p.scale});
    matmul_bwd({g.da1, gp.fc2_w, gp.fc2_b, g.dz, a.a1, p.fc2_w});
    activation_bwd({g.dh1, g.da1, a.h1, Activation::Relu});
    matmul_bwd({g.dc, gp.fc1_w, gp.fc1_b, g.dh1, a.c, p.fc1_w});
    depthwise_conv_bwd({g.du.view({s.B, s.T, s.D}), gp.conv_w, gp.conv_b, g.dc.view({s.B, s.T, s.D}),
                        a.u.view({s.B, s.T, s.D}), p.conv_w, causal, false});
  }
  if (c.rope_theta > 0) {
    rope_bwd({dq4, dq4, c.rope_theta, 0});
    rope_bwd({dk4, dk4, c.rope_theta, 0});
  }
  const bool have_du = c.attention.type == "wersa";  // softmax: du starts with the q projection
  matmul_bwd({g.du, gp.wq, gp.bq, g.dq, a.u, p.wq, have_du});
  matmul_bwd({g.du, gp.wk, gp.bk, g.dk, a.u, p.wk, true});
  matmul_bwd({g.du, gp.wv, gp.bv, g.dv, a.u, p.wv, true});
}

}  // namespace wersa::detail

// The language model end to end: embedding, blocks (pre-norm attention + SwiGLU), final
// RMSNorm, LM head (tied or not), fused softmax cross-entropy. Forward and backward side by side.
//   h = x + Attn(RMSNorm(x));   y = h + W_down(SiLU(W_gate RMSNorm(h)) * (W_up RMSNorm(h)))
#include "layers.h"
#include "wersa/backend/backend.h"
#include "wersa/ops/cross_entropy.h"
#include "wersa/ops/elementwise.h"
#include "wersa/ops/embedding.h"
#include "wersa/ops/matmul.h"
#include "wersa/ops/rmsnorm.h"
#include "wersa/ops/swiglu.h"

namespace wersa {

namespace {
const Tensor& lm_head(const Model& m) {
  return m.config().tie_embeddings ? m.params.embed : m.params.lm_head;
}
}  // namespace

double model_forward(Model& m, Workspace& ws, int64_t* count) {
  const ModelConfig& c = m.config();
  const int nl = c.layers;
  embedding_fwd({ws.acts[0].x, ws.tokens, m.params.embed});
  for (int i = 0; i < nl; ++i) {
    const LayerActs& a = ws.acts[i];
    const LayerParams& p = m.params.layers[i];
    rmsnorm_fwd({a.u, a.rstd1, a.x, p.attn_norm, c.norm_eps});
    detail::attention_fwd(m, i, a, ws);
    rmsnorm_fwd({a.u2, a.rstd2, a.h, p.ffn_norm, c.norm_eps});
    matmul_fwd({a.gate, a.u2, p.w_gate, {}});
    matmul_fwd({a.up, a.u2, p.w_up, {}});
    swiglu_fwd({a.act, a.gate, a.up});
    const Tensor& next = i + 1 < nl ? ws.acts[i + 1].x : ws.x_out;
    tensor_copy(next, a.h);
    matmul_fwd({next, a.act, p.w_down, {}, true});
  }
  rmsnorm_fwd({ws.xf, ws.rstdf, ws.x_out, m.params.final_norm, c.norm_eps});
  matmul_fwd({ws.logits, ws.xf, lm_head(m), {}});
  cross_entropy_fwd({ws.losses, ws.logits, ws.targets});
  // Sum in a fixed order, in double.
  double sum = 0;
  int64_t n = 0;
  const int32_t* t = ws.targets.ptr<int32_t>();
  for (int64_t r = 0; r < ws.rows(); ++r) {
    if (t[r] < 0) continue;
    sum += m.dtype() == DType::F64 ? ws.losses.ptr<double>()[r] : double(ws.losses.ptr<float>()[r]);
    ++n;
  }
  if (count) *count = n;
  return sum;
}

void model_backward(Model& m, Workspace& ws, double loss_scale) {
  const ModelConfig& c = m.config();
  WERSA_ASSERT(m.trainable() && ws.g.dres.defined(), "backward needs gradients and a backward workspace");
  Workspace::Grads& g = ws.g;
  // The LM head: logits' gradient is computed in place, then flows to xf and the head weight.
  cross_entropy_bwd({ws.logits, ws.logits, ws.targets, loss_scale});
  const Tensor& dhead = c.tie_embeddings ? m.grads.embed : m.grads.lm_head;
  matmul_bwd({g.du, dhead, {}, ws.logits, ws.xf, lm_head(m)});
  rmsnorm_bwd({g.dres, m.grads.final_norm, g.du, ws.x_out, m.params.final_norm, ws.rstdf, false});
  for (int i = c.layers - 1; i >= 0; --i) {
    const LayerActs& a = ws.acts[i];
    const LayerParams& p = m.params.layers[i];
    LayerParams& gp = m.grads.layers[i];
    // FFN branch: dres is the gradient of the block output y = h + ffn(h).
    matmul_bwd({g.dact, gp.w_down, {}, g.dres, a.act, p.w_down});
    swiglu_bwd({g.dgate, g.dup, g.dact, a.gate, a.up});
    matmul_bwd({g.du, gp.w_gate, {}, g.dgate, a.u2, p.w_gate});
    matmul_bwd({g.du, gp.w_up, {}, g.dup, a.u2, p.w_up, true});
    rmsnorm_bwd({g.dres, gp.ffn_norm, g.du, a.h, p.ffn_norm, a.rstd2, true});  // dres becomes dL/dh
    // Attention branch: h = x + attn(RMSNorm(x)).
    detail::attention_bwd(m, i, a, ws);
    rmsnorm_bwd({g.dres, gp.attn_norm, g.du, a.x, p.attn_norm, a.rstd1, true});  // dres becomes dL/dx
  }
  embedding_bwd({m.grads.embed, g.dres, ws.tokens});
}

}  // namespace wersa

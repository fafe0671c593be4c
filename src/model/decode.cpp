// The recurrent decoder: one token through every layer with the ops on one row plus the step
// kernels of the pieces with memory (conv window, Haar rings, linear-attention sums; the KV cache
// for softmax), and the generation loop over a sampler. Same formulas, in the same order, as
// src/model/attention.cpp and src/model/lm.cpp.
#include <cmath>

#include "decode_impl.h"
#include "wersa/backend/backend.h"
#include "wersa/common/timer.h"
#include "wersa/model/sampler.h"
#include "wersa/ops/activation.h"
#include "wersa/ops/conv.h"
#include "wersa/ops/feature_map.h"
#include "wersa/ops/gate.h"
#include "wersa/ops/haar.h"
#include "wersa/ops/layernorm.h"
#include "wersa/ops/linear_attention.h"
#include "wersa/ops/matmul.h"
#include "wersa/ops/rmsnorm.h"
#include "wersa/ops/rope.h"
#include "wersa/ops/softmax_attention.h"
#include "wersa/ops/swiglu.h"

namespace wersa {

namespace {

// WERSA attention of one position: b.u -> b.h = b.x + Attn(b.u).
void wersa_step(const ModelConfig& c, const detail::GenDims& s, detail::DecodeStep& b, const LayerParams& p,
                const Tensor& omega_q, const Tensor& omega_k, LayerState& st, int64_t pos) {
  const int L = int(s.L);
  depthwise_conv_step({b.c1, st.conv, b.u1, p.conv_w, p.conv_b, pos});
  matmul_fwd({b.h1, b.c, p.fc1_w, p.fc1_b});
  activation_fwd({b.a1, b.h1, Activation::Relu});
  matmul_fwd({b.zg, b.a1, p.fc2_w, p.fc2_b});
  gate_fwd({b.gamma, b.g, b.zg, p.scale});
  activation_fwd({b.qh, b.q, Activation::Gelu});
  activation_fwd({b.kh, b.k, Activation::Gelu});
  haar_step({b.qt1, st.haar_q, b.qh1, b.gamma1, L, pos});
  haar_step({b.kt1, st.haar_k, b.kh1, b.gamma1, L, pos});
  feature_map_fwd({b.phiq, b.qtHd, omega_q});
  feature_map_fwd({b.phik, b.ktHd, omega_k});
  linear_attention_step({b.oHd, st.S, st.z, b.phiq, b.phik, b.vHd, c.attention.eps});
  layernorm_fwd({b.onHd, {}, {}, b.oHd, p.hn_w, p.hn_b, c.attention.head_norm_eps});
  tensor_copy(b.h, b.x);
  matmul_fwd({b.h, b.on, p.wo, {}, true});
}

}  // namespace

const Tensor& decode_step(const Model& m, DecodeState& st, int32_t token) {
  detail::check_state(m, st, 1, "decode");
  const ModelConfig& c = m.config();
  const detail::GenDims s(c);
  WERSA_CHECK(token >= 0 && token < s.V, "decode: token id ", token, " is outside the vocabulary [0, ", s.V,
              ")");
  detail::DecodeStep& b = detail::DecodeAccess::step(st);
  const int64_t pos = st.pos();
  tensor_copy(b.x, b.w.embed.rows(token, token + 1));
  for (int i = 0; i < c.layers; ++i) {
    const LayerParams& p = b.w.layers[size_t(i)];
    LayerState& ls = st.layers[size_t(i)];
    rmsnorm_fwd({b.u, {}, b.x, p.attn_norm, c.norm_eps});
    matmul_fwd({b.q, b.u, p.wq, p.bq});
    matmul_fwd({b.k, b.u, p.wk, p.bk});
    matmul_fwd({b.v, b.u, p.wv, p.bv});
    if (c.rope_theta > 0) {
      rope_fwd({b.q4, b.q4, c.rope_theta, pos});
      rope_fwd({b.k4, b.k4, c.rope_theta, pos});
    }
    if (s.wersa) {
      wersa_step(c, s, b, p, b.w.omega_q[size_t(i)], b.w.omega_k[size_t(i)], ls, pos);
    } else {
      tensor_copy(ls.kcache.rows(pos, pos + 1), b.kHd.view({1, s.Hkv, s.d}));
      tensor_copy(ls.vcache.rows(pos, pos + 1), b.vHd.view({1, s.Hkv, s.d}));
      softmax_attention_decode({b.oHd, b.qHd, ls.kcache, ls.vcache, pos + 1, 1.0 / std::sqrt(double(s.d))});
      tensor_copy(b.h, b.x);
      matmul_fwd({b.h, b.o, p.wo, {}, true});
    }
    rmsnorm_fwd({b.u2, {}, b.h, p.ffn_norm, c.norm_eps});
    matmul_fwd({b.gate, b.u2, p.w_gate, {}});
    matmul_fwd({b.up, b.u2, p.w_up, {}});
    swiglu_fwd({b.act, b.gate, b.up});
    tensor_copy(b.x, b.h);
    matmul_fwd({b.x, b.act, p.w_down, {}, true});
  }
  rmsnorm_fwd({b.xf, {}, b.x, b.w.final_norm, c.norm_eps});
  matmul_fwd({b.logits, b.xf, b.w.head, {}});
  detail::DecodeAccess::tokens(st).push_back(token);
  return st.logits();
}

GenerateStats generate(const Model& m, DecodeState& s, Sampler& sampler, const std::vector<int32_t>& prompt,
                       const GenerateOptions& opt, const std::function<void(int32_t)>& on_token) {
  GenerateStats r;
  if (!prompt.empty()) {
    const Timer t;
    prefill(m, s, prompt);
    r.prompt_ms = t.ms();
    r.prompt_tokens = int64_t(prompt.size());
  }
  WERSA_CHECK(s.pos() > 0, "nothing to continue: give a prompt (or load a state that holds tokens)");
  const int32_t banned = opt.ignore_eos ? opt.eos_id : -1;
  for (int64_t i = 0; opt.n_predict < 0 || i < opt.n_predict; ++i) {
    if (s.room() < 1) {
      r.context_full = true;
      break;
    }
    const Timer t;
    const int32_t tok = sampler.sample(s.logits(), s.tokens(), banned);
    r.generate_ms += t.ms();
    if (on_token) on_token(tok);
    const Timer t2;
    decode_step(m, s, tok);
    r.generate_ms += t2.ms();
    ++r.generated;
    if (!opt.ignore_eos && opt.eos_id >= 0 && tok == opt.eos_id) {
      r.hit_eos = true;
      break;
    }
  }
  return r;
}

}  // namespace wersa

// Chunked parallel prefill: the training forward's ops over a chunk of rows, continuing from the
// decode state and advancing it (see include/wersa/model/generate.h). Per layer, for the rows of
// positions pos0 .. pos0 + n - 1:
//   conv:   the window's K-1 rows are placed before the chunk's u, the parallel causal conv runs
//           over K-1+n rows, the chunk's rows of its output are kept; the window takes the last
//           K-1 rows of u.
//   Haar:   the analysis reads and advances the rings (haar_analysis_fwd with a state).
//   linear attention: starts from (S, z), then (S, z) += the chunk's sums.
//   softmax: the chunk's k, v go to the KV cache; queries attend over the cache rows before them.
//   RoPE at pos0.
#include <cmath>

#include "decode_impl.h"
#include "wersa/backend/backend.h"
#include "wersa/ops/activation.h"
#include "wersa/ops/conv.h"
#include "wersa/ops/embedding.h"
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

// The first `numel` elements of t viewed as `s` (chunk-sized views of full-capacity buffers).
Tensor head_view(const Tensor& t, Shape s) {
  WERSA_ASSERT(s.numel() <= t.numel(), "view ", s.str(), " of ", t.describe());
  return Tensor(t.data, t.dtype, t.device, s, t.name);
}

struct Chunk {
  const Model& m;
  const ModelConfig& c;
  const detail::GenDims& s;
  const detail::AnonModel& w;
  detail::DecodePrefill& b;
  int64_t n, pos0;
};

// u (rows W.. of uext) -> h = x + Attn(u) for WERSA.
void wersa_chunk(const Chunk& k, const LayerParams& p, LayerState& st, int layer, const Tensor& u,
                 const Tensor& q, const Tensor& kk, const Tensor& v, const Tensor& x, const Tensor& h) {
  const detail::GenDims& s = k.s;
  detail::DecodePrefill& b = k.b;
  const int64_t n = k.n, W = s.W, pos0 = k.pos0;
  const int L = int(s.L);
  // Gate convolution over [window rows, chunk rows]; rows of positions < 0 are zero.
  for (int64_t j = 0; j < W; ++j) {
    const int64_t pp = pos0 - W + j;
    const Tensor dst = b.uext.rows(j, j + 1);
    if (pp < 0)
      device_memset0(dst);
    else
      tensor_copy(dst, st.conv.rows(pp % W, pp % W + 1));
  }
  const Tensor cext = b.cext.rows(0, W + n);
  depthwise_conv_fwd(
      {cext.view({1, W + n, s.D}), b.uext.rows(0, W + n).view({1, W + n, s.D}), p.conv_w, p.conv_b, true});
  for (int64_t pp = std::max(pos0, pos0 + n - W); pp < pos0 + n; ++pp)
    tensor_copy(st.conv.rows(pp % W, pp % W + 1), u.rows(pp - pos0, pp - pos0 + 1));
  const Tensor cc = cext.rows(W, W + n);
  const Tensor h1 = b.h1.rows(0, n), a1 = b.a1.rows(0, n), zg = b.zg.rows(0, n), g = b.g.rows(0, n);
  const Tensor gamma = b.gamma.rows(0, n);
  matmul_fwd({h1, cc, p.fc1_w, p.fc1_b});
  activation_fwd({a1, h1, Activation::Relu});
  matmul_fwd({zg, a1, p.fc2_w, p.fc2_b});
  gate_fwd({gamma, g, zg, p.scale});
  const Tensor gamma3 = gamma.view({1, n, s.L1});
  const int64_t Cq = s.H * s.d, Ck = s.Hkv * s.d;
  const Tensor qh = b.qh.rows(0, n), kh = b.kh.rows(0, n), qt = b.qt.rows(0, n), kt = b.kt.rows(0, n);
  activation_fwd({qh, q, Activation::Gelu});
  activation_fwd({kh, kk, Activation::Gelu});
  const Tensor cq = head_view(b.coef, {s.L1, 1, n, Cq}), ck = head_view(b.coef, {s.L1, 1, n, Ck});
  haar_analysis_fwd({cq, qh.view({1, n, Cq}), L, st.haar_q.view({1, s.P, Cq}), pos0});
  haar_synthesis_fwd({qt.view({1, n, Cq}), cq, gamma3, L});
  haar_analysis_fwd({ck, kh.view({1, n, Ck}), L, st.haar_k.view({1, s.P, Ck}), pos0});
  haar_synthesis_fwd({kt.view({1, n, Ck}), ck, gamma3, L});
  const Tensor phiq = b.phiq.rows(0, n), phik = b.phik.rows(0, n);
  feature_map_fwd({phiq, qt.view({n, s.H, s.d}), k.w.omega_q[size_t(layer)]});
  feature_map_fwd({phik, kt.view({n, s.Hkv, s.d}), k.w.omega_k[size_t(layer)]});
  const Tensor o = b.o.rows(0, n), on = b.on.rows(0, n);
  const Tensor phik4 = phik.view({1, n, s.Hkv, s.M}), v4 = v.view({1, n, s.Hkv, s.d});
  const Tensor S4 = st.S.view({1, s.Hkv, s.M, s.d}), z3 = st.z.view({1, s.Hkv, s.M});
  linear_attention_fwd({o.view({1, n, s.H, s.d}), head_view(b.den, {1, n, s.H}), phiq.view({1, n, s.H, s.M}),
                        phik4, v4, k.c.attention.chunk, k.c.attention.eps, true, S4, z3});
  linear_attention_state({S4, z3, phik4, v4, true});
  layernorm_fwd(
      {on.view({n * s.H, s.d}), {}, {}, o.view({n * s.H, s.d}), p.hn_w, p.hn_b, k.c.attention.head_norm_eps});
  tensor_copy(h, x);
  matmul_fwd({h, on, p.wo, {}, true});
}

// One chunk of n tokens at positions pos0..; logits of every row into `logits` [n, V] when
// defined, else of the last row into the state's logits.
void run_chunk(const Chunk& k, DecodeState& st, const Tensor& logits) {
  const ModelConfig& c = k.c;
  const detail::GenDims& s = k.s;
  detail::DecodePrefill& b = k.b;
  const int64_t n = k.n, pos0 = k.pos0, W = s.wersa ? s.W : 0;
  const Tensor x = b.x.rows(0, n), h = b.h.rows(0, n), u = b.uext.rows(W, W + n);
  const Tensor q = b.q.rows(0, n), kk = b.k.rows(0, n), v = b.v.rows(0, n);
  const Tensor u2 = b.u2.rows(0, n), gate = b.gate.rows(0, n), up = b.up.rows(0, n), act = b.act.rows(0, n);
  embedding_fwd({x, b.tokens.rows(0, n), k.w.embed});
  for (int i = 0; i < c.layers; ++i) {
    const LayerParams& p = k.w.layers[size_t(i)];
    LayerState& ls = st.layers[size_t(i)];
    rmsnorm_fwd({u, {}, x, p.attn_norm, c.norm_eps});
    if (s.wersa) {
      matmul_fwd({q, u, p.wq, p.bq});
      matmul_fwd({kk, u, p.wk, p.bk});
      matmul_fwd({v, u, p.wv, p.bv});
      if (c.rope_theta > 0) {
        rope_fwd({q.view({1, n, s.H, s.d}), q.view({1, n, s.H, s.d}), c.rope_theta, pos0});
        rope_fwd({kk.view({1, n, s.Hkv, s.d}), kk.view({1, n, s.Hkv, s.d}), c.rope_theta, pos0});
      }
      wersa_chunk(k, p, ls, i, u, q, kk, v, x, h);
    } else {
      // k and v straight into the cache rows of the chunk.
      const Tensor kc = ls.kcache.rows(pos0, pos0 + n), vc = ls.vcache.rows(pos0, pos0 + n);
      matmul_fwd({q, u, p.wq, p.bq});
      matmul_fwd({kc.view({n, s.Hkv * s.d}), u, p.wk, p.bk});
      matmul_fwd({vc.view({n, s.Hkv * s.d}), u, p.wv, p.bv});
      if (c.rope_theta > 0) {
        rope_fwd({q.view({1, n, s.H, s.d}), q.view({1, n, s.H, s.d}), c.rope_theta, pos0});
        rope_fwd({kc.view({1, n, s.Hkv, s.d}), kc.view({1, n, s.Hkv, s.d}), c.rope_theta, pos0});
      }
      const Tensor o = b.o.rows(0, n);
      softmax_attention_prefill({o.view({n, s.H, s.d}), q.view({n, s.H, s.d}), ls.kcache, ls.vcache, pos0,
                                 1.0 / std::sqrt(double(s.d))});
      tensor_copy(h, x);
      matmul_fwd({h, o, p.wo, {}, true});
    }
    rmsnorm_fwd({u2, {}, h, p.ffn_norm, c.norm_eps});
    matmul_fwd({gate, u2, p.w_gate, {}});
    matmul_fwd({up, u2, p.w_up, {}});
    swiglu_fwd({act, gate, up});
    tensor_copy(x, h);
    matmul_fwd({x, act, p.w_down, {}, true});
  }
  if (logits.defined()) {
    const Tensor xf = b.xf.rows(0, n);
    rmsnorm_fwd({xf, {}, x, k.w.final_norm, c.norm_eps});
    matmul_fwd({logits, xf, k.w.head, {}});
  } else {
    const Tensor xf = b.xf.rows(0, 1);
    rmsnorm_fwd({xf, {}, x.rows(n - 1, n), k.w.final_norm, c.norm_eps});
    matmul_fwd({detail::DecodeAccess::step(st).logits, xf, k.w.head, {}});
  }
}

}  // namespace

const Tensor& prefill(const Model& m, DecodeState& st, const std::vector<int32_t>& tokens,
                      const Tensor& all_logits) {
  const int64_t n = int64_t(tokens.size());
  detail::check_state(m, st, n, "prefill");
  if (n == 0) return st.logits();
  const ModelConfig& c = m.config();
  const detail::GenDims s(c);
  if (all_logits.defined()) {
    check_shape("prefill", all_logits, Shape{n, s.V});
    check_dtype("prefill", all_logits, m.dtype());
  }
  for (int64_t i = 0; i < n; ++i)
    WERSA_CHECK(tokens[size_t(i)] >= 0 && tokens[size_t(i)] < s.V, "prefill: token ", i,
                " of the prompt has id ", tokens[size_t(i)], ", outside the vocabulary [0, ", s.V, ")");
  detail::DecodePrefill& b = detail::DecodeAccess::prefill(st);
  const detail::AnonModel& w = detail::DecodeAccess::step(st).w;
  std::vector<int32_t>& seen = detail::DecodeAccess::tokens(st);
  for (int64_t c0 = 0; c0 < n; c0 += b.rows) {
    const int64_t rows = std::min(b.rows, n - c0);
    std::copy(tokens.begin() + c0, tokens.begin() + c0 + rows, b.tokens.ptr<int32_t>());
    const bool last = c0 + rows == n;
    const Chunk k{m, c, s, w, b, rows, st.pos()};
    run_chunk(k, st, all_logits.defined() ? all_logits.rows(c0, c0 + rows) : Tensor());
    seen.insert(seen.end(), tokens.begin() + c0, tokens.begin() + c0 + rows);
    if (last && all_logits.defined()) tensor_copy(st.logits(), all_logits.rows(n - 1, n).view({s.V}));
  }
  return st.logits();
}

}  // namespace wersa

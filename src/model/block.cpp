// The block, forward and backward side by side: THE place that lists the op sequence of a block
// (every caller runs it: training, evaluation, chunked prefill, decoding). Qwen-like, pre-norm:
//   h = x + Attn(RMSNorm(x)) Wo,   Attn = the attention kind's map of (u, q, k, v)
//   y = h + W_down( SiLU(W_gate RMSNorm(h)) * (W_up RMSNorm(h)) )
// with q = u Wq + bq, k = u Wk + bk, v = u Wv + bv (RoPE on q, k at the rows' positions). Then the
// trunk (embedding, blocks, final RMSNorm) and the LM head (tied or untied projection, fused
// softmax cross-entropy, the loss reduction).
#include "block.h"

#include <algorithm>

#include "attention.h"
#include "wersa/ops/cross_entropy.h"
#include "wersa/ops/elementwise.h"
#include "wersa/ops/embedding.h"
#include "wersa/ops/lanes.h"
#include "wersa/ops/matmul.h"
#include "wersa/ops/pool.h"
#include "wersa/ops/rmsnorm.h"
#include "wersa/ops/rope.h"
#include "wersa/ops/swiglu.h"

namespace wersa::detail {
namespace {

// The FFN half of a block is row-local: a long pass runs it in tiles of kRowTile rows, so each
// tile's intermediates (u2, gate_up, act and their gradients, about 28 MB for 2048 rows of
// bench-cpu.json) are still in cache for the next op instead of crossing memory between ops. A
// row's forward values do not depend on the tiling (the GEMMs' reductions run over the columns);
// the weight gradients accumulate tile by tile.
constexpr int64_t kRowTile = 2048;
template <class F>
void for_row_tiles(int64_t N, F f) {
  if (N < 2 * kRowTile) return f(int64_t(0), N);
  for (int64_t r0 = 0; r0 < N; r0 += kRowTile) f(r0, std::min(N, r0 + kRowTile));
}

// [W_gate; W_up] [2 F, D]: the two matrices as one (the parameter plan places w_up right after
// w_gate, ParamDecl::follows), so that one GEMM computes both projections of a row and one their
// gradients.
Tensor gate_up_weight(const LayerParams& p) {
  const Tensor& g = p.w_gate;
  WERSA_ASSERT(p.w_up.data == static_cast<const char*>(g.data) + g.bytes() && p.w_up.dtype == g.dtype &&
                   p.w_up.shape == g.shape,
               "ffn.w_up does not follow ffn.w_gate: ", g, ", ", p.w_up);
  return Tensor(g.data, g.dtype, g.device, Shape{2 * g.dim(0), g.dim(1)}, "ffn.w_gate_up");
}

AttnCall attn_call(const Model& m, const Dims& s, int layer, const LayerActs& a, const Pass& pass,
                   const Slots* bw) {
  Slots* st = pass.state ? &(*pass.state)[size_t(layer)] : nullptr;
  Slots* g = m.trainable() ? const_cast<Slots*>(&m.grads.layers[size_t(layer)].attn) : nullptr;
  AttnCall call{m.config(), s,
                pass.B,     pass.T,
                pass.pos0,  m.params.layers[size_t(layer)].attn,
                g,          m.buffers.layers[size_t(layer)],
                a.attn,     bw,
                st,         a.u,
                a.q,        a.k,
                a.v,        a.o};
  // Only bidirectional attention can read the padding (right padding comes after every real row).
  if (!m.config().attention.causal) call.lengths = pass.lengths;
  call.w = &m.gemm_weights().layers[size_t(layer)].attn;
  call.bf16 = m.bf16_gemms();
  return call;
}

// RoPE on q and k at the pass's positions, then the attention kind: (u, q, k, v) -> o.
void attn_fwd(Ctx& ctx, const Model& m, const Dims& s, int layer, const LayerActs& a, const Pass& pass) {
  const ModelConfig& c = m.config();
  if (c.rope_theta > 0) {
    const Tensor q4 = a.q.view({pass.B, pass.T, s.H, s.d}), k4 = a.k.view({pass.B, pass.T, s.Hkv, s.d});
    rope_fwd(ctx, {q4, q4, c.rope_theta, pass.pos0});
    rope_fwd(ctx, {k4, k4, c.rope_theta, pass.pos0});
  }
  m.attention().fwd(ctx, attn_call(m, s, layer, a, pass, nullptr));
}

// Rows [r0, r1) of what the attention reads and writes (a segment of a batched pass).
LayerActs segment_acts(const LayerActs& a, int64_t r0, int64_t r1) {
  auto r = [&](const Tensor& t) { return t.defined() ? t.rows(r0, r1) : t; };
  LayerActs o;
  o.u = r(a.u), o.q = r(a.q), o.k = r(a.k), o.v = r(a.v), o.o = r(a.o);
  for (int i = 0; i < Slots::kMax; ++i) o.attn[i] = r(a.attn[i]);
  return o;
}

// RoPE and the attention of one segment of a batched pass, with its state at its position.
void segment_attn_fwd(Ctx& ctx, const Model& m, const Dims& s, int layer, const LayerActs& a,
                      const Segment& sg) {
  Pass one;
  one.T = sg.T, one.pos0 = sg.pos0, one.state = sg.state;
  attn_fwd(ctx, m, s, layer, segment_acts(a, sg.r0, sg.r0 + sg.T), one);
}

// x = a.x -> y (y may be a.x itself: it is written last). y undefined: the activations only (the
// recomputation before a backward, which needs no output).
void block_fwd(Ctx& ctx, const Model& m, const Dims& s, int layer, const LayerActs& a, const Tensor& y,
               const Pass& pass) {
  const ModelConfig& c = m.config();
  const LayerParams& p = m.params.layers[size_t(layer)];
  const LayerParams& w = m.gemm_weights().layers[size_t(layer)];  // the bf16 shadow in mixed precision
  const bool bf = m.bf16_gemms();
  rmsnorm_fwd(ctx, {a.u, a.rstd1, a.x, p.attn_norm, c.norm_eps});
  matmul_fwd(ctx, {a.q, a.u, w.wq, p.bq, false, bf});
  matmul_fwd(ctx, {a.k, a.u, w.wk, p.bk, false, bf});
  matmul_fwd(ctx, {a.v, a.u, w.wv, p.bv, false, bf});
  if (pass.segments) {
    static const std::vector<Ctx*> none;
    auto segment = [&](int64_t i, Ctx& c) {
      segment_attn_fwd(c, m, s, layer, a, (*pass.segments)[size_t(i)]);
    };
    run_lanes(ctx, pass.lanes ? *pass.lanes : none, int64_t(pass.segments->size()), segment);
  } else {
    attn_fwd(ctx, m, s, layer, a, pass);
  }
  copy_fwd(ctx, {a.h, a.x});
  matmul_fwd(ctx, {a.h, a.o, w.wo, {}, true, bf});
  for_row_tiles(pass.N(), [&](int64_t r0, int64_t r1) {
    const Tensor rstd2 = a.rstd2.defined() ? a.rstd2.rows(r0, r1) : Tensor();
    const Tensor h = a.h.rows(r0, r1), u2 = a.u2.rows(r0, r1), act = a.act.rows(r0, r1);
    const Tensor gate_up = a.gate_up.rows(r0, r1);
    rmsnorm_fwd(ctx, {u2, rstd2, h, p.ffn_norm, c.norm_eps});
    matmul_fwd(ctx, {gate_up, u2, gate_up_weight(w), {}, false, bf});
    swiglu_fwd(ctx, {act, {}, {}, gate_up});
    if (!y.defined()) return;
    copy_fwd(ctx, {y.rows(r0, r1), h});
    matmul_fwd(ctx, {y.rows(r0, r1), act, w.w_down, {}, true, bf});
  });
}

// g.dres = dL/dy on entry, dL/dx on return; parameter gradients accumulate.
void block_bwd(Ctx& ctx, const Model& m, const Dims& s, int layer, const LayerActs& a, const BlockGrads& g,
               const Pass& pass) {
  const ModelConfig& c = m.config();
  const LayerParams& p = m.params.layers[size_t(layer)];
  const LayerParams& gp = m.grads.layers[size_t(layer)];
  const LayerParams& w = m.gemm_weights().layers[size_t(layer)];
  const bool bf = m.bf16_gemms();
  // FFN branch: dres is the gradient of the block output y = h + ffn(h).
  for_row_tiles(pass.N(), [&](int64_t r0, int64_t r1) {
    const Tensor dres = g.dres.rows(r0, r1), dact = g.dact.rows(r0, r1), du = g.du.rows(r0, r1);
    const Tensor dgate_up = g.dgate_up.rows(r0, r1), u2 = a.u2.rows(r0, r1);
    matmul_bwd(ctx, {dact, gp.w_down, {}, dres, a.act.rows(r0, r1), w.w_down, false, bf});
    SwigluBwd sw;
    sw.dy = dact, sw.dgate_up = dgate_up, sw.gate_up = a.gate_up.rows(r0, r1);
    swiglu_bwd(ctx, sw);
    matmul_bwd(ctx, {du, gate_up_weight(gp), {}, dgate_up, u2, gate_up_weight(w), false, bf});
    // dres becomes dL/dh
    rmsnorm_bwd(ctx, {dres, gp.ffn_norm, du, a.h.rows(r0, r1), p.ffn_norm, a.rstd2.rows(r0, r1), true});
  });
  // Attention branch: h = x + Attn(RMSNorm(x)) Wo.
  matmul_bwd(ctx, {g.dout, gp.wo, {}, g.dres, a.o, w.wo, false, bf});
  AttnCall call = attn_call(m, s, layer, a, pass, &g.attn);
  call.du = g.du, call.dq = g.dq, call.dk = g.dk, call.dv = g.dv, call.dout = g.dout;
  m.attention().bwd(ctx, call);
  if (c.rope_theta > 0) {
    const Tensor dq4 = g.dq.view({pass.B, pass.T, s.H, s.d}), dk4 = g.dk.view({pass.B, pass.T, s.Hkv, s.d});
    rope_bwd(ctx, {dq4, dq4, c.rope_theta, pass.pos0});
    rope_bwd(ctx, {dk4, dk4, c.rope_theta, pass.pos0});
  }
  // du holds the attention kind's own contribution when it reads u; the projections add theirs.
  matmul_bwd(ctx, {g.du, gp.wq, gp.bq, g.dq, a.u, w.wq, m.attention().reads_u(), bf});
  matmul_bwd(ctx, {g.du, gp.wk, gp.bk, g.dk, a.u, w.wk, true, bf});
  matmul_bwd(ctx, {g.du, gp.wv, gp.bv, g.dv, a.u, w.wv, true, bf});
  rmsnorm_bwd(ctx, {g.dres, gp.attn_norm, g.du, a.x, p.attn_norm, a.rstd1, true});  // dres becomes dL/dx
}

// The LM head's weight as the GEMMs read it (the bf16 shadow in mixed precision).
const Tensor& head_weight(const Model& m) {
  const ModelParams& w = m.gemm_weights();
  return m.config().tie_embeddings ? w.embed : w.lm_head;
}

}  // namespace

namespace {
// Layer i's activations over the first N rows: its own set (a backward), or the shared set, with
// the layer's stored input as x when the backward recomputes.
LayerActs layer_acts(const Workspace& ws, int64_t L, int i, int64_t N) {
  LayerActs a = ws.acts[ws.acts.size() == size_t(L) ? size_t(i) : 0].rows(N);
  if (!ws.block_inputs.empty()) a.x = ws.block_inputs[size_t(i)].rows(0, N);
  return a;
}
}  // namespace

void plan_segment_attention(Ctx& lane, const Model& m, Workspace& ws, const Segment& sg) {
  WERSA_ASSERT(lane.planning(), "plan_segment_attention outside Ctx::plan");
  const int64_t L = m.config().layers, N = sg.r0 + sg.T;
  const Dims s(m.config());
  for (int i = 0; i < L; ++i) segment_attn_fwd(lane, m, s, i, layer_acts(ws, L, i, N), sg);
}

void trunk_fwd(Ctx& ctx, const Model& m, Workspace& ws, const Pass& pass) {
  const int64_t N = pass.N(), L = m.config().layers;
  WERSA_ASSERT(N >= 1 && N <= ws.rows(), "a pass of ", N, " rows over a workspace of ", ws.rows());
  const Dims s(m.config());
  embedding_fwd(ctx, {layer_acts(ws, L, 0, N).x, ws.tokens.rows(0, N), m.params.embed});
  for (int i = 0; i < L; ++i) {
    const Tensor y = i + 1 < L ? layer_acts(ws, L, i + 1, N).x : ws.x_out.rows(0, N);
    block_fwd(ctx, m, s, i, layer_acts(ws, L, i, N), y, pass);
  }
  const Tensor rstdf = ws.rstdf.defined() ? ws.rstdf.rows(0, N) : Tensor();
  rmsnorm_fwd(ctx, {ws.xf.rows(0, N), rstdf, ws.x_out.rows(0, N), m.params.final_norm, m.config().norm_eps});
}

void trunk_bwd(Ctx& ctx, const Model& m, Workspace& ws, const Pass& pass) {
  const int64_t N = pass.N(), L = m.config().layers;
  const bool recompute = !ws.block_inputs.empty();
  WERSA_ASSERT(m.trainable() && ws.spec().backward && (recompute || ws.acts.size() == size_t(L)),
               "backward needs gradients and a workspace planned for it");
  const Dims s(m.config());
  const BlockGrads g = ws.g.rows(N);
  rmsnorm_bwd(ctx, {g.dres, m.grads.final_norm, g.du, ws.x_out.rows(0, N), m.params.final_norm,
                    ws.rstdf.rows(0, N), false});
  for (int i = int(L) - 1; i >= 0; --i) {
    const LayerActs a = layer_acts(ws, L, i, N);
    // The shared set still holds the last block's activations from the forward; every other
    // block's are recomputed from its input (the same ops on the same inputs: the same bits).
    if (recompute && i + 1 < L) block_fwd(ctx, m, s, i, a, Tensor(), pass);
    block_bwd(ctx, m, s, i, a, g, pass);
  }
  embedding_bwd(ctx, {m.grads.embed, g.dres, ws.tokens.rows(0, N)});
}

int64_t head_tile_rows(const Model& m, int64_t N, int64_t requested, size_t act_bytes) {
  WERSA_CHECK(requested >= 0, "head tile rows must be >= 0 (0: automatic), got ", requested);
  if (requested > 0) return std::min(requested, N);
  const int64_t V = std::max<int64_t>(1, m.config().vocab_size);
  if (m.device() != Device::CPU)  // 2^26 logits on a GPU (wide GEMMs)
    return std::min(N, std::max<int64_t>(64, (int64_t(1) << 26) / V));
  // On a CPU, 2^20 to 2^22 logits (4 to 16 MiB of f32, 128 to 512 rows at V = 8192): within
  // that, the largest power of two of rows whose tile is at most 1/32 of the activations planned
  // before it, so the tile never adds more than about 3% to a run's activation memory beyond the
  // floor (with recomputation at a few thousand tokens it stays at the floor). Wider tiles give
  // the head's three GEMMs longer inner dimensions, which BLAS runs faster, up to about 512 rows
  // (docs/performance.md). At least 64 rows.
  const int64_t lo = std::max<int64_t>(64, (int64_t(1) << 20) / V), hi = std::max(lo, (int64_t(1) << 22) / V);
  const int64_t row_bytes = V * int64_t(dtype_size(m.dtype()));
  int64_t rows = lo;
  while (rows * 2 <= hi && rows * 2 * row_bytes <= int64_t(act_bytes / 32)) rows *= 2;
  return std::min(N, rows);
}

// The head in tiles of R = ws.head_rows() rows (one tile of all rows with spec.keep_logits): for
// the rows of each tile
//   logits = xf W^T;  losses = CE(logits)
// and in a workspace for a backward, which keeps no logits of all rows, then
//   G = softmax(logits) - onehot(targets)  (in place);  du = G W  (the rows of ws.g.du, free
//   during a forward);  dhead += G^T xf
// so that lm_head_bwd only scales du and adds scale * dhead to the head weight's gradient (the
// derivative of scale * sum of losses is linear in G). The losses are those of one GEMM over all
// rows; the gradients differ from it only by the order of dhead's row sums and where the scale
// rounds.
void lm_head_fwd(Ctx& ctx, const Model& m, Workspace& ws, int64_t N, const Tensor& stats) {
  WERSA_ASSERT(N <= ws.rows(), "head over more rows than planned");
  const bool all = ws.logits.dim(0) >= N, backward = ws.dhead.defined();
  if (backward && !ctx.planning()) tensor_zero(ctx, ws.dhead);  // no memory exists while a dry run plans
  for (int64_t r0 = 0; r0 < N; r0 += ws.head_rows()) {
    const int64_t r1 = std::min(N, r0 + ws.head_rows());
    const Tensor logits = all ? ws.logits.rows(r0, r1) : ws.logits.rows(0, r1 - r0);
    const Tensor xf = ws.xf.rows(r0, r1), t = ws.targets.rows(r0, r1);
    matmul_fwd(ctx, {logits, xf, head_weight(m), {}, false, m.bf16_gemms()});
    if (!backward) {
      cross_entropy_fwd(ctx, {ws.losses.rows(r0, r1), logits, t});
      continue;
    }
    CrossEntropyBwd ce{logits, logits, t, 1.0};
    ce.losses = ws.losses.rows(r0, r1);  // the forward's losses in the same pass
    cross_entropy_bwd(ctx, ce);
    matmul_bwd(ctx, {ws.g.du.rows(r0, r1), ws.dhead, {}, logits, xf, head_weight(m), false, m.bf16_gemms()});
  }
  loss_sum_fwd(ctx, {stats, ws.losses.rows(0, N), ws.targets.rows(0, N)});
}

void lm_head_bwd(Ctx& ctx, const Model& m, Workspace& ws, int64_t N, double scale) {
  // The forward left dL/d xf and the head weight's gradient for a scale of 1 (see lm_head_fwd).
  WERSA_ASSERT(ws.dhead.defined(), "a backward of the LM head needs a workspace planned for it");
  const Tensor& dhead = m.config().tie_embeddings ? m.grads.embed : m.grads.lm_head;
  scale_inplace(ctx, {ws.g.du.rows(0, N), scale});
  axpy(ctx, {dhead, ws.dhead, scale});
}

namespace {
PoolKind pool_kind(const Model& m) {
  return m.config().task.pooling == "last" ? PoolKind::Last : PoolKind::Mean;
}
}  // namespace

void class_head_fwd(Ctx& ctx, const Model& m, Workspace& ws, int64_t B, int64_t T, const Tensor& stats) {
  const int64_t D = m.config().dim;
  const Tensor pooled = ws.pooled.rows(0, B), logits = ws.logits.rows(0, B), losses = ws.losses.rows(0, B);
  const Tensor lengths = ws.lengths.rows(0, B), labels = ws.labels.rows(0, B);
  pool_fwd(ctx, {pooled, ws.xf.rows(0, B * T).view({B, T, D}), lengths, pool_kind(m)});
  matmul_fwd(ctx, {logits, pooled, m.gemm_weights().cls_weight, m.params.cls_bias, false, m.bf16_gemms()});
  cross_entropy_fwd(ctx, {losses, logits, labels});
  loss_sum_fwd(ctx, {stats, losses, labels, ws.class_weights});
}

void class_head_bwd(Ctx& ctx, const Model& m, Workspace& ws, int64_t B, int64_t T, double scale) {
  const int64_t D = m.config().dim;
  const Tensor logits = ws.logits.rows(0, B), labels = ws.labels.rows(0, B);
  const Tensor pooled = ws.pooled.rows(0, B), dpooled = ws.dpooled.rows(0, B);
  cross_entropy_bwd(ctx, {logits, logits, labels, scale, ws.class_weights});
  matmul_bwd(ctx, {dpooled, m.grads.cls_weight, m.grads.cls_bias, logits, pooled, m.gemm_weights().cls_weight,
                   false, m.bf16_gemms()});
  pool_bwd(ctx, {ws.g.du.rows(0, B * T).view({B, T, D}), dpooled, ws.lengths.rows(0, B), pool_kind(m)});
}

void lm_head_logits(Ctx& ctx, const Model& m, const Tensor& xf, const Tensor& logits) {
  matmul_fwd(ctx, {logits, xf, head_weight(m), {}, false, m.bf16_gemms()});
}

}  // namespace wersa::detail

// Internal to the model: the trunk and the LM head, the functions every caller runs (training,
// evaluation, chunked prefill, decoding). A Pass says which rows of a Workspace run: B sequences
// of T positions (rows N = B T), each continuing its generation state at position pos0 when a
// state is given; a classifier pass adds each sequence's length (its documents are padded to T).
#pragma once
#include <vector>

#include "wersa/model/model.h"

namespace wersa::detail {

// Batched decoding (DecodeBatch): one sequence's rows [r0, r0 + T) of a pass over several
// sequences, continuing its own state at its own position.
struct Segment {
  int64_t r0 = 0, T = 1, pos0 = 0;
  std::vector<Slots>* state = nullptr;
};

struct Pass {
  int64_t B = 1, T = 1;
  int64_t pos0 = 0;                     // position of each sequence's first row
  std::vector<Slots>* state = nullptr;  // per layer: the attention kind's generation state
  Tensor lengths{};  // classifier: [B] i32 device lengths (ws.lengths); undefined for the LM
  // When set (with B = 1, T = the rows of all segments, no state): the row-local ops (norms,
  // projections, FFN) run over all rows at once, RoPE and the attention once per segment with its
  // state and position.
  const std::vector<Segment>* segments = nullptr;
  // With segments: the contexts of the other CPU threads, which run segments beside the caller's
  // (ops/lanes.h; each planned by plan_segment_attention); null: the segments one after the other.
  const std::vector<Ctx*>* lanes = nullptr;
  int64_t N() const { return B * T; }
};

// Plans `lane` (inside lane.plan) for what run_lanes hands it in a pass with segments: RoPE and
// the attention of one segment like sg, in every layer of a workspace planned for the pass.
void plan_segment_attention(Ctx& lane, const Model& m, Workspace& ws, const Segment& sg);

// Embedding, every block, final RMSNorm: ws.tokens (first N rows) -> ws.xf.
void trunk_fwd(Ctx& ctx, const Model& m, Workspace& ws, const Pass& pass);
// From ws.g.du = dL/d xf: every parameter gradient of the trunk (accumulated).
void trunk_bwd(Ctx& ctx, const Model& m, Workspace& ws, const Pass& pass);

// Rows of one LM head tile for a workspace of N rows whose other activations take act_bytes
// (requested > 0: that, at most N).
int64_t head_tile_rows(const Model& m, int64_t N, int64_t requested, size_t act_bytes);
// LM head over the first N rows, tile by tile: per-token losses, [sum, count] into stats; the
// logits of all rows only with spec.keep_logits; in a workspace planned for a backward also the
// gradients of a scale of 1 (ws.g.du, ws.dhead).
void lm_head_fwd(Ctx& ctx, const Model& m, Workspace& ws, int64_t N, const Tensor& stats);
// Backward of (scale * sum of losses), after lm_head_fwd on the same rows: head gradient
// (accumulated), ws.g.du = dL/d xf.
void lm_head_bwd(Ctx& ctx, const Model& m, Workspace& ws, int64_t N, double scale);
// Classifier head over the first B sequences of T rows: pooling of the real rows (ws.lengths) into
// ws.pooled, class logits, per-document losses, [sum, count] into stats.
void class_head_fwd(Ctx& ctx, const Model& m, Workspace& ws, int64_t B, int64_t T, const Tensor& stats);
// Backward of (scale * sum of losses): head gradients (accumulated), ws.g.du = dL/d xf over the
// B*T rows (zero at padded rows).
void class_head_bwd(Ctx& ctx, const Model& m, Workspace& ws, int64_t B, int64_t T, double scale);

// Logits only (generation): logits [n, V] = xf [n, D] head^T.
void lm_head_logits(Ctx& ctx, const Model& m, const Tensor& xf, const Tensor& logits);

}  // namespace wersa::detail

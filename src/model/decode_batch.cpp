// Batched decoding (decode_batch.h): the trunk over the rows of several sequences as one pass with
// a segment of one row per sequence (block.cpp runs RoPE and the attention per segment), then the
// LM head over all rows and each row's logits into its state.
#include "wersa/model/decode_batch.h"

#include <algorithm>
#include <set>

#include "block.h"
#include "wersa/ops/lanes.h"

namespace wersa {

DecodeBatch::DecodeBatch(const Model& m, int64_t max_rows, const DecodeOptions& opt)
    : model_(&m), opt_(opt), max_rows_(max_rows) {
  WERSA_CHECK(max_rows >= 1, "batched decoding: max rows = ", max_rows, ", expected >= 1");
  RunSpec spec{1, max_rows, false, true};
  spec.keep_logits = true;  // [max_rows, V]: one row of logits per sequence
  ws_ = std::make_unique<Workspace>(m, spec);
  // Plan every row count (the kernels differ with it: up to 16 rows take the GEMV kernel, whose
  // bf16 version takes scratch by the rows, more rows BLAS), each row at the last position the
  // context allows (the scratch of a KV-cache kernel grows with the position); a state for the
  // rows, not touched by planning.
  DecodeState probe(m, opt);
  const int64_t pos = opt.context > 0 ? opt.context - 1 : 0;
  std::vector<detail::Segment> segs;
  for (int64_t i = 0; i < max_rows; ++i) segs.push_back({i, 1, pos, &probe.layers_});
  for (int64_t n = 1; n <= max_rows; ++n) {
    const std::vector<detail::Segment> first(segs.begin(), segs.begin() + n);
    ws_->ctx().plan([&] {
      detail::Pass pass;
      pass.T = n, pass.segments = &first;
      detail::trunk_fwd(ws_->ctx(), m, *ws_, pass);
      detail::lm_head_logits(ws_->ctx(), m, ws_->xf.rows(0, n), ws_->logits.rows(0, n));
    });
  }
  // A context for each other CPU thread, which runs rows' attention beside the caller's
  // (ops/lanes.h), planned for one row at that position.
  for (int k = 0; k < extra_lanes(ws_->ctx()); ++k) {
    lane_ctx_.push_back(std::make_unique<Ctx>(Device::CPU));
    Ctx& lane = *lane_ctx_.back();
    lane.plan([&] { detail::plan_segment_attention(lane, m, *ws_, segs[0]); });
    lanes_.push_back(&lane);
  }
}

DecodeBatch::~DecodeBatch() = default;

size_t DecodeBatch::workspace_bytes() const {
  size_t b = ws_->bytes() + ws_->scratch_bytes();
  for (const auto& c : lane_ctx_) b += c->scratch_bytes();
  return b;
}

void DecodeBatch::step(const std::vector<DecodeState*>& states, const std::vector<int32_t>& tokens) {
  const Model& m = *model_;
  const int64_t n = int64_t(states.size()), V = m.config().vocab_size;
  WERSA_CHECK(n >= 1 && n <= max_rows_, "batched decoding: ", n, " sequences, expected 1 to ", max_rows_);
  WERSA_CHECK(tokens.size() == states.size(), "batched decoding: ", tokens.size(), " tokens for ", n,
              " sequences");
  std::set<const DecodeState*> seen;
  for (int64_t i = 0; i < n; ++i) {
    const DecodeState* s = states[size_t(i)];
    WERSA_CHECK(s != nullptr && seen.insert(s).second, "batched decoding: sequence ", i,
                " is null or appears twice");
    check_decode_state(m, *s, 1, "decode");
    WERSA_CHECK(s->opt_.context == opt_.context, "batched decoding: sequence ", i, " has context ",
                s->opt_.context, ", the batch was planned for ", opt_.context);
    const int32_t t = tokens[size_t(i)];
    WERSA_CHECK(t >= 0 && t < V, "decode: token id ", t, " is outside the vocabulary [0, ", V, ")");
  }
  Workspace& w = *ws_;
  std::vector<detail::Segment> segs(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    w.host_ids.host<int32_t>()[i] = tokens[size_t(i)];
    segs[size_t(i)] = {i, 1, states[size_t(i)]->pos(), &states[size_t(i)]->layers_};
  }
  w.upload_ids();
  detail::Pass pass;
  pass.T = n, pass.segments = &segs, pass.lanes = &lanes_;
  detail::trunk_fwd(w.ctx(), m, w, pass);
  detail::lm_head_logits(w.ctx(), m, w.xf.rows(0, n), w.logits.rows(0, n));
  for (int64_t i = 0; i < n; ++i) {
    DecodeState& s = *states[size_t(i)];
    tensor_copy(w.ctx(), s.logits_, w.logits.rows(i, i + 1).view({V}));
    s.tokens_.push_back(tokens[size_t(i)]);
  }
}

}  // namespace wersa

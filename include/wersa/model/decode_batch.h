// Batched decoding: one decode step of several sequences in one forward over their rows, each
// sequence continuing its own DecodeState at its own position (continuous batching: the set of
// states may change from one step to the next). The row-local work (norms, the q/k/v, output and
// FFN projections, the LM head) runs as one GEMM per weight over the n rows instead of n GEMVs;
// RoPE and the attention run per row, with that row's state (WERSA's window, Haar rings and
// (S, z); a softmax KV cache), the rows spread over the CPU threads (each thread with a context of
// its own, ops/lanes.h). A row's results do not depend on the other rows: up to 16 rows
// (cpu kGemvMaxRows) the projections take the few-row GEMV, which computes each row as the
// one-row GEMV does, so each state's logits are bitwise those of decode_step; with more rows
// BLAS GEMMs, and the logits equal decode_step's within their fp32 rounding.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "wersa/model/generate.h"

namespace wersa {

class DecodeBatch {
 public:
  // Up to max_rows sequences per step, with states of `opt` (the context sizes the softmax
  // kernels' scratch). Plans a workspace of max_rows rows once; steps allocate nothing.
  DecodeBatch(const Model& m, int64_t max_rows, const DecodeOptions& opt = {});
  ~DecodeBatch();
  DecodeBatch(const DecodeBatch&) = delete;
  DecodeBatch& operator=(const DecodeBatch&) = delete;
  int64_t max_rows() const { return max_rows_; }
  size_t workspace_bytes() const;

  // Feeds tokens[i] to states[i] (distinct states of this model and options, each with room for
  // one more token; 1 <= n <= max_rows), advancing each by one position; afterwards
  // states[i]->logits() predicts its next token. Errors (Error) as decode_step's, before any state
  // changes.
  void step(const std::vector<DecodeState*>& states, const std::vector<int32_t>& tokens);

 private:
  const Model* model_;
  DecodeOptions opt_;
  int64_t max_rows_;
  std::unique_ptr<Workspace> ws_;
  std::vector<std::unique_ptr<Ctx>> lane_ctx_;  // the other CPU threads' contexts (ops/lanes.h)
  std::vector<Ctx*> lanes_;
};

}  // namespace wersa

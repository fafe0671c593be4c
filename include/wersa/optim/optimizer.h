// AdamW over the model's parameter arena with global-norm gradient clipping and the learning-rate
// schedule (linear warm-up, then cosine decay to min_lr). The moment arenas are planned with the
// same declaration as the parameters (visit_params), so tensor i of params, grads, m and v
// correspond; weight decay applies where the declaration says (matrices).
#pragma once
#include <memory>

#include "wersa/model/model.h"

namespace wersa {

// lr at 0-based `step`: lr * (step+1)/warmup during warm-up, then cosine from lr to min_lr at
// step == steps - 1 (and min_lr after).
double lr_at(const TrainConfig& t, int64_t step);

class AdamW {
 public:
  explicit AdamW(Model& m);
  // Plans the optimizer's ops on ctx (validation, scratch) before the first step.
  void plan(Ctx& ctx, const TrainConfig& t);
  // The sum of squares of every gradient into norm2 (f64 [1] on the model's device): one op over
  // the flat gradient arena, deterministic (fixed blocks, double accumulation); no read-back.
  void grad_norm2(Ctx& ctx, const Tensor& norm2);
  // sqrt of that sum, into the optimizer's own scalar, then one read-back (which waits for the
  // step's work so far).
  double grad_norm(Ctx& ctx);
  // Scales the gradients by clip / norm when norm = sqrt(norm2[0]) > clip > 0, decided on the
  // device (op clip_by_norm): no read-back. The second form takes the norm of grad_norm().
  void clip(Ctx& ctx, const Tensor& norm2, double clip);
  void clip(Ctx& ctx, double clip);
  // One update with learning rate lr; `step` is 1-based (for bias correction). With head_only,
  // only the classifier head's tensors move (a frozen trunk: its moments stay as they are, and its
  // first updates after the freeze see the bias correction of the global step). Then refreshes the
  // model's bf16 shadow weights (mixed precision; Model::refresh_bf16).
  void step(Ctx& ctx, const TrainConfig& t, double lr, int64_t step, bool head_only = false);
  Arena& m_arena() { return *m_; }
  Arena& v_arena() { return *v_; }

 private:
  Model& model_;
  std::unique_ptr<Arena> m_, v_, scalars_;
  Tensor norm2_;  // f64 [1] on the model's device
  // CUDA: the flat form's tables (ops/adamw.h), i32 [S, 3]: every parameter tensor, and the
  // classifier head's; step() then updates the whole model in one launch. Undefined on the CPU
  // (one call per tensor) or where the arenas do not share one layout of at most 2^31 - 1 elements.
  Tensor segments_, head_segments_;
};

}  // namespace wersa

// AdamW over the model's parameter arena with global-norm gradient clipping and the learning-rate
// schedule (linear warm-up, then cosine decay to min_lr). The moment arenas are planned with the
// same function as the parameters, so tensor i of params, grads, m and v correspond.
#pragma once
#include <memory>

#include "wersa/model/model.h"

namespace wersa {

// lr at 0-based `step`: lr * (step+1)/warmup during warm-up, then cosine from lr to min_lr at
// step == steps - 1 (and min_lr after).
double lr_at(const TrainConfig& t, int64_t step);

// sqrt(sum of squares) over all gradients, deterministic (fixed order, double accumulation).
double grad_global_norm(Model& m);
// Scales the gradients by clip / norm when norm > clip (clip > 0). Returns the factor applied.
double clip_grads(Model& m, double norm, double clip);

class AdamW {
 public:
  explicit AdamW(Model& m);
  // One update with learning rate lr; `step` is 1-based (for bias correction).
  void step(const TrainConfig& t, double lr, int64_t step);
  Arena& m_arena() { return *m_; }
  Arena& v_arena() { return *v_; }

 private:
  Model& model_;
  std::unique_ptr<Arena> m_, v_;
};

}  // namespace wersa

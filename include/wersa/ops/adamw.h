// AdamW update of one parameter tensor (decoupled weight decay, bias-corrected moments):
//   m = b1 m + (1 - b1) g            v = b2 v + (1 - b2) g^2
//   p -= lr * ( (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + wd * p )
// p, m, v are updated in place; g is read (the four must not overlap). t is the 1-based step
// number. No backward.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct AdamWArgs {
  Tensor p, m, v;  // updated in place
  Tensor g;        // gradient (already clipped / scaled)
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;
};
void adamw_step(Ctx& ctx, const AdamWArgs& a);

}  // namespace wersa

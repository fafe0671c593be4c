// AdamW update of one parameter tensor (decoupled weight decay, bias-corrected moments):
//   m = b1 m + (1 - b1) g            v = b2 v + (1 - b2) g^2
//   p -= lr * ( (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + wd * p )
// p, m, v are updated in place; g is read (the four must not overlap). t is the 1-based step
// number. No backward.
// Flat form (optional `segments`): p, m, v, g are whole arenas of one layout (e.g. Arena::flat),
// and segments, i32 [S, 3], lists the ranges to update, one row (begin, end, decays) each, in
// elements, sorted and disjoint (0 <= begin <= end <= next begin, end <= numel). Range
// [begin, end) is updated as one tensor would be, with weight decay weight_decay where
// decays != 0 and 0 where decays == 0 (so bitwise as per-tensor calls); elements in no range (the
// padding between views, frozen tensors) are left as they are. One launch for a whole model on
// CUDA. The CPU kernel checks the table (a wersa::Error before anything is written); the CUDA
// kernel cannot read it on the host: there a bad table makes each element take the row a binary
// search over the begins finds (if it lies inside it), so no element is updated twice and nothing
// outside the four tensors and the table is touched, but which elements move is then unspecified.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct AdamWArgs {
  Tensor p, m, v;  // updated in place
  Tensor g;        // gradient (already clipped / scaled)
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;
  Tensor segments = {};  // optional: i32 [S, 3] (begin, end, decays) rows of the flat form
};
void adamw_step(Ctx& ctx, const AdamWArgs& a);

}  // namespace wersa

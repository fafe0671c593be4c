// Rotary position embedding, HF/Qwen "rotate_half" convention. For each head vector x of width
// d (d even), position pos = pos0 + t and i < d/2:
//   angle_i = pos * theta^(-2i/d)        (computed in double)
//   y_i       = x_i cos - x_{i+d/2} sin
//   y_{i+d/2} = x_{i+d/2} cos + x_i sin
// i.e. y = R x with R a rotation of each pair (i, i + d/2). Because R is orthogonal, the
// derivative is dx = R^T dy, the inverse rotation (overwritten), which rope_bwd computes: there
// y plays dx and x plays dy. The backward needs only theta and pos0, nothing saved.
// Layout: x, y [B, T, heads, d]; y may alias x (in place). Rotating q at p and k at s gives
// dot(R_p q, R_s k) = dot(q, R_{s-p} k): it depends only on the offset p - s.
#pragma once
#include <cstdint>

#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct RopeArgs {
  Tensor y;  // [B, T, heads, d] out (overwritten); may alias x
  Tensor x;  // [B, T, heads, d]
  double theta;
  int64_t pos0 = 0;  // position of t = 0 (generation continues a sequence at pos0 = its length)
};

void rope_fwd(Ctx& ctx, const RopeArgs& a);  // y = R x
void rope_bwd(Ctx& ctx, const RopeArgs& a);  // y = R^T x   (dx = R^T dy)

}  // namespace wersa

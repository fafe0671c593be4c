// SwiGLU gating of the MLP, elementwise over tensors of one shape (any rank):
//   y = silu(gate) * up,   silu(g) = g * s(g),  s = sigmoid
// Derivatives:
//   dgate = dy * up * s(g) * (1 + g * (1 - s(g)))       (overwritten)
//   dup   = dy * silu(g)                                 (overwritten)
// The backward needs gate and up from the forward (y is not needed). Every output element is
// computed from the inputs at the same index only, so y may alias gate or up, and dgate / dup
// may alias dy.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct SwigluFwd {
  Tensor y;         // out (overwritten)
  Tensor gate, up;  // same shape as y
};
struct SwigluBwd {
  Tensor dgate, dup;    // overwritten
  Tensor dy, gate, up;  // same shape
};

void swiglu_fwd(Ctx& ctx, const SwigluFwd& a);
void swiglu_bwd(Ctx& ctx, const SwigluBwd& a);

}  // namespace wersa

// SwiGLU gating of the MLP, elementwise over tensors of one shape (any rank):
//   y = silu(gate) * up,   silu(g) = g * s(g),  s = sigmoid
// Derivatives:
//   dgate = dy * up * s(g) * (1 + g * (1 - s(g)))       (overwritten)
//   dup   = dy * silu(g)                                 (overwritten)
// The backward needs gate and up from the forward (y is not needed). Every output element is
// computed from the inputs at the same index only, so y may alias gate or up, and dgate / dup
// may alias dy.
// Packed form (gate_up instead of gate and up; dgate_up instead of dgate and dup): gate_up
// [..., 2F] holds gate in the first F entries of each row and up in the last F, with y and dy
// [..., F]: what one GEMM over the stacked weights [W_gate; W_up] writes (the model's FFN). The
// packed tensors must not overlap y, dy or each other.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct SwigluFwd {
  Tensor y;          // out (overwritten)
  Tensor gate, up;   // same shape as y
  Tensor gate_up{};  // or packed: [..., 2F] for y [..., F]
};
struct SwigluBwd {
  Tensor dgate, dup;             // overwritten
  Tensor dy, gate, up;           // same shape
  Tensor dgate_up{}, gate_up{};  // or packed (overwritten, input): [..., 2F] for dy [..., F]
};

void swiglu_fwd(Ctx& ctx, const SwigluFwd& a);
void swiglu_bwd(Ctx& ctx, const SwigluBwd& a);

}  // namespace wersa

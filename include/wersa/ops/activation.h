// Elementwise activations y = f(x), any shape:
//   Gelu    f = x * Phi(x) = x * 0.5 * (1 + erf(x / sqrt(2)))   (exact erf GELU, not tanh)
//           f' = Phi(x) + x * exp(-x^2 / 2) / sqrt(2 pi)
//   Relu    f = max(x, 0),          f' = 1 if x > 0 else 0 (0 at x = 0)
//   Sigmoid f = s(x) = 1/(1+e^-x),  f' = s (1 - s)
//   Silu    f = x s(x),             f' = s (1 + x (1 - s))
// Backward: dx = dy * f'(x), overwritten (or added to dx when accumulate_dx). It needs x from
// the forward. y may alias x; dx may alias dy.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

enum class Activation { Gelu, Relu, Sigmoid, Silu };

struct ActivationFwd {
  Tensor y;  // out (overwritten); may alias x
  Tensor x;
  Activation act;
};
struct ActivationBwd {
  Tensor dx;     // overwritten, or added to when accumulate_dx
  Tensor dy, x;  // same shape as dx
  Activation act;
  bool accumulate_dx = false;
};

// "gelu", "relu", "sigmoid", "silu".
const char* activation_name(Activation act);

void activation_fwd(Ctx& ctx, const ActivationFwd& a);
void activation_bwd(Ctx& ctx, const ActivationBwd& a);

}  // namespace wersa

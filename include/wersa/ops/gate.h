// WERSA level gates (the end of spec step 2):
//   g = sigmoid(z),  gamma = g * s       z, g, gamma: [N, L+1]   s (scale_weights): [L+1]
// i.e. gamma[n,l] = s[l] / (1 + exp(-z[n,l])).
// Derivatives (given dgamma):
//   dz[n,l] = dgamma[n,l] * s[l] * g[n,l] * (1 - g[n,l])   (overwritten)
//   ds[l]  += sum_n dgamma[n,l] * g[n,l]                    (accumulated; serial sum in double, so
//                                                             deterministic)
// The backward needs g and s from the forward. Either dz or ds may be left undefined to skip it.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct GateFwd {
  Tensor gamma, g;  // [N, L+1] out (both overwritten)
  Tensor z, s;      // [N, L+1], [L+1]
};
struct GateBwd {
  Tensor dz, ds;        // [N, L+1] (overwritten), [L+1] (accumulated)
  Tensor dgamma, g, s;  // [N, L+1], [N, L+1], [L+1]
};

void gate_fwd(Ctx& ctx, const GateFwd& a);
void gate_bwd(Ctx& ctx, const GateBwd& a);

}  // namespace wersa

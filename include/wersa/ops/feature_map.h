// Random-feature map of WERSA (spec step 6):
//   phi = ReLU(x Omega) / sqrt(m)          x: [..., d] (rank 2-4)   Omega: [d, m]   phi: [..., m]
// Omega is fixed (entries N(0, 1/d), drawn once by init_omega, never trained). With one Omega
// shared by q and k, E[phi(x) . phi(y)] = |x||y| / (2 pi d) * (sin th + (pi - th) cos th), th the
// angle between x and y (order-1 arc-cosine kernel).
// All leading dimensions are flattened into R rows; the forward is one BLAS gemm (the 1/sqrt(m)
// applied as its alpha) followed by the ReLU.
// Derivative:
//   dx = (dphi * [phi > 0]) Omega^T / sqrt(m)    (overwritten)
// The backward uses phi > 0 as the ReLU mask (phi > 0 exactly when the pre-activation is > 0), so it
// needs phi and Omega from the forward, not x. Omega gets no gradient. Float dtypes f32 or f64.
#pragma once
#include <cstdint>

#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct FeatureMapFwd {
  Tensor phi;       // [..., m] out (overwritten)
  Tensor x, omega;  // [..., d], [d, m]
};
struct FeatureMapBwd {
  Tensor dx;                // [..., d] out (overwritten)
  Tensor dphi, phi, omega;  // [..., m], [..., m], [d, m]
};

void feature_map_fwd(Ctx& ctx, const FeatureMapFwd& a);
void feature_map_bwd(Ctx& ctx, const FeatureMapBwd& a);

// Fills omega [d, m] (CPU, f32 or f64) with N(0, 1/d): omega[i] = rng_normal(seed, stream, i) /
// sqrt(d), i the row-major element index, so the values depend only on (seed, stream, shape).
void init_omega(const Tensor& omega, uint64_t seed, uint64_t stream);

}  // namespace wersa

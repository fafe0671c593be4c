// Random-feature maps of WERSA (spec step 6 and its feature-map options):
//   relu: phi = ReLU(x Omega) / sqrt(m)    x: [..., d] (rank 2-4)   Omega: [d, m]   phi: [..., m]
//   exp:  phi = exp(y Omega - |y|^2 / 2) / sqrt(m), y = x / d^(1/4), Omega entries N(0, 1)
//         (FAVOR+: E[phi(q) . phi(k)] = exp(q . k / sqrt(d)); every exponent <= |omega_j|^2 / 2)
// Omega is fixed (entries N(0, 1/d), drawn once by init_omega, never trained). With one Omega
// shared by q and k, E[phi(x) . phi(y)] = |x||y| / (2 pi d) * (sin th + (pi - th) cos th), th the
// angle between x and y (order-1 arc-cosine kernel).
// All leading dimensions are flattened into R rows; the forward is one BLAS gemm (the 1/sqrt(m)
// applied as its alpha) followed by the ReLU.
// Derivatives (dx overwritten; Omega gets no gradient):
//   relu: dx = (dphi * [phi > 0]) Omega^T / sqrt(m); phi > 0 is the ReLU mask, so x is not needed.
//   exp:  with g = dphi * phi (d phi_j / d a_j = phi_j for the exponent a),
//         dx = (g Omega^T - (sum_j g_j) y) / d^(1/4); needs x as well.
// Float dtypes f32 or f64.
#pragma once
#include <cstdint>

#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

enum class FeatureMapKind { Relu, Exp };

struct FeatureMapFwd {
  Tensor phi;       // [..., m] out (overwritten)
  Tensor x, omega;  // [..., d], [d, m]
  FeatureMapKind kind = FeatureMapKind::Relu;
};
struct FeatureMapBwd {
  Tensor dx;                // [..., d] out (overwritten)
  Tensor dphi, phi, omega;  // [..., m], [..., m], [d, m]
  Tensor x;                 // [..., d], the forward's input (exp only)
  FeatureMapKind kind = FeatureMapKind::Relu;
};

void feature_map_fwd(Ctx& ctx, const FeatureMapFwd& a);
void feature_map_bwd(Ctx& ctx, const FeatureMapBwd& a);

// Fills omega [d, m] (CPU, f32 or f64) for the map `kind`: relu N(0, 1/d), omega[i] =
// rng_normal(seed, stream, i) / sqrt(d); exp N(0, 1), omega[i] = rng_normal(seed, stream, i); i the
// row-major element index, so the values depend only on (seed, stream, shape, kind).
void init_omega(const Tensor& omega, uint64_t seed, uint64_t stream,
                FeatureMapKind kind = FeatureMapKind::Relu);

}  // namespace wersa

// CPU random-feature maps: one gemm over all rows, then the ReLU or the exponential (exp: the
// gemm's alpha is d^(-1/4), then each row subtracts |y|^2 / 2 + ln sqrt(m) and exponentiates).
// ReLU in float (builds for AVX2 or AVX-512; a portable build keeps BLAS): the forward is one pass
// of small_gemm_rows (small_gemm.h) with the ReLU applied to its outputs; the backward's product
// with Omega^T goes through small_gemm_rows too.
// Backward by row chunks through a scratch of at most 2^18 elements (1 MiB of f32: GEMMs of 4096
// rows at m = 64, and scratch that does not grow with T stays small): relu the masked dphi, exp
// g = dphi * phi, then one gemm with Omega^T (exp: minus (sum_j g_j) y per row).
#include "wersa/ops/feature_map.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "blas.h"
#include "kernels.h"
#include "parallel.h"
#include "small_gemm.h"

namespace wersa::cpu {

template <class T>
void feature_map_fwd(Ctx&, const FeatureMapFwd& a) {
  const int64_t d = a.omega.dim(0), m = a.omega.dim(1);
  const int64_t R = a.x.numel() / d;
  if (R == 0) return;
  T* phi = a.phi.ptr<T>();
  const bool is_exp = a.kind == FeatureMapKind::Exp;
  // relu: scaling before the ReLU is exact, ReLU(s u) = s ReLU(u) for s > 0.
  const double alpha = is_exp ? std::pow(double(d), -0.25) : 1.0 / std::sqrt(double(m));
  if constexpr (std::is_same_v<T, float> && simd::kLanes > 1) {
    if (!is_exp) {  // the product and the ReLU in one pass (small_gemm.h)
      const float* x = a.x.ptr<float>();
      small_gemm_rows(
          R, d, m, [x, d](int64_t r, int64_t k) { return x[r * d + k]; }, a.omega.ptr<float>(), float(alpha),
          phi, [](auto v) { return simd::sel(v > decltype(v)(0.f), v, decltype(v)(0.f)); });
      return;
    }
  }
  gemm(false, false, int(R), int(m), int(d), T(alpha), a.x.ptr<T>(), int(d), a.omega.ptr<T>(), int(m), T(0),
       phi, int(m));
  if (!is_exp) {
    const int64_t n = R * m;
    parallel_for(n, n >= kParallelMinElems, [&](int64_t i) { phi[i] = phi[i] > T(0) ? phi[i] : T(0); });
    return;
  }
  const T* x = a.x.ptr<T>();
  const double log_sqrt_m = 0.5 * std::log(double(m)), inv_sqrt_d = 1.0 / std::sqrt(double(d));
  parallel_for(R, R * m >= kParallelMinElems, [&](int64_t r) {
    double sq = 0;  // |y|^2 = |x|^2 / sqrt(d)
    for (int64_t i = 0; i < d; ++i) sq += double(x[r * d + i]) * double(x[r * d + i]);
    const T shift = T(0.5 * sq * inv_sqrt_d + log_sqrt_m);
    T* p = phi + r * m;
    for (int64_t j = 0; j < m; ++j) p[j] = std::exp(p[j] - shift);
  });
}

template <class T>
void feature_map_bwd(Ctx& ctx, const FeatureMapBwd& a) {
  const int64_t d = a.omega.dim(0), m = a.omega.dim(1);
  const int64_t R = a.dx.numel() / d;
  const T* dphi = a.dphi.ptr<T>();
  const T* phi = a.phi.ptr<T>();
  T* dx = a.dx.ptr<T>();
  const bool is_exp = a.kind == FeatureMapKind::Exp;
  const double scale = is_exp ? std::pow(double(d), -0.25) : 1.0 / std::sqrt(double(m));
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(R, (int64_t(1) << 18) / m));
  T* g = ctx.take<T>(R == 0 ? 0 : chunk * m);
  // ReLU in float: Omega^T [m x d] for small_gemm_rows.
  constexpr bool f32 = std::is_same_v<T, float> && simd::kLanes > 1;
  T* wt = ctx.take<T>(f32 && !is_exp ? m * d : 0);
  if (ctx.planning() || R == 0) return;
  if (f32 && !is_exp) {
    const T* om = a.omega.ptr<T>();
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < m; ++j) wt[j * d + i] = om[i * m + j];
  }
  const T* x = is_exp ? a.x.ptr<T>() : nullptr;
  const double inv_sqrt_d = 1.0 / std::sqrt(double(d));
  for (int64_t r0 = 0; r0 < R; r0 += chunk) {
    const int64_t nr = std::min(chunk, R - r0);
    const T* dp = dphi + r0 * m;
    const T* p = phi + r0 * m;
    if (is_exp) {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < nr * m; ++i) g[i] = dp[i] * p[i];
    } else {
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < nr * m; ++i) g[i] = p[i] > T(0) ? dp[i] : T(0);
    }
    T* out = dx + r0 * d;
    if constexpr (f32) {
      if (!is_exp) {
        small_gemm_rows(
            nr, m, d, [g, m](int64_t r, int64_t j) { return g[r * m + j]; }, wt, float(scale), out,
            [](auto v) { return v; });
        continue;
      }
    }
    gemm(false, true, int(nr), int(d), int(m), T(scale), g, int(m), a.omega.ptr<T>(), int(m), T(0), out,
         int(d));
    if (!is_exp) continue;
    // d(-|y|^2 / 2)/dx = -y / d^(1/4) = -x / sqrt(d), times the row's sum of g.
    parallel_for(nr, nr * m >= kParallelMinElems, [&](int64_t r) {
      double sg = 0;
      for (int64_t j = 0; j < m; ++j) sg += double(g[r * m + j]);
      const T c = T(sg * inv_sqrt_d);
      const T* xr = x + (r0 + r) * d;
      for (int64_t i = 0; i < d; ++i) out[r * d + i] -= c * xr[i];
    });
  }
}

template void feature_map_fwd<float>(Ctx&, const FeatureMapFwd&);
template void feature_map_fwd<double>(Ctx&, const FeatureMapFwd&);
template void feature_map_bwd<float>(Ctx&, const FeatureMapBwd&);
template void feature_map_bwd<double>(Ctx&, const FeatureMapBwd&);

}  // namespace wersa::cpu

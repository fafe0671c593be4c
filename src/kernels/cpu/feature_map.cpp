// CPU random-feature map: phi = ReLU(x Omega) / sqrt(m) as one gemm over all rows plus a ReLU;
// dx = (dphi * [phi > 0]) Omega^T / sqrt(m), by row chunks through a masked copy of dphi (the
// scratch: at most ~1M elements).
#include "wersa/ops/feature_map.h"

#include <algorithm>
#include <cmath>

#include "blas.h"
#include "kernels.h"
#include "parallel.h"

namespace wersa::cpu {

template <class T>
void feature_map_fwd(Ctx&, const FeatureMapFwd& a) {
  const int64_t d = a.omega.dim(0), m = a.omega.dim(1);
  const int64_t R = a.x.numel() / d;
  if (R == 0) return;
  T* phi = a.phi.ptr<T>();
  // Scaling before the ReLU is exact: ReLU(s u) = s ReLU(u) for s > 0.
  gemm(false, false, int(R), int(m), int(d), T(1.0 / std::sqrt(double(m))), a.x.ptr<T>(), int(d),
       a.omega.ptr<T>(), int(m), T(0), phi, int(m));
  const int64_t n = R * m;
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) phi[i] = phi[i] > T(0) ? phi[i] : T(0);
}

template <class T>
void feature_map_bwd(Ctx& ctx, const FeatureMapBwd& a) {
  const int64_t d = a.omega.dim(0), m = a.omega.dim(1);
  const int64_t R = a.dx.numel() / d;
  const T* dphi = a.dphi.ptr<T>();
  const T* phi = a.phi.ptr<T>();
  T* dx = a.dx.ptr<T>();
  const T scale = T(1.0 / std::sqrt(double(m)));
  // The masked gradient goes through a scratch of at most ~1M elements: rows are taken in chunks.
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(R, (int64_t(1) << 20) / m));
  T* g = ctx.take<T>(R == 0 ? 0 : chunk * m);
  if (ctx.planning() || R == 0) return;
  for (int64_t r0 = 0; r0 < R; r0 += chunk) {
    const int64_t nr = std::min(chunk, R - r0);
    const T* dp = dphi + r0 * m;
    const T* p = phi + r0 * m;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < nr * m; ++i) g[i] = p[i] > T(0) ? dp[i] : T(0);
    gemm(false, true, int(nr), int(d), int(m), scale, g, int(m), a.omega.ptr<T>(), int(m), T(0), dx + r0 * d,
         int(d));
  }
}

template void feature_map_fwd<float>(Ctx&, const FeatureMapFwd&);
template void feature_map_fwd<double>(Ctx&, const FeatureMapFwd&);
template void feature_map_bwd<float>(Ctx&, const FeatureMapBwd&);
template void feature_map_bwd<double>(Ctx&, const FeatureMapBwd&);

}  // namespace wersa::cpu

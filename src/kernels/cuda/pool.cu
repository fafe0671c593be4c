// CUDA pooling over each sequence's real rows (formulas in include/wersa/ops/pool.h).
//   pool_fwd: one thread per (b, column j), grid-stride over B D (consecutive threads take
//             consecutive columns: coalesced rows of x). Mean: a serial sum in double over
//             t < n_b, divided by n_b and rounded once, as on the CPU (src/kernels/cpu/pool.cpp):
//             deterministic and equal to the CPU sum. Last: a copy of row n_b - 1.
//   pool_bwd: one thread per element of dx, grid-stride over B T D: dp[b, j] * (1 / n_b) (in
//             double, rounded once) or 0 for mean; dp[b, j] at t = n_b - 1, else 0, for last.
// Each output element is written once; padded rows of x are never read.
// Bad lengths: the CPU kernels check them before writing; here they are on the device, so a
// sequence whose length is outside [1, T] gets NaN in all its outputs (p[b, :], or dx[b, :, :])
// instead (no access depends on the length's value).
#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/pool.h"

namespace wersa::cuda {

namespace {

__device__ inline void set_nan(float& y) { y = nanf(""); }
__device__ inline void set_nan(double& y) { y = nan(""); }

template <class T>
__global__ void pool_fwd_kernel(T* p, const T* x, const int32_t* len, int64_t B, int64_t Tn, int64_t D,
                                bool last) {
  const int64_t n = B * D;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const int64_t b = e / D, j = e % D, nb = len[b];
    if (nb < 1 || nb > Tn) {
      set_nan(p[e]);
      continue;
    }
    const T* xb = x + b * Tn * D + j;
    if (last) {
      p[e] = xb[(nb - 1) * D];
      continue;
    }
    double acc = 0;
    for (int64_t t = 0; t < nb; ++t) acc += double(xb[t * D]);
    p[e] = T(acc / double(nb));
  }
}

template <class T>
__global__ void pool_bwd_kernel(T* dx, const T* dp, const int32_t* len, int64_t Tn, int64_t D, int64_t n,
                                bool last) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const int64_t j = e % D, r = e / D, t = r % Tn, b = r / Tn, nb = len[b];
    if (nb < 1 || nb > Tn)
      set_nan(dx[e]);
    else if (last)
      dx[e] = t == nb - 1 ? dp[b * D + j] : T(0);
    else
      dx[e] = t < nb ? T(double(dp[b * D + j]) * (1.0 / double(nb))) : T(0);
  }
}

}  // namespace

void pool_fwd(Ctx& ctx, const PoolFwd& a) {
  const int64_t B = a.x.dim(0), Tn = a.x.dim(1), D = a.x.dim(2);
  if (B * D == 0) return;
  by_dtype(a.p.dtype, "pool_fwd", [&](auto tag) {
    using T = decltype(tag);
    WERSA_LAUNCH(pool_fwd_kernel<T>, blocks_for(B * D), kThreads, 0, stream(ctx), a.p.ptr<T>(), a.x.ptr<T>(),
                 a.lengths.ptr<int32_t>(), B, Tn, D, a.kind == PoolKind::Last);
  });
}

void pool_bwd(Ctx& ctx, const PoolBwd& a) {
  const int64_t Tn = a.dx.dim(1), D = a.dx.dim(2), n = a.dx.numel();
  if (n == 0) return;
  by_dtype(a.dx.dtype, "pool_bwd", [&](auto tag) {
    using T = decltype(tag);
    WERSA_LAUNCH(pool_bwd_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.dx.ptr<T>(), a.dp.ptr<T>(),
                 a.lengths.ptr<int32_t>(), Tn, D, n, a.kind == PoolKind::Last);
  });
}

}  // namespace wersa::cuda

// CUDA AdamW (formula in include/wersa/ops/adamw.h): one thread per element, grid-stride. The
// arithmetic is the CPU kernel's (src/kernels/cpu/adamw.cpp) in the same order: the
// hyperparameters and the bias corrections 1 / (1 - beta^t) are computed in double on the host
// and rounded once to T, the update itself runs in T. Each element is read and written once.
// Flat form (segments [S, 3]): one launch over the whole arenas; each thread finds its element's
// row by a binary search over the begins (rows sorted; a warp's elements mostly share a row, so
// the table reads are broadcasts from cache) and updates it with that row's decay, or leaves it
// when it lies in no row. Only the element's own thread touches it, whatever the table holds.
#include <cmath>

#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/adamw.h"

namespace wersa::cuda {

namespace {

__device__ inline float sqrt_t(float x) { return sqrtf(x); }
__device__ inline double sqrt_t(double x) { return sqrt(x); }

template <class T>
struct AdamWConsts {
  T b1, b2, eps, lr, wd, c1, c2;
};

template <class T>
__device__ inline void update(T* __restrict__ p, T* __restrict__ m, T* __restrict__ v,
                              const T* __restrict__ g, const AdamWConsts<T>& k, T wd, int64_t i) {
  const T gi = g[i];
  const T mi = k.b1 * m[i] + (T(1) - k.b1) * gi;
  const T vi = k.b2 * v[i] + (T(1) - k.b2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  const T mh = mi * k.c1, vh = vi * k.c2;
  const T pi = p[i];
  p[i] = pi - k.lr * (mh / (sqrt_t(vh) + k.eps) + wd * pi);
}

template <class T>
__global__ void adamw_kernel(T* __restrict__ p, T* __restrict__ m, T* __restrict__ v, const T* __restrict__ g,
                             AdamWConsts<T> k, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    update(p, m, v, g, k, k.wd, i);
}

template <class T>
__global__ void adamw_flat_kernel(T* __restrict__ p, T* __restrict__ m, T* __restrict__ v,
                                  const T* __restrict__ g, const int32_t* __restrict__ seg, int64_t S,
                                  AdamWConsts<T> k, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    int64_t lo = 0, hi = S;  // the first row whose begin is past i
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (seg[3 * mid] <= i)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo == 0 || i >= seg[3 * (lo - 1) + 1]) continue;  // in no row
    update(p, m, v, g, k, seg[3 * (lo - 1) + 2] != 0 ? k.wd : T(0), i);
  }
}

}  // namespace

void adamw_step(Ctx& ctx, const AdamWArgs& a) {
  const int64_t n = a.p.numel();
  if (n == 0) return;
  by_dtype(a.p.dtype, "adamw_step", [&](auto t) {
    using T = decltype(t);
    const AdamWConsts<T> k{T(a.beta1),
                           T(a.beta2),
                           T(a.eps),
                           T(a.lr),
                           T(a.weight_decay),
                           T(1.0 / (1.0 - std::pow(a.beta1, double(a.step)))),
                           T(1.0 / (1.0 - std::pow(a.beta2, double(a.step))))};
    if (a.segments.defined()) {
      const int64_t S = a.segments.dim(0);
      if (S == 0) return;
      WERSA_LAUNCH(adamw_flat_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.p.ptr<T>(), a.m.ptr<T>(),
                   a.v.ptr<T>(), a.g.ptr<T>(), a.segments.ptr<int32_t>(), S, k, n);
      return;
    }
    WERSA_LAUNCH(adamw_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.p.ptr<T>(), a.m.ptr<T>(),
                 a.v.ptr<T>(), a.g.ptr<T>(), k, n);
  });
}

}  // namespace wersa::cuda

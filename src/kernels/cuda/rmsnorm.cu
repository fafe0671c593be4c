// CUDA RMSNorm (formulas and derivative: include/wersa/ops/rmsnorm.h; arithmetic as the CPU kernel,
// src/kernels/cpu/rmsnorm.cpp):
//   forward   rstd = 1 / sqrt(mean_c x^2 + eps) (in double), y = x * T(rstd) * w
//   backward  g = dy * w, k = rstd^3 mean_c(g x) (in double), dx = T(rstd) g - T(k) x (or dx +=),
//             dw += sum_n T(dy x rstd)
// Forward: one block per row (rows n = blockIdx.x, + gridDim.x, ...); thread t takes columns t,
// t + B, ... (B = row_threads(C)); each thread sums its columns' squares in column order in double,
// then block_sum adds the threads' sums in a fixed tree: the order depends only on C. The row is
// kept in shared memory between the two passes when it fits (x read once from global memory).
// Backward: block j of G = param_chunks(N) takes the fixed rows [N j / G, N (j + 1) / G) one after
// the other, each as in the forward (block_sum of g x for dx); thread t adds T(dy x rstd) of its
// columns to dw's partial sums of the chunk, in row order, in double (in shared memory when they
// fit, else in scratch), then writes them to scratch part[j, :]; column_sums adds part[0..G-1, c]
// in order to dw[c]. No atomics: bitwise reproducible. Scratch: part [G, C] doubles (when dw).
#include "common.cuh"
#include "kernels.h"
#include "norm.cuh"
#include "wersa/ops/rmsnorm.h"

namespace wersa::cuda {

namespace {

template <class T>
__global__ void rmsnorm_fwd_kernel(T* y, T* rstd, const T* x, const T* w, int64_t N, int64_t C, double eps,
                                   bool cache) {
  __shared__ double red[32];
  WERSA_DYNAMIC_SHARED(T, xs);  // [C]: the row (cache); each thread reads back its own columns only
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* xr = x + n * C;
    double s = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const T v = xr[c];
      if (cache) xs[c] = v;
      s += double(v) * double(v);
    }
    s = block_sum(s, red);
    const double r = 1.0 / sqrt(s / double(C) + eps);
    if (rstd && threadIdx.x == 0) rstd[n] = T(r);
    const T rt = T(r);
    T* yr = y + n * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) yr[c] = (cache ? xs[c] : xr[c]) * rt * w[c];
  }
}

// part: [G, C] (null: no dw). part_in_smem: the chunk's partial sums are kept in shared memory
// (else added up in part[j, :] directly). cache: g and x of the row are kept in shared memory.
template <class T>
__global__ void rmsnorm_bwd_kernel(T* dx, double* part, const T* dy, const T* x, const T* w, const T* rstd,
                                   int64_t N, int64_t C, int64_t chunks, bool acc, bool part_in_smem,
                                   bool cache) {
  __shared__ double red[32];
  WERSA_DYNAMIC_SHARED(double, smem);  // [C] partial dw (part_in_smem), then [C] g, [C] x in T (cache)
  const int64_t j = blockIdx.x, n0 = N * j / chunks, n1 = N * (j + 1) / chunks;
  double* p = part ? (part_in_smem ? smem : part + j * C) : nullptr;
  T* gs = reinterpret_cast<T*>(smem + (part_in_smem ? C : 0));
  T* xs = gs + C;
  if (p)
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) p[c] = 0;
  for (int64_t n = n0; n < n1; ++n) {
    const T* dyr = dy + n * C;
    const T* xr = x + n * C;
    const T rt = rstd[n];
    double s = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const T d = dyr[c], v = xr[c];
      if (p) p[c] += double(d * v * rt);
      if (dx) {
        const T g = d * w[c];
        if (cache) {
          gs[c] = g;
          xs[c] = v;
        }
        s += double(g) * double(v);
      }
    }
    if (dx) {  // the same for every thread of the block
      const double r = double(rt);
      s = block_sum(s, red);
      const T kt = T(r * r * r * s / double(C));
      T* dxr = dx + n * C;
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        const T g = cache ? gs[c] : dyr[c] * w[c], v = cache ? xs[c] : xr[c];
        const T d = rt * g - kt * v;
        dxr[c] = acc ? dxr[c] + d : d;
      }
    }
  }
  if (p && part_in_smem)
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) part[j * C + c] = p[c];
}

}  // namespace

void rmsnorm_fwd(Ctx& ctx, const RmsNormFwd& a) {
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  if (N == 0) return;
  by_dtype(a.y.dtype, "rmsnorm_fwd", [&](auto t) {
    using T = decltype(t);
    const size_t row_bytes = size_t(C) * sizeof(T);
    const bool cache = row_bytes <= kSmemBudget;
    WERSA_LAUNCH(rmsnorm_fwd_kernel<T>, row_grid(N), row_threads(C), cache ? row_bytes : 0, stream(ctx),
                 a.y.ptr<T>(), a.rstd.defined() ? a.rstd.ptr<T>() : nullptr, a.x.ptr<T>(), a.w.ptr<T>(), N, C,
                 a.eps, cache);
  });
}

void rmsnorm_bwd(Ctx& ctx, const RmsNormBwd& a) {
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  const int64_t chunks = param_chunks(N);
  double* part = a.dw.defined() && chunks > 0 ? ctx.take<double>(chunks * C) : nullptr;
  if (ctx.planning()) return;
  if (N == 0 || (!a.dx.defined() && !a.dw.defined())) return;
  by_dtype(a.dy.dtype, "rmsnorm_bwd", [&](auto t) {
    using T = decltype(t);
    const size_t part_bytes = part ? size_t(C) * sizeof(double) : 0;
    const size_t cache_bytes = a.dx.defined() ? 2 * size_t(C) * sizeof(T) : 0;
    const bool part_in_smem = part && part_bytes <= kSmemBudget;
    const size_t used = part_in_smem ? part_bytes : 0;
    const bool cache = cache_bytes > 0 && used + cache_bytes <= kSmemBudget;
    WERSA_LAUNCH(rmsnorm_bwd_kernel<T>, unsigned(chunks), row_threads(C), used + (cache ? cache_bytes : 0),
                 stream(ctx), a.dx.defined() ? a.dx.ptr<T>() : nullptr, part, a.dy.ptr<T>(), a.x.ptr<T>(),
                 a.w.ptr<T>(), a.rstd.ptr<T>(), N, C, chunks, a.accumulate_dx, part_in_smem, cache);
    if (part && C > 0)
      WERSA_LAUNCH(column_sums<T>, blocks_for(C), kThreads, 0, stream(ctx), a.dw.ptr<T>(),
                   static_cast<const double*>(part), chunks, C);
  });
}

}  // namespace wersa::cuda

// CUDA LayerNorm with weight and bias (formulas and derivative: include/wersa/ops/layernorm.h;
// arithmetic as the CPU kernel, src/kernels/cpu/layernorm.cpp):
//   forward   mean, then rstd = 1 / sqrt(mean_c (x - mean)^2 + eps), two passes in double;
//             y = (x - T(mean)) T(rstd) w + b
//   backward  sg = mean_c(dy w), sgx = mean_c(dy w (x - mean) rstd) in double,
//             dx = T(rstd) (dy w - T(sg) - (x - T(mean)) T(rstd) T(sgx))   (overwritten);
//             dw += sum_n dy (x - mean) rstd, db += sum_n dy   (in double)
// Forward: one block per row (rows n = blockIdx.x, + gridDim.x, ...); thread t takes columns t,
// t + B, ... (B = row_threads(C)); each row sum is each thread's columns in column order in double,
// then block_sum's fixed tree: the order depends only on C. The row is kept in shared memory
// across the three passes when it fits (x read once from global memory).
// Backward: block j of G = param_chunks(N) takes the fixed rows [N j / G, N (j + 1) / G) one after
// the other, each as in the forward (two block_sums for dx); thread t adds its columns' terms of
// dw and db to the chunk's partial sums, in row order, in double (in shared memory when they fit,
// else in scratch), then writes them to scratch; column_sums adds the G partial sums of each
// column in order to dw[c] and db[c]. No atomics: bitwise reproducible. Scratch: [G, C] doubles
// for each of dw, db that is defined.
#include "common.cuh"
#include "kernels.h"
#include "norm.cuh"
#include "wersa/ops/layernorm.h"

namespace wersa::cuda {

namespace {

template <class T>
__global__ void layernorm_fwd_kernel(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t N,
                                     int64_t C, double eps, bool cache) {
  __shared__ double red[32];
  WERSA_DYNAMIC_SHARED(T, xs);  // [C]: the row (cache); each thread reads back its own columns only
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T* xr = x + n * C;
    const T* row = cache ? xs : xr;
    double s = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const T v = xr[c];
      if (cache) xs[c] = v;
      s += double(v);
    }
    const double m = block_sum(s, red) / double(C);
    double q = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const double d = double(row[c]) - m;
      q += d * d;
    }
    const double r = 1.0 / sqrt(block_sum(q, red) / double(C) + eps);
    if (threadIdx.x == 0) {
      if (mean) mean[n] = T(m);
      if (rstd) rstd[n] = T(r);
    }
    const T mt = T(m), rt = T(r);
    T* yr = y + n * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) yr[c] = (row[c] - mt) * rt * w[c] + b[c];
  }
}

// pw, pb: [G, C] partial sums of dw and db (null: not wanted). part_in_smem: the chunk's partial
// sums are kept in shared memory (else added up in pw[j, :], pb[j, :] directly). cache: dy and x of
// the row are kept in shared memory.
template <class T>
__global__ void layernorm_bwd_kernel(T* dx, double* pw, double* pb, const T* dy, const T* x, const T* w,
                                     const T* mean, const T* rstd, int64_t N, int64_t C, int64_t chunks,
                                     bool part_in_smem, bool cache) {
  __shared__ double red[32];
  // [C] partial dw, [C] partial db (those wanted, when part_in_smem), then [C] dy, [C] x in T (cache)
  WERSA_DYNAMIC_SHARED(double, smem);
  const int64_t j = blockIdx.x, n0 = N * j / chunks, n1 = N * (j + 1) / chunks;
  double* next = smem;
  double* sw = pw ? (part_in_smem ? next : pw + j * C) : nullptr;
  if (pw && part_in_smem) next += C;
  double* sb = pb ? (part_in_smem ? next : pb + j * C) : nullptr;
  if (pb && part_in_smem) next += C;
  T* dys = reinterpret_cast<T*>(next);
  T* xs = dys + C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    if (sw) sw[c] = 0;
    if (sb) sb[c] = 0;
  }
  for (int64_t n = n0; n < n1; ++n) {
    const T* dyr = dy + n * C;
    const T* xr = x + n * C;
    const double m = double(mean[n]), r = double(rstd[n]);
    double s1 = 0, s2 = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const T d = dyr[c], v = xr[c];
      if (sw) sw[c] += double(d) * (double(v) - m) * r;
      if (sb) sb[c] += double(d);
      if (dx) {
        if (cache) {
          dys[c] = d;
          xs[c] = v;
        }
        const double g = double(d) * double(w[c]);
        s1 += g;
        s2 += g * (double(v) - m) * r;
      }
    }
    if (dx) {  // the same for every thread of the block
      const T sgt = T(block_sum(s1, red) / double(C)), sgxt = T(block_sum(s2, red) / double(C));
      const T mt = T(m), rt = T(r);
      T* dxr = dx + n * C;
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        const T d = cache ? dys[c] : dyr[c], v = cache ? xs[c] : xr[c];
        dxr[c] = rt * (d * w[c] - sgt - (v - mt) * rt * sgxt);
      }
    }
  }
  if (part_in_smem)
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      if (pw) pw[j * C + c] = sw[c];
      if (pb) pb[j * C + c] = sb[c];
    }
}

}  // namespace

void layernorm_fwd(Ctx& ctx, const LayerNormFwd& a) {
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  if (N == 0) return;
  by_dtype(a.y.dtype, "layernorm_fwd", [&](auto t) {
    using T = decltype(t);
    const size_t row_bytes = size_t(C) * sizeof(T);
    const bool cache = row_bytes <= kSmemBudget;
    WERSA_LAUNCH(layernorm_fwd_kernel<T>, row_grid(N), row_threads(C), cache ? row_bytes : 0, stream(ctx),
                 a.y.ptr<T>(), a.mean.defined() ? a.mean.ptr<T>() : nullptr,
                 a.rstd.defined() ? a.rstd.ptr<T>() : nullptr, a.x.ptr<T>(), a.w.ptr<T>(), a.b.ptr<T>(), N, C,
                 a.eps, cache);
  });
}

void layernorm_bwd(Ctx& ctx, const LayerNormBwd& a) {
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  const int64_t chunks = param_chunks(N);
  const int64_t parts = (a.dw.defined() ? 1 : 0) + (a.db.defined() ? 1 : 0);
  double* part = parts > 0 && chunks > 0 ? ctx.take<double>(parts * chunks * C) : nullptr;
  if (ctx.planning()) return;
  if (N == 0 || (!a.dx.defined() && parts == 0)) return;
  double* pw = part && a.dw.defined() ? part : nullptr;
  double* pb = part && a.db.defined() ? part + (pw ? chunks * C : 0) : nullptr;
  by_dtype(a.dy.dtype, "layernorm_bwd", [&](auto t) {
    using T = decltype(t);
    const size_t part_bytes = part ? size_t(parts * C) * sizeof(double) : 0;
    const size_t cache_bytes = a.dx.defined() ? 2 * size_t(C) * sizeof(T) : 0;
    const bool part_in_smem = part && part_bytes <= kSmemBudget;
    const size_t used = part_in_smem ? part_bytes : 0;
    const bool cache = cache_bytes > 0 && used + cache_bytes <= kSmemBudget;
    WERSA_LAUNCH(layernorm_bwd_kernel<T>, unsigned(chunks), row_threads(C), used + (cache ? cache_bytes : 0),
                 stream(ctx), a.dx.defined() ? a.dx.ptr<T>() : nullptr, pw, pb, a.dy.ptr<T>(), a.x.ptr<T>(),
                 a.w.ptr<T>(), a.mean.ptr<T>(), a.rstd.ptr<T>(), N, C, chunks, part_in_smem, cache);
    if (pw && C > 0)
      WERSA_LAUNCH(column_sums<T>, blocks_for(C), kThreads, 0, stream(ctx), a.dw.ptr<T>(),
                   static_cast<const double*>(pw), chunks, C);
    if (pb && C > 0)
      WERSA_LAUNCH(column_sums<T>, blocks_for(C), kThreads, 0, stream(ctx), a.db.ptr<T>(),
                   static_cast<const double*>(pb), chunks, C);
  });
}

}  // namespace wersa::cuda

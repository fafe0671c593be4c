// CUDA level gates (formulas: include/wersa/ops/gate.h; the CPU reference src/kernels/cpu/gate.cpp):
//   forward   g = sigmoid(z) (overflow-free: 1 / (1 + e^-z) for z >= 0, e^z / (1 + e^z) else),
//             gamma = g * s[l]                                    (both overwritten)
//   backward  dz = dgamma * s[l] * g * (1 - g)                    (overwritten)
//             ds[l] += sum_n double(dgamma) double(g)             (accumulated)
// The forward and dz: one thread per element of [N, L+1], grid-stride (the CPU's arithmetic in the
// CPU's order). ds: pass 1, a thread per (row chunk j, column l) sums its chunk's rows in order in
// double into scratch part[j, l] (chunks: a function of N and L+1 only); pass 2, a thread per
// column adds the chunks' partials in order and ds[l] += T(sum). No atomics: bitwise reproducible
// (the double sum is the CPU's serial sum regrouped by chunks). Scratch: part [G, L+1] doubles.
#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/gate.h"

namespace wersa::cuda {

namespace {

__device__ inline float exp_t(float v) { return expf(v); }
__device__ inline double exp_t(double v) { return exp(v); }

template <class T>
__device__ T sigmoid(T z) {
  if (z >= T(0)) return T(1) / (T(1) + exp_t(-z));
  const T e = exp_t(z);
  return e / (T(1) + e);
}

template <class T>
__global__ void gate_fwd_kernel(T* gamma, T* g, const T* z, const T* s, int64_t n, int64_t L1) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const T v = sigmoid(z[e]);
    g[e] = v;
    gamma[e] = v * s[e % L1];
  }
}

template <class T>
__global__ void gate_dz_kernel(T* dz, const T* dgamma, const T* g, const T* s, int64_t n, int64_t L1) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const T ge = g[e];
    dz[e] = dgamma[e] * s[e % L1] * ge * (T(1) - ge);
  }
}

// part[j, l] = sum over rows n of chunk j (n in [j rows, (j+1) rows), ascending) of
// double(dgamma[n, l]) double(g[n, l]).
template <class T>
__global__ void gate_ds_partials(double* part, const T* dgamma, const T* g, int64_t N, int64_t L1,
                                 int64_t rows, int64_t chunks) {
  const int64_t total = chunks * L1;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
       e += int64_t(blockDim.x) * gridDim.x) {
    const int64_t j = e / L1, l = e % L1, n0 = j * rows, n1 = n0 + rows < N ? n0 + rows : N;
    double acc = 0;
    for (int64_t n = n0; n < n1; ++n) acc += double(dgamma[n * L1 + l]) * double(g[n * L1 + l]);
    part[e] = acc;
  }
}

template <class T>
__global__ void gate_ds_finish(T* ds, const double* part, int64_t chunks, int64_t L1) {
  for (int64_t l = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; l < L1;
       l += int64_t(blockDim.x) * gridDim.x) {
    double acc = 0;
    for (int64_t j = 0; j < chunks; ++j) acc += part[j * L1 + l];
    ds[l] += T(acc);
  }
}

// Rows per chunk of ds: about 64k (chunk, column) threads in pass 1, at least 64 rows a chunk.
int64_t ds_rows(int64_t N, int64_t L1) {
  const int64_t want = L1 > 0 && L1 < 65536 ? 65536 / L1 : 1;
  const int64_t rows = (N + want - 1) / want;
  return rows < 64 ? 64 : rows;
}

}  // namespace

void gate_fwd(Ctx& ctx, const GateFwd& a) {
  const int64_t n = a.z.numel(), L1 = a.z.dim(1);
  if (n == 0) return;
  by_dtype(a.gamma.dtype, "gate_fwd", [&](auto tag) {
    using T = decltype(tag);
    WERSA_LAUNCH(gate_fwd_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.gamma.ptr<T>(), a.g.ptr<T>(),
                 a.z.ptr<T>(), a.s.ptr<T>(), n, L1);
  });
}

void gate_bwd(Ctx& ctx, const GateBwd& a) {
  const int64_t N = a.g.dim(0), L1 = a.g.dim(1), n = N * L1;
  const int64_t rows = ds_rows(N, L1), chunks = (N + rows - 1) / rows;
  double* part = a.ds.defined() && n > 0 ? ctx.take<double>(chunks * L1) : nullptr;
  if (ctx.planning() || n == 0) return;  // no rows: ds += 0
  by_dtype(a.dgamma.dtype, "gate_bwd", [&](auto tag) {
    using T = decltype(tag);
    if (a.dz.defined())
      WERSA_LAUNCH(gate_dz_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.dz.ptr<T>(),
                   a.dgamma.ptr<T>(), a.g.ptr<T>(), a.s.ptr<T>(), n, L1);
    if (!part) return;
    WERSA_LAUNCH(gate_ds_partials<T>, blocks_for(chunks * L1), kThreads, 0, stream(ctx), part,
                 a.dgamma.ptr<T>(), a.g.ptr<T>(), N, L1, rows, chunks);
    WERSA_LAUNCH(gate_ds_finish<T>, blocks_for(L1), kThreads, 0, stream(ctx), a.ds.ptr<T>(), part, chunks,
                 L1);
  });
}

}  // namespace wersa::cuda

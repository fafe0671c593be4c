// CUDA SwiGLU (formulas and derivatives: include/wersa/ops/swiglu.h; arithmetic as the CPU kernel,
// src/kernels/cpu/swiglu.cpp):
//   y = g s(g) u,   dgate = dy u s (1 + g (1 - s)),   dup = dy g s,   s = sigmoid(g)
// with sigmoid from the CUDA math library's exp in the tensor's type, exp taken of a non-positive
// number only, in float with the CPU's underflow cut (act_math.cuh; the CPU's float path uses a
// polynomial exp accurate to a few ulp).
// Elementwise form: a grid-stride loop, one element per thread and step; each input read once and
// each output written once, all inputs of an element read before its outputs are written (so
// outputs may alias inputs at the same index). Packed form (gate_up [R, 2F], y / dy [R, F]): a 2-D
// grid, blockIdx.x over column tiles of F, rows r = blockIdx.y, + gridDim.y, ...; thread reads
// gate_up[r, f] and gate_up[r, F + f] (coalesced, no index division). No reductions.
#include "act_math.cuh"
#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/swiglu.h"

namespace wersa::cuda {

namespace {

template <class T>
__device__ inline T fwd_one(T g, T u) {
  return g * sigmoid_vx_t(g) * u;
}

template <class T>
__device__ inline void bwd_one(T d, T g, T u, T& dg, T& du) {
  const T s = sigmoid_vx_t(g);
  dg = d * u * s * (T(1) + g * (T(1) - s));
  du = d * g * s;
}

template <class T>
__global__ void swiglu_fwd_kernel(T* y, const T* gate, const T* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    y[i] = fwd_one(gate[i], up[i]);
}

template <class T>
__global__ void swiglu_bwd_kernel(T* dgate, T* dup, const T* dy, const T* gate, const T* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    T dg, du;
    bwd_one(dy[i], gate[i], up[i], dg, du);
    dgate[i] = dg;
    dup[i] = du;
  }
}

template <class T>
__global__ void swiglu_fwd_packed(T* y, const T* gu, int64_t R, int64_t F) {
  const int64_t f = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (f >= F) return;  // no barriers in this kernel
  for (int64_t r = blockIdx.y; r < R; r += gridDim.y) {
    const T* row = gu + 2 * r * F;
    y[r * F + f] = fwd_one(row[f], row[F + f]);
  }
}

template <class T>
__global__ void swiglu_bwd_packed(T* dgu, const T* dy, const T* gu, int64_t R, int64_t F) {
  const int64_t f = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (f >= F) return;  // no barriers in this kernel
  for (int64_t r = blockIdx.y; r < R; r += gridDim.y) {
    const T* row = gu + 2 * r * F;
    T* drow = dgu + 2 * r * F;
    bwd_one(dy[r * F + f], row[f], row[F + f], drow[f], drow[F + f]);
  }
}

// The 2-D grid and block of the packed kernels: column tiles of F, rows (capped; kernels loop).
struct Packed {
  int64_t R = 0, F = 0;
  dim3 grid, block;
  explicit Packed(const Tensor& y) {
    const int64_t n = y.numel();
    F = y.dim(y.rank() - 1);
    R = F > 0 ? n / F : 0;
    int t = 32;
    while (t < kThreads && t < F) t *= 2;
    const int64_t tiles = (F + t - 1) / t;
    block = dim3(unsigned(t));
    grid = dim3(unsigned(tiles), unsigned(R < 65535 ? R : 65535));
  }
};

}  // namespace

void swiglu_fwd(Ctx& ctx, const SwigluFwd& a) {
  by_dtype(a.y.dtype, "swiglu_fwd", [&](auto t) {
    using T = decltype(t);
    if (!a.gate_up.defined()) {
      const int64_t n = a.y.numel();
      if (n > 0)
        WERSA_LAUNCH(swiglu_fwd_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.y.ptr<T>(),
                     a.gate.ptr<T>(), a.up.ptr<T>(), n);
      return;
    }
    const Packed p(a.y);
    if (p.R > 0)
      WERSA_LAUNCH(swiglu_fwd_packed<T>, p.grid, p.block, 0, stream(ctx), a.y.ptr<T>(), a.gate_up.ptr<T>(),
                   p.R, p.F);
  });
}

void swiglu_bwd(Ctx& ctx, const SwigluBwd& a) {
  by_dtype(a.dy.dtype, "swiglu_bwd", [&](auto t) {
    using T = decltype(t);
    if (!a.gate_up.defined()) {
      const int64_t n = a.dy.numel();
      if (n > 0)
        WERSA_LAUNCH(swiglu_bwd_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.dgate.ptr<T>(),
                     a.dup.ptr<T>(), a.dy.ptr<T>(), a.gate.ptr<T>(), a.up.ptr<T>(), n);
      return;
    }
    const Packed p(a.dy);
    if (p.R > 0)
      WERSA_LAUNCH(swiglu_bwd_packed<T>, p.grid, p.block, 0, stream(ctx), a.dgate_up.ptr<T>(), a.dy.ptr<T>(),
                   a.gate_up.ptr<T>(), p.R, p.F);
  });
}

}  // namespace wersa::cuda

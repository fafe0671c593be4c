// Internal to the CUDA kernels: helpers every kernel file shares. Included after launch.cuh.
//   stream(ctx)                the context's stream
//   blocks_for(n, threads)     a 1-D grid covering n items (capped; kernels loop grid-stride)
//   block_sum(v, scratch)      a fixed-order sum over the block (warp shuffle tree, then warp 0):
//                              the same order on every run, so results are bitwise reproducible
//   by_dtype(dt, op, f)        calls f(float{}) or f(double{}) for an f32 / f64 tensor
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "../op_args.h"
#include "launch.cuh"

namespace wersa::cuda {

inline cudaStream_t stream(const Ctx& ctx) { return static_cast<cudaStream_t>(ctx.stream()); }

constexpr int kThreads = 256;  // threads per block of the elementwise kernels

inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return unsigned(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}

// The bits of the bf16 nearest to x (ties to even; a NaN stays a quiet NaN): float_to_bf16 of
// wersa/tensor/bf16.h on the device.
__device__ inline uint16_t bf16_bits(float x) {
  unsigned u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
// y[i] = bf16_bits(x[i]), i < n, on the context's stream (elementwise.cu).
void round_to_bf16(Ctx& ctx, uint16_t* y, const float* x, int64_t n);

template <class F>
void by_dtype(DType dt, const char* op, F&& f) {
  if (dt == DType::F32)
    f(float{});
  else if (dt == DType::F64)
    f(double{});
  else
    WERSA_FAIL(op, ": no CUDA kernel for dtype ", dtype_name(dt));
}

// Sum of v over the block's threads, returned to every thread. `shared` holds 32 values of T.
// blockDim.x must be a multiple of 32. Every thread of the block must call it (it has barriers).
template <class T>
__device__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  __syncthreads();  // `shared` may still be read by an earlier call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T s = lane < warps ? shared[lane] : T(0);
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
  if (threadIdx.x == 0) shared[0] = s;
  __syncthreads();
  return shared[0];
}

template <class T>
__device__ T block_max(T v, T* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int o = 16; o > 0; o >>= 1) {
    const T w = __shfl_down_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T s = lane < warps ? shared[lane] : shared[0];
  for (int o = 16; o > 0; o >>= 1) {
    const T w = __shfl_down_sync(0xffffffffu, s, o);
    s = w > s ? w : s;
  }
  if (threadIdx.x == 0) shared[0] = s;
  __syncthreads();
  return shared[0];
}

}  // namespace wersa::cuda

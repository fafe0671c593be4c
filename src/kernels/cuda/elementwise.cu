// CUDA elementwise ops: add, axpy (in double, rounded once, as on the CPU), scale, clipping by a
// norm held on the device, copy, the conversion to bf16 (bit for bit the CPU's rounding), and the
// sum of squares as a fixed-order two-pass reduction in double: fixed chunks of the tensor, one
// block each (grid-stride over the chunk by the block's threads, then block_sum), the chunk sums
// written to scratch and summed by one block in the same tree. The result depends only on the
// element count, not on scheduling: bitwise the same on every run.
#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/elementwise.h"

namespace wersa::cuda {

namespace {

template <class T>
__global__ void add_kernel(T* y, const T* a, const T* b, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    y[i] = a[i] + b[i];
}

template <class T>
__global__ void axpy_kernel(T* y, const T* x, double alpha, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    y[i] = T(double(y[i]) + alpha * double(x[i]));
}

template <class T>
__global__ void scale_kernel(T* x, T alpha, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    x[i] *= alpha;
}

// The factor from the norm on the device, in double as on the host; no read-back.
template <class T>
__global__ void clip_by_norm_kernel(T* x, const double* norm2, double max_norm, int64_t n) {
  const double norm = sqrt(norm2[0]);
  if (!(max_norm > 0) || !(norm > max_norm)) return;
  const T f = T(max_norm / norm);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    x[i] *= f;
}

__global__ void to_bf16_kernel(uint16_t* y, const float* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    y[i] = bf16_bits(x[i]);
}

constexpr int64_t kChunk = 8192;  // elements per block of the sum of squares

template <class T>
__global__ void sum_squares_chunks(double* part, const T* x, int64_t n) {
  __shared__ double shared[32];
  const int64_t i0 = blockIdx.x * kChunk, i1 = i0 + kChunk < n ? i0 + kChunk : n;
  double s = 0;
  for (int64_t i = i0 + threadIdx.x; i < i1; i += blockDim.x) s += double(x[i]) * double(x[i]);
  s = block_sum(s, shared);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void sum_parts(double* out, const double* part, int64_t n) {
  __shared__ double shared[32];
  double s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += part[i];
  s = block_sum(s, shared);
  if (threadIdx.x == 0) out[0] = s;
}

}  // namespace

void add_fwd(Ctx& ctx, const AddFwd& a) {
  const int64_t n = a.y.numel();
  by_dtype(a.y.dtype, "add_fwd", [&](auto t) {
    using T = decltype(t);
    WERSA_LAUNCH(add_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.y.ptr<T>(), a.a.ptr<T>(),
                 a.b.ptr<T>(), n);
  });
}

void axpy(Ctx& ctx, const AxpyArgs& a) {
  const int64_t n = a.y.numel();
  by_dtype(a.y.dtype, "axpy", [&](auto t) {
    using T = decltype(t);
    WERSA_LAUNCH(axpy_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.y.ptr<T>(), a.x.ptr<T>(), a.alpha,
                 n);
  });
}

void scale_inplace(Ctx& ctx, const ScaleArgs& a) {
  const int64_t n = a.x.numel();
  by_dtype(a.x.dtype, "scale_inplace", [&](auto t) {
    using T = decltype(t);
    WERSA_LAUNCH(scale_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.x.ptr<T>(), T(a.alpha), n);
  });
}

void clip_by_norm(Ctx& ctx, const ClipByNormArgs& a) {
  const int64_t n = a.x.numel();
  by_dtype(a.x.dtype, "clip_by_norm", [&](auto t) {
    using T = decltype(t);
    WERSA_LAUNCH(clip_by_norm_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.x.ptr<T>(),
                 a.norm2.ptr<double>(), a.max_norm, n);
  });
}

void copy_fwd(Ctx& ctx, const CopyArgs& a) {
  if (a.x.data == a.y.data) return;
  device_copy(Device::CUDA, a.y.data, Device::CUDA, a.x.data, a.y.bytes(), ctx.stream());
}

void round_to_bf16(Ctx& ctx, uint16_t* y, const float* x, int64_t n) {
  if (n > 0) WERSA_LAUNCH(to_bf16_kernel, blocks_for(n), kThreads, 0, stream(ctx), y, x, n);
}

void convert_bf16(Ctx& ctx, const ConvertArgs& a) {
  round_to_bf16(ctx, static_cast<uint16_t*>(a.y.data), a.x.ptr<float>(), a.x.numel());
}

void sum_squares(Ctx& ctx, const SumSquaresArgs& a) {
  const int64_t n = a.x.numel();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  double* part = ctx.take<double>(chunks > 0 ? chunks : 1);
  if (ctx.planning()) return;
  by_dtype(a.x.dtype, "sum_squares", [&](auto t) {
    using T = decltype(t);
    if (chunks > 0)
      WERSA_LAUNCH(sum_squares_chunks<T>, unsigned(chunks), kThreads, 0, stream(ctx), part, a.x.ptr<T>(), n);
  });
  WERSA_LAUNCH(sum_parts, 1, 1024, 0, stream(ctx), a.out.ptr<double>(), static_cast<const double*>(part),
               chunks);
}

}  // namespace wersa::cuda

// Internal to the CUDA row-normalisation kernels (rmsnorm.cu, layernorm.cu).
//   row_threads(C)          threads of the block that handles one row of C columns: a power of two
//                           in [32, 1024], about 4 columns a thread. A function of C only, so the
//                           fixed reduction order of a row (block_sum) depends only on C.
//   row_grid(N)             blocks of a kernel that takes rows n = blockIdx.x, + gridDim.x, ...
//   param_chunks(N)         G: the backward kernels' fixed row chunks [N j / G, N (j + 1) / G), one
//                           block each, for the partial sums of the parameter gradients
//   kSmemBudget             dynamic shared memory a kernel may use without opting in (48 KiB on
//                           every GPU), less room for the static block_sum buffer
//   column_sums<T>          dw[c] = T(double(dw[c]) + sum_j part[j, c]), j in order: the second
//                           pass of the deterministic parameter-gradient reductions
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace wersa::cuda {
namespace {

inline int row_threads(int64_t C) {
  int t = 32;
  while (t < 1024 && int64_t(t) * 4 < C) t *= 2;
  return t;
}

inline unsigned row_grid(int64_t N) { return unsigned(N < (int64_t(1) << 20) ? N : (int64_t(1) << 20)); }

constexpr int64_t kMaxChunks = 512;
inline int64_t param_chunks(int64_t N) { return N < kMaxChunks ? N : kMaxChunks; }

constexpr size_t kSmemBudget = 40 * 1024;

template <class T>
__global__ void column_sums(T* dw, const double* part, int64_t chunks, int64_t C) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C;
       c += int64_t(blockDim.x) * gridDim.x) {
    double s = 0;
    for (int64_t j = 0; j < chunks; ++j) s += part[j * C + c];
    dw[c] = T(double(dw[c]) + s);
  }
}

}  // namespace
}  // namespace wersa::cuda

// Internal to the CUDA kernels: what makes one .cu source run both on a GPU (nvcc) and in the CUDA
// simulator (WERSA_CUDA=SIM: the host compiler with src/backend/sim/prelude.h force-included).
//   WERSA_LAUNCH(kernel, grid, block, smem, stream, args...)  launches and checks the launch
//   WERSA_DYNAMIC_SHARED(T, name)                             T* name: the dynamic shared memory
// Kernel sources use nothing else that differs between the two (no cooperative groups, wmma, CUB
// or inline PTX without a portable path the simulator runs).
#pragma once
#include <cuda_runtime.h>

#include "wersa/common/error.h"

#if defined(__CUDACC__)
#define WERSA_DYNAMIC_SHARED(T, NAME)                            \
  extern __shared__ __align__(16) unsigned char NAME##_bytes_[]; \
  T* NAME = reinterpret_cast<T*>(NAME##_bytes_)
#endif

namespace wersa::cuda {

// Raises the pending error of the last launch (a configuration the GPU refused; in the simulator
// also a failed kernel: its block, thread and what went wrong).
inline void check_launch(const char* kernel) {
  const cudaError_t e = cudaGetLastError();
  WERSA_CHECK(e == cudaSuccess, "CUDA kernel ", kernel, ": ", cudaGetErrorString(e));
}

template <class... P, class... A>
void launch(const char* name, void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
            A&&... args) {
#if defined(__CUDACC__)
  k<<<grid, block, smem, stream>>>(std::forward<A>(args)...);
#else
  ::wersa::sim::launch(name, k, grid, block, smem, stream, std::forward<A>(args)...);
#endif
  check_launch(name);
}

}  // namespace wersa::cuda

#define WERSA_LAUNCH(KERNEL, GRID, BLOCK, SMEM, STREAM, ...) \
  ::wersa::cuda::launch(#KERNEL, KERNEL, GRID, BLOCK, SMEM, STREAM, __VA_ARGS__)

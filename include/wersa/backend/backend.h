// The backend layer: memory and synchronisation only, nothing about models. Every op receives a
// Device through its tensors; CUDA entry points live in namespace wersa::cuda and, in a build
// without CUDA, come from cuda_stub.cpp, which throws a clear error.
#pragma once
#include <cstddef>
#include <string>

#include "wersa/tensor/tensor.h"

namespace wersa {

void* device_alloc(Device d, size_t bytes);  // zero-filled
void device_free(Device d, void* p);
void device_memset0(const Tensor& t);
// Copy between tensors of equal dtype and element count (any device pair).
void tensor_copy(const Tensor& dst, const Tensor& src);
void device_sync(Device d);
bool cuda_available();  // built with CUDA and a GPU is present

namespace cuda {
void* alloc(size_t bytes);
void free(void* p);
void memset0(void* p, size_t bytes);
void copy_h2d(void* dst, const void* src, size_t bytes);
void copy_d2h(void* dst, const void* src, size_t bytes);
void copy_d2d(void* dst, const void* src, size_t bytes);
void sync();
bool available();
// Raised by every CUDA op entry that is not implemented (yet) or not built.
[[noreturn]] void unavailable(const char* op);
}  // namespace cuda

}  // namespace wersa

namespace wersa {
// Threads used by CPU kernels (OpenMP and BLAS); 0 = all cores. Returns the count in effect.
int set_cpu_threads(int n);
}  // namespace wersa

namespace wersa {
// OpenBLAS (0.3.21, Debian 12) falls back to its slowest x86 kernels ("Prescott", SSE3) on CPUs
// it does not recognise, such as many virtual machines' generic Xeon models; its kernel choice is
// made when the library loads, from OPENBLAS_CORETYPE. When that variable is unset and the
// fallback was taken on a CPU with AVX-512 or AVX2+FMA, this sets it (SkylakeX or Haswell) and
// re-executes the program once. Call first thing in main(); a no-op otherwise.
void select_blas_kernels(char** argv);
// The OpenBLAS kernel family in use, e.g. "skylakex".
std::string blas_kernel_name();
}  // namespace wersa

// CUDA backend, memory layer: allocation, copies and synchronisation on the default device.
// Op kernels arrive with the CUDA backend issue; until then each op's cuda:: entry reports
// that it is not implemented through cuda::unavailable().
#include <cuda_runtime.h>

#include "wersa/backend/backend.h"

namespace wersa::cuda {

static void check(cudaError_t e, const char* what) {
  WERSA_CHECK(e == cudaSuccess, "CUDA error in ", what, ": ", cudaGetErrorString(e));
}

[[noreturn]] void unavailable(const char* op) {
  WERSA_FAIL(op, ": no CUDA kernel for this op yet; run with device cpu");
}
void* alloc(size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), "cudaMalloc");
  return p;
}
void free(void* p) { check(cudaFree(p), "cudaFree"); }
void memset0(void* p, size_t bytes) { check(cudaMemset(p, 0, bytes), "cudaMemset"); }
void copy_h2d(void* d, const void* s, size_t n) {
  check(cudaMemcpy(d, s, n, cudaMemcpyHostToDevice), "copy h2d");
}
void copy_d2h(void* d, const void* s, size_t n) {
  check(cudaMemcpy(d, s, n, cudaMemcpyDeviceToHost), "copy d2h");
}
void copy_d2d(void* d, const void* s, size_t n) {
  check(cudaMemcpy(d, s, n, cudaMemcpyDeviceToDevice), "copy d2d");
}
void sync() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
bool available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

}  // namespace wersa::cuda

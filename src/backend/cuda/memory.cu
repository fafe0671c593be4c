// CUDA backend, memory layer: allocation, copies, synchronisation and cuBLAS handles on the
// default device. Op kernels live in src/kernels/cuda.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "wersa/backend/backend.h"
#include "wersa/common/error.h"

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
static cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }
void copy_h2d(void* d, const void* s, size_t n, void* stream) {
  check(cudaMemcpyAsync(d, s, n, cudaMemcpyHostToDevice, as_stream(stream)), "copy h2d");
}
void copy_d2h(void* d, const void* s, size_t n, void* stream) {
  check(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToHost, as_stream(stream)), "copy d2h");
  check(cudaStreamSynchronize(as_stream(stream)), "copy d2h");  // the host reads it next
}
void copy_d2d(void* d, const void* s, size_t n, void* stream) {
  check(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToDevice, as_stream(stream)), "copy d2d");
}
void sync() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
bool available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}
void* blas_create(void* stream) {
  cublasHandle_t h = nullptr;
  WERSA_CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cuBLAS: cannot create a handle");
  WERSA_CHECK(cublasSetStream(h, as_stream(stream)) == CUBLAS_STATUS_SUCCESS,
              "cuBLAS: cannot set the stream");
  return h;
}
void blas_destroy(void* h) {
  if (h) cublasDestroy(static_cast<cublasHandle_t>(h));
}

}  // namespace wersa::cuda

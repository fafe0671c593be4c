// CUDA backend, memory layer: allocation, copies, streams, synchronisation and cuBLAS handles on
// the default device. Op kernels live in src/kernels/cuda. The same source builds for a GPU (nvcc)
// and for the CUDA simulator (WERSA_CUDA=SIM).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <mutex>
#include <unordered_map>

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
void* alloc_pinned(size_t bytes) {
  void* p = nullptr;
  check(cudaMallocHost(&p, bytes), "cudaMallocHost");
  return p;
}
void free_pinned(void* p) { check(cudaFreeHost(p), "cudaFreeHost"); }
void memset0_async(void* p, size_t bytes, void* stream) {
  check(cudaMemsetAsync(p, 0, bytes, as_stream(stream)), "cudaMemsetAsync");
}
void sync() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
void* stream_create() {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  return s;
}
void stream_destroy(void* s) {
  if (s) cudaStreamDestroy(as_stream(s));
}
void stream_sync(void* s) { check(cudaStreamSynchronize(as_stream(s)), "cudaStreamSynchronize"); }
bool available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}
size_t memory_available() {
  size_t free_bytes = 0, total = 0;
  return cudaMemGetInfo(&free_bytes, &total) == cudaSuccess ? free_bytes : 0;
}
// cuBLAS's workspace: its recommended size for Hopper. Allocated once per handle (a context has
// one), so no cuBLAS call allocates during a run.
constexpr size_t kBlasWorkspace = size_t(32) << 20;
std::mutex g_ws_mutex;
std::unordered_map<void*, void*> g_workspace;  // handle -> workspace

void* blas_create(void* stream) {
  cublasHandle_t h = nullptr;
  WERSA_CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cuBLAS: cannot create a handle");
  WERSA_CHECK(cublasSetStream(h, as_stream(stream)) == CUBLAS_STATUS_SUCCESS,
              "cuBLAS: cannot set the stream");
  void* ws = alloc(kBlasWorkspace);
  WERSA_CHECK(cublasSetWorkspace(h, ws, kBlasWorkspace) == CUBLAS_STATUS_SUCCESS,
              "cuBLAS: cannot set the workspace");
  std::lock_guard<std::mutex> lock(g_ws_mutex);
  g_workspace[h] = ws;
  return h;
}
void blas_destroy(void* h) {
  if (!h) return;
  cublasDestroy(static_cast<cublasHandle_t>(h));
  std::lock_guard<std::mutex> lock(g_ws_mutex);
  auto it = g_workspace.find(h);
  if (it != g_workspace.end()) {
    cudaFree(it->second);
    g_workspace.erase(it);
  }
}

}  // namespace wersa::cuda

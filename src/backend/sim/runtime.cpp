// The CUDA simulator's runtime: the CUDA runtime API functions the engine calls, defined over the
// host. Device memory is heap memory (exactly the bytes asked for, so AddressSanitizer sees an
// access one past the end), every call is synchronous, streams and events are tokens, and the
// device is one H100-like GPU. Copies check what a GPU would: that the device side of a copy lies
// inside one cudaMalloc'd block and the host side does not.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "state.h"

namespace wersa::sim {
namespace {

struct Globals {
  std::mutex mutex;
  std::map<const char*, size_t> device;  // cudaMalloc'd blocks: start -> bytes
  std::map<const char*, size_t> pinned;  // cudaMallocHost'd blocks
  size_t device_bytes = 0;
  cudaError_t pending = cudaSuccess;
  std::deque<std::string> messages;  // kept, so that pointers cudaGetErrorString returned stay valid
  const char* last_message = nullptr;
  std::unordered_map<const void*, size_t> max_smem;
};
Globals& g() {
  static Globals* gl = new Globals;  // never destroyed: used until the process ends
  return *gl;
}

constexpr size_t kDeviceMemory = size_t(80) << 30;

// The cudaMalloc'd block holding [p, p + n), or false.
bool in_device(const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  auto& d = g().device;
  auto it = d.upper_bound(c);
  if (it == d.begin()) return false;
  --it;
  return c >= it->first && c + n <= it->first + it->second;
}
bool touches_device(const void* p) { return in_device(p, 1); }

cudaError_t fail(cudaError_t e, const std::string& msg) {
  set_pending_error(e, msg);
  return e;
}

}  // namespace

void set_pending_error(cudaError_t e, const std::string& message) {
  std::lock_guard<std::mutex> lock(g().mutex);
  if (g().pending == cudaSuccess) g().pending = e;
  g().messages.push_back("CUDA simulator: " + message);
  g().last_message = g().messages.back().c_str();
}

size_t max_dynamic_shared(const void* fn) {
  std::lock_guard<std::mutex> lock(g().mutex);
  auto it = g().max_smem.find(fn);
  return it == g().max_smem.end() ? kDefaultSharedPerBlock : it->second;
}

}  // namespace wersa::sim

using namespace wersa::sim;

cudaError_t cudaMalloc(void** p, size_t bytes) {
  if (!p) return cudaErrorInvalidValue;
  *p = nullptr;
  std::lock_guard<std::mutex> lock(g().mutex);
  if (g().device_bytes + bytes > kDeviceMemory) return cudaErrorMemoryAllocation;
  void* q = nullptr;
  if (posix_memalign(&q, 256, bytes == 0 ? 1 : bytes) != 0) return cudaErrorMemoryAllocation;
  g().device[static_cast<const char*>(q)] = bytes;
  g().device_bytes += bytes;
  *p = q;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g().mutex);
  auto it = g().device.find(static_cast<const char*>(p));
  if (it == g().device.end()) return cudaErrorInvalidValue;
  g().device_bytes -= it->second;
  g().device.erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** p, size_t bytes) {
  if (!p) return cudaErrorInvalidValue;
  *p = std::malloc(bytes == 0 ? 1 : bytes);
  if (!*p) return cudaErrorMemoryAllocation;
  std::lock_guard<std::mutex> lock(g().mutex);
  g().pinned[static_cast<const char*>(*p)] = bytes;
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned int) { return cudaMallocHost(p, bytes); }

cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  std::lock_guard<std::mutex> lock(g().mutex);
  auto it = g().pinned.find(static_cast<const char*>(p));
  if (it == g().pinned.end()) return cudaErrorInvalidValue;
  g().pinned.erase(it);
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  std::lock_guard<std::mutex> lock(g().mutex);
  if (free_bytes) *free_bytes = kDeviceMemory - g().device_bytes;
  if (total) *total = kDeviceMemory;
  return cudaSuccess;
}

cudaError_t cudaMemset(void* p, int value, size_t n) {
  if (n == 0) return cudaSuccess;
  bool ok;
  {
    std::lock_guard<std::mutex> lock(g().mutex);
    ok = in_device(p, n);
  }
  if (!ok)
    return fail(cudaErrorInvalidValue,
                "cudaMemset of " + std::to_string(n) + " bytes outside a device allocation");
  std::memset(p, value, n);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t n, cudaStream_t) { return cudaMemset(p, value, n); }

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  if (n == 0) return cudaSuccess;
  bool ok = true;
  {
    std::lock_guard<std::mutex> lock(g().mutex);
    const bool dd = in_device(dst, n), sd = in_device(src, n);
    switch (kind) {
      case cudaMemcpyHostToDevice:
        ok = dd && !touches_device(src);
        break;
      case cudaMemcpyDeviceToHost:
        ok = sd && !touches_device(dst);
        break;
      case cudaMemcpyDeviceToDevice:
        ok = dd && sd;
        break;
      case cudaMemcpyHostToHost:
        ok = !touches_device(dst) && !touches_device(src);
        break;
      case cudaMemcpyDefault:
        ok = true;
        break;
      default:
        ok = false;
    }
  }
  if (!ok)
    return fail(cudaErrorInvalidValue, "cudaMemcpy of " + std::to_string(n) +
                                           " bytes: a pointer is not where the copy's kind says (kind " +
                                           std::to_string(int(kind)) + ")");
  std::memmove(dst, src, n);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, n, kind);
}

cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) {
  if (!s) return cudaErrorInvalidValue;
  *s = reinterpret_cast<cudaStream_t>(new char(0));  // a token: every launch is synchronous
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete reinterpret_cast<char*>(s);
  return cudaSuccess;
}

static cudaError_t sync_result() {
  std::lock_guard<std::mutex> lock(g().mutex);
  return g().pending;  // a failed kernel is reported at the next synchronisation too
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return sync_result(); }
cudaError_t cudaDeviceSynchronize() { return sync_result(); }

cudaError_t cudaGetLastError() {
  std::lock_guard<std::mutex> lock(g().mutex);
  const cudaError_t e = g().pending;
  g().pending = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  std::lock_guard<std::mutex> lock(g().mutex);
  return g().pending;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
      return "cudaErrorInvalidConfiguration";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    default:
      return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t e) {
  {
    std::lock_guard<std::mutex> lock(g().mutex);
    // The simulator's own message for the error it reported last (which kernel, block, thread).
    if (e != cudaSuccess && g().last_message) return g().last_message;
  }
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
    default:
      return "unknown error";
  }
}

cudaError_t cudaGetDeviceCount(int* n) {
  if (n) *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  if (d) *d = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (!p || d != 0) return cudaErrorInvalidValue;
  std::memset(p, 0, sizeof(*p));
  std::strncpy(p->name, "WERSA CUDA simulator (H100-like limits)", sizeof(p->name) - 1);
  p->totalGlobalMem = kDeviceMemory;
  p->sharedMemPerBlock = kDefaultSharedPerBlock;
  p->sharedMemPerBlockOptin = kMaxSharedPerBlockOptin;
  p->sharedMemPerMultiprocessor = 228 << 10;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = kMaxThreadsPerBlock;
  p->maxThreadsDim[0] = 1024, p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff, p->maxGridSize[1] = 65535, p->maxGridSize[2] = 65535;
  p->major = 9, p->minor = 0;
  p->multiProcessorCount = 132;
  p->maxThreadsPerMultiProcessor = 2048;
  p->l2CacheSize = 50 << 20;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int d) {
  if (!v || d != 0) return cudaErrorInvalidValue;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
      *v = kMaxThreadsPerBlock;
      break;
    case cudaDevAttrMaxSharedMemoryPerBlock:
      *v = int(kDefaultSharedPerBlock);
      break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *v = int(kMaxSharedPerBlockOptin);
      break;
    case cudaDevAttrMultiProcessorCount:
      *v = 132;
      break;
    case cudaDevAttrWarpSize:
      *v = 32;
      break;
    case cudaDevAttrComputeCapabilityMajor:
      *v = 9;
      break;
    case cudaDevAttrComputeCapabilityMinor:
      *v = 0;
      break;
    case cudaDevAttrMaxThreadsPerMultiProcessor:
      *v = 2048;
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* fn, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;  // hints: nothing to simulate
  if (value < 0 || size_t(value) > kMaxSharedPerBlockOptin)
    return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: " + std::to_string(value) +
                                           " bytes of dynamic shared memory, at most " +
                                           std::to_string(kMaxSharedPerBlockOptin));
  std::lock_guard<std::mutex> lock(g().mutex);
  g().max_smem[fn] = size_t(value);
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* v) {
  if (v) *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  if (v) *v = CUDART_VERSION;
  return cudaSuccess;
}

// Events: a launch finishes before it returns, so an event is the host time it was recorded.
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  if (!e) return cudaErrorInvalidValue;
  *e = reinterpret_cast<cudaEvent_t>(new double(0));
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<double*>(e);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  if (!e) return cudaErrorInvalidValue;
  *reinterpret_cast<double*>(e) =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return sync_result(); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (!ms || !a || !b) return cudaErrorInvalidValue;
  *ms = float(*reinterpret_cast<double*>(b) - *reinterpret_cast<double*>(a));
  return cudaSuccess;
}

// The CUDA simulator's prelude: force-included (-include) into every .cu file of a WERSA_CUDA=SIM
// build, which the host compiler compiles as C++. Types and runtime declarations come from the real
// CUDA headers (in host mode: __CUDACC__ and __CUDA_ARCH__ stay undefined); this adds what device
// code uses and host mode lacks -- the built-in variables (threadIdx, ...), barriers, warp
// collectives, atomics, intrinsics -- and the launcher. The simulator library (exec.cpp,
// runtime.cpp, cublas.cpp) defines the functions declared here and the CUDA runtime and cuBLAS
// entry points, so a SIM build links it instead of libcudart and libcublas.
//
// How device code maps onto the CPU: each CUDA thread is a fiber; a block's fibers run on one CPU
// thread, one at a time, each until it reaches a barrier or a warp collective (or exits); blocks
// are shared out over the CPU threads. __shared__ variables are thread_local (one copy per CPU
// thread, hence per running block).
#pragma once
#ifndef WERSA_CUDA_SIM
#define WERSA_CUDA_SIM 1
#endif
// Before the CUDA headers: they define __shared__ only when it is not defined.
#define __shared__ thread_local

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
// __noinline__ is left undefined: a macro of that name breaks glibc's __attribute__((__noinline__)).
#ifndef warpSize
#define warpSize 32
#endif

namespace wersa::sim {

// The simulated thread running on this CPU thread (null outside a kernel).
struct ThreadInfo {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
const ThreadInfo& current();

// Dynamic shared memory of the running block (the launch's smem bytes; poisoned at block start).
void* dynamic_shared();

// Barriers and warp collectives (the device side of exec.cpp).
// `site`: the barrier's place in the source ("file:line"), which identifies it.
void syncthreads(const char* site);
int syncthreads_reduce(const char* site, int kind, int pred);  // kind 1 count, 2 and, 3 or
void syncwarp(unsigned mask, const void* site);
enum class Shfl : int { Idx, Up, Down, Xor };
uint64_t shfl(unsigned mask, uint64_t bits, Shfl mode, int arg, int width, const void* site);
unsigned vote(unsigned mask, int kind, int pred, const void* site);  // kind 0 ballot, 1 any, 2 all
// A fault in device code (an argument no GPU accepts, a trap): ends the kernel with this message.
[[noreturn]] void device_fault(const char* what);

// Launching: runs `body` once per thread of the grid, then returns (launches are synchronous).
// Errors (a configuration a GPU refuses, a divergent barrier, a deadlock, a fault) become the
// runtime's pending error: cudaGetLastError returns it, cudaGetErrorString gives the message.
void run_kernel(const void* fn, const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                const std::function<void()>& body);

template <class... P, class... A>
void launch(const char* name, void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
            A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "a kernel launch needs one argument per parameter");
  // As on a GPU, the arguments are converted to the parameter types once, at the launch.
  const std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
  run_kernel(reinterpret_cast<const void*>(k), name, grid, block, smem, stream,
             [&params, k]() { std::apply(k, params); });
}

// Schedules: the order in which a block's threads run between two synchronisation points.
enum class Schedule { Seq, Rev, Rand };
void set_schedule(Schedule s, uint64_t seed = 1);
Schedule schedule();
const char* schedule_name(Schedule s);

}  // namespace wersa::sim

// ---- built-in variables -----------------------------------------------------------------------
#define threadIdx (::wersa::sim::current().thread_idx)
#define blockIdx (::wersa::sim::current().block_idx)
#define blockDim (::wersa::sim::current().block_dim)
#define gridDim (::wersa::sim::current().grid_dim)

// Dynamic shared memory: `WERSA_DYNAMIC_SHARED(float, s);` declares float* s (kernels use the
// same macro under nvcc, where it is an extern __shared__ array).
#define WERSA_DYNAMIC_SHARED(T, NAME) T* NAME = static_cast<T*>(::wersa::sim::dynamic_shared())

// ---- barriers and warp collectives ------------------------------------------------------------
// A block barrier is identified by its place in the source: threads of a block that meet at
// different barriers are an error. (Not by the machine address of the call: the host compiler may
// copy one call into both arms of a branch before it, and then one barrier has two addresses.)
#define WERSA_SIM_STR2(X) #X
#define WERSA_SIM_STR(X) WERSA_SIM_STR2(X)
#define WERSA_SIM_SITE __FILE__ ":" WERSA_SIM_STR(__LINE__)
#define __syncthreads() ::wersa::sim::syncthreads(WERSA_SIM_SITE)
#define __syncthreads_count(P) ::wersa::sim::syncthreads_reduce(WERSA_SIM_SITE, 1, (P))
#define __syncthreads_and(P) ::wersa::sim::syncthreads_reduce(WERSA_SIM_SITE, 2, (P))
#define __syncthreads_or(P) ::wersa::sim::syncthreads_reduce(WERSA_SIM_SITE, 3, (P))
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::wersa::sim::syncwarp(mask, nullptr); }
inline unsigned __ballot_sync(unsigned mask, int p) { return ::wersa::sim::vote(mask, 0, p, nullptr); }
inline int __any_sync(unsigned mask, int p) { return int(::wersa::sim::vote(mask, 1, p, nullptr)); }
inline int __all_sync(unsigned mask, int p) { return int(::wersa::sim::vote(mask, 2, p, nullptr)); }

namespace wersa::sim::detail {
template <class T>
uint64_t to_bits(const T& v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffles move up to 8 bytes");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}
}  // namespace wersa::sim::detail

template <class T>
T __shfl_sync(unsigned mask, T v, int src, int width = warpSize) {
  using namespace ::wersa::sim;
  return detail::from_bits<T>(shfl(mask, detail::to_bits(v), Shfl::Idx, src, width, nullptr));
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
  using namespace ::wersa::sim;
  return detail::from_bits<T>(shfl(mask, detail::to_bits(v), Shfl::Up, int(delta), width, nullptr));
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize) {
  using namespace ::wersa::sim;
  return detail::from_bits<T>(shfl(mask, detail::to_bits(v), Shfl::Down, int(delta), width, nullptr));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize) {
  using namespace ::wersa::sim;
  return detail::from_bits<T>(shfl(mask, detail::to_bits(v), Shfl::Xor, lane_mask, width, nullptr));
}

// ---- atomics (atomic across blocks, which run on different CPU threads) ------------------------
namespace wersa::sim::detail {
template <class T, class F>
T atomic_update(T* p, F f) {  // compare-and-swap loop over the bits of *p
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  static_assert(sizeof(T) == sizeof(U), "atomics on 4- or 8-byte values");
  U* q = reinterpret_cast<U*>(p);
  U old = __atomic_load_n(q, __ATOMIC_RELAXED);
  for (;;) {
    const U next = to_bits(f(from_bits<T>(old)));
    if (__atomic_compare_exchange_n(q, &old, next, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
      return from_bits<T>(old);
  }
}
}  // namespace wersa::sim::detail
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
inline float atomicAdd(float* p, float v) {
  return ::wersa::sim::detail::atomic_update(p, [v](float o) { return o + v; });
}
inline double atomicAdd(double* p, double v) {
  return ::wersa::sim::detail::atomic_update(p, [v](double o) { return o + v; });
}
inline int atomicSub(int* p, int v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }
inline unsigned atomicSub(unsigned* p, unsigned v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }
inline int atomicMax(int* p, int v) {
  return ::wersa::sim::detail::atomic_update(p, [v](int o) { return o > v ? o : v; });
}
inline unsigned atomicMax(unsigned* p, unsigned v) {
  return ::wersa::sim::detail::atomic_update(p, [v](unsigned o) { return o > v ? o : v; });
}
inline int atomicMin(int* p, int v) {
  return ::wersa::sim::detail::atomic_update(p, [v](int o) { return o < v ? o : v; });
}
inline unsigned atomicMin(unsigned* p, unsigned v) {
  return ::wersa::sim::detail::atomic_update(p, [v](unsigned o) { return o < v ? o : v; });
}
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
inline unsigned atomicExch(unsigned* p, unsigned v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
inline float atomicExch(float* p, float v) {
  return ::wersa::sim::detail::atomic_update(p, [v](float) { return v; });
}
inline int atomicCAS(int* p, int expect, int v) {
  __atomic_compare_exchange_n(p, &expect, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expect;
}
inline unsigned atomicCAS(unsigned* p, unsigned expect, unsigned v) {
  __atomic_compare_exchange_n(p, &expect, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expect;
}
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long expect, unsigned long long v) {
  __atomic_compare_exchange_n(p, &expect, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expect;
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
[[noreturn]] inline void __trap() { ::wersa::sim::device_fault("__trap()"); }

// ---- intrinsics and math that host mode lacks ----------------------------------------------------
// Exact versions: the simulator checks logic, not the GPU's approximate fast-math results.
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline int __float_as_int(float x) {
  return ::wersa::sim::detail::from_bits<int>(::wersa::sim::detail::to_bits(x));
}
inline float __int_as_float(int x) {
  return ::wersa::sim::detail::from_bits<float>(::wersa::sim::detail::to_bits(x));
}
inline unsigned __float_as_uint(float x) {
  return ::wersa::sim::detail::from_bits<unsigned>(::wersa::sim::detail::to_bits(x));
}
inline float __uint_as_float(unsigned x) {
  return ::wersa::sim::detail::from_bits<float>(::wersa::sim::detail::to_bits(x));
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return std::fmin(a, b); }
inline float max(float a, float b) { return std::fmax(a, b); }
inline double min(double a, double b) { return std::fmin(a, b); }
inline double max(double a, double b) { return std::fmax(a, b); }

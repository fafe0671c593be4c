// The backend layer: raw device memory, copies, synchronisation, streams and library handles, and
// the CPU thread pool. Nothing here knows about tensors or models: it moves bytes between
// addresses on a Device. The CUDA entry points live in namespace wersa::cuda; a build without CUDA
// links src/backend/cuda_stub.cpp, whose entries raise one clear error.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace wersa {

enum class Device : uint8_t { CPU, CUDA };
const char* device_name(Device d);  // "cpu", "cuda"

// Zero-filled, 64-byte aligned memory on a device; never null (an error when it cannot be had).
void* device_alloc(Device d, size_t bytes);
void device_free(Device d, void* p);
void device_memset0(Device d, void* p, size_t bytes);
// The same, ordered on a CUDA stream (nullptr: the default one); on the CPU, at once.
void device_memset0_async(Device d, void* p, size_t bytes, void* stream);
// Zero-filled host memory that a CUDA device copies from and to asynchronously (page-locked, where
// CUDA is built in and present; ordinary memory otherwise): the staging buffers of uploads.
void* host_alloc_pinned(size_t bytes);
void host_free_pinned(void* p);
// Copies between any two devices; `stream` orders it on a CUDA stream (nullptr: the default one).
void device_copy(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes,
                 void* stream = nullptr);
void device_sync(Device d);
bool cuda_available();  // built with CUDA and a GPU is present
// Arena allocations made by this process so far (tests check that a step makes none).
int64_t device_alloc_count();
// Bytes of CUDA memory that device_alloc holds now, the most it has held since the start or the
// last reset (what this process's arenas and scratch take on the GPU; the CUDA context, cuBLAS's
// workspace and the allocator's rounding are not counted).
size_t cuda_memory_in_use();
size_t cuda_memory_peak();
void reset_cuda_memory_peak();

// A dry run of memory planning: while a DryRun lives on this thread, device_alloc reserves
// address space only (no memory is committed; the pointers must never be touched) and counts the
// bytes, and device_free gives it back. Building a run's model, optimizer and workspace inside a
// DryRun (planning touches no data) measures exactly what the run will allocate, before anything
// is: the memory estimate of a run (train/memory.h).
class DryRun {
 public:
  static bool active();  // on this thread
  DryRun();
  ~DryRun();
  DryRun(const DryRun&) = delete;
  DryRun& operator=(const DryRun&) = delete;
  size_t live(Device d) const;  // dry bytes allocated and not yet freed
  size_t peak(Device d) const;  // the most live at any time

 private:
  friend void* device_alloc(Device, size_t);
  friend void device_free(Device, void*);
  DryRun* outer_;
  size_t live_[2] = {0, 0}, peak_[2] = {0, 0};
};

namespace cuda {
void* alloc(size_t bytes);
void free(void* p);
void memset0(void* p, size_t bytes);
void copy_h2d(void* dst, const void* src, size_t bytes, void* stream);
void copy_d2h(void* dst, const void* src, size_t bytes, void* stream);
void copy_d2d(void* dst, const void* src, size_t bytes, void* stream);
void memset0_async(void* p, size_t bytes, void* stream);
void* alloc_pinned(size_t bytes);
void free_pinned(void* p);
void sync();
bool available();
// Free memory of the device in bytes (0 when unknown).
size_t memory_available();
// A stream of its own (opaque: cudaStream_t), its release, and waiting for its work.
void* stream_create();
void stream_destroy(void* stream);
void stream_sync(void* stream);
// A cuBLAS handle bound to `stream` with a workspace of its own (opaque: cublasHandle_t), and
// its release (with the workspace).
void* blas_create(void* stream);
void blas_destroy(void* handle);
// Raised by an op that has no CUDA kernel in this build.
[[noreturn]] void unavailable(const char* op);
}  // namespace cuda

// Threads used by CPU kernels (OpenMP and BLAS); 0 = all cores. Returns the count in effect.
int set_cpu_threads(int n);
int cpu_threads();  // the count in effect now

// Size in bytes of one core's level-1 data cache or level-2 cache (level 1 or 2): sysconf, then
// /sys/devices/system/cpu/cpu0/cache, then kFallbackL1Bytes / kFallbackL2Bytes; 0 for another level.
inline constexpr size_t kFallbackL1Bytes = size_t(32) << 10, kFallbackL2Bytes = size_t(512) << 10;
size_t cpu_cache_bytes(int level);
// A one-row GEMV (decode) whose weights take at least this many bytes splits its rows over the CPU
// threads; a smaller one runs on the calling thread. Default: a core's level-2 cache
// (cpu_cache_bytes(2): a matrix it holds is read faster by one core than it is handed out), or
// WERSA_GEMV_SPLIT_BYTES when that is set. set_gemv_split_bytes(b) sets it
// (0: always split; a negative value restores the default). Results do not depend on it.
int64_t gemv_split_bytes();
void set_gemv_split_bytes(int64_t bytes);

// Process-wide CPU runtime settings that the libraries read only when they load, so this sets
// them in the environment and re-executes the program once (call first thing in main()):
// - OpenMP waiting: libgomp lets an idle thread spin ~300,000 times at every barrier before it
//   sleeps; beside another CPU-bound process that spinning takes the core from the thread that
//   the barrier waits for (small steps slow down far more than sharing the core explains).
//   Unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT, this sets GOMP_SPINCOUNT=kOmpSpinCount.
// - BLAS kernels: OpenBLAS (0.3.21, Debian 12) falls back to its slowest x86 kernels ("Prescott",
//   SSE3) on CPUs it does not recognise, such as many virtual machines' generic Xeon models. When
//   OPENBLAS_CORETYPE is unset and the fallback was taken on a CPU with AVX-512 or AVX2+FMA, this
//   sets it (SkylakeX or Haswell).
// A no-op when nothing is to change (the re-executed program finds both set).
inline constexpr const char* kOmpSpinCount = "1000";
void prepare_cpu_runtime(char** argv);
// How OpenMP threads wait, as the log shows it: "GOMP_SPINCOUNT=1000", "OMP_WAIT_POLICY=passive"
// or "libgomp default".
std::string omp_wait_setting();
// The OpenBLAS kernel family in use, e.g. "skylakex".
std::string blas_kernel_name();

}  // namespace wersa

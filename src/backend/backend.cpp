#include "wersa/backend/backend.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "wersa/common/error.h"

namespace wersa {

namespace {
std::atomic<int64_t> g_allocs{0};
thread_local DryRun* t_dry = nullptr;
struct DryBlock {
  size_t bytes;
  DryRun* owner;
};
std::mutex g_dry_mutex;
std::map<void*, DryBlock> g_dry;  // address-space reservations of dry runs
std::set<void*> g_pinned;         // page-locked blocks of host_alloc_pinned
std::map<void*, size_t> g_cuda;   // CUDA blocks and their sizes (device_memory_in_use)
size_t g_cuda_live = 0, g_cuda_peak = 0;
}  // namespace

DryRun::DryRun() : outer_(t_dry) { t_dry = this; }

DryRun::~DryRun() {
  t_dry = outer_;
  // Blocks still reserved when the run ends stay valid reservations (freed later by device_free).
  std::lock_guard<std::mutex> lock(g_dry_mutex);
  for (auto& [p, b] : g_dry)
    if (b.owner == this) b.owner = nullptr;
}

bool DryRun::active() { return t_dry != nullptr; }

size_t DryRun::live(Device d) const { return live_[int(d)]; }
size_t DryRun::peak(Device d) const { return peak_[int(d)]; }

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

constexpr size_t kHugePage = size_t(2) << 20;

void* device_alloc(Device d, size_t bytes) {
  ++g_allocs;
  const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  if (DryRun* dry = t_dry) {
    void* p = ::mmap(nullptr, rounded, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    WERSA_CHECK(p != MAP_FAILED, "memory estimate: cannot reserve ", rounded, " bytes of address space");
    dry->live_[int(d)] += rounded;
    dry->peak_[int(d)] = std::max(dry->peak_[int(d)], dry->live_[int(d)]);
    std::lock_guard<std::mutex> lock(g_dry_mutex);
    g_dry[p] = DryBlock{rounded, dry};
    return p;
  }
  if (d == Device::CUDA) {
    void* p = cuda::alloc(rounded);
    cuda::memset0(p, rounded);
    std::lock_guard<std::mutex> lock(g_dry_mutex);
    g_cuda[p] = rounded;
    g_cuda_live += rounded;
    g_cuda_peak = std::max(g_cuda_peak, g_cuda_live);
    return p;
  }
  // Blocks from 2 MiB on are 2 MiB aligned and ask for transparent huge pages (Linux's default
  // policy is "madvise"): 512 times fewer page faults when a block is first zeroed, which is what
  // the first touch of a long sequence's workspace spends its time on.
  const bool huge = rounded >= kHugePage;
  const size_t span = huge ? (rounded + kHugePage - 1) / kHugePage * kHugePage : rounded;
  void* p = std::aligned_alloc(huge ? kHugePage : 64, span);
  WERSA_CHECK(p != nullptr, "out of host memory allocating ", bytes, " bytes");
  if (huge) ::madvise(p, span, MADV_HUGEPAGE);
  std::memset(p, 0, rounded);
  return p;
}

void device_free(Device d, void* p) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lock(g_dry_mutex);
    const auto it = g_dry.find(p);
    if (it != g_dry.end()) {
      if (it->second.owner) it->second.owner->live_[int(d)] -= it->second.bytes;
      ::munmap(p, it->second.bytes);
      g_dry.erase(it);
      return;
    }
    if (d == Device::CUDA) {
      const auto c = g_cuda.find(p);
      WERSA_ASSERT(c != g_cuda.end(), "device_free of a CUDA block that device_alloc did not give");
      g_cuda_live -= c->second;
      g_cuda.erase(c);
    }
  }
  if (d == Device::CUDA)
    cuda::free(p);
  else
    std::free(p);
}

void device_memset0(Device d, void* p, size_t bytes) {
  if (!p || bytes == 0) return;
  if (d == Device::CUDA)
    cuda::memset0(p, bytes);
  else
    std::memset(p, 0, bytes);
}

void device_memset0_async(Device d, void* p, size_t bytes, void* stream) {
  if (!p || bytes == 0) return;
  if (d == Device::CUDA)
    cuda::memset0_async(p, bytes, stream);
  else
    std::memset(p, 0, bytes);
}

void* host_alloc_pinned(size_t bytes) {
  if (DryRun::active() || !cuda::available()) return device_alloc(Device::CPU, bytes);
  ++g_allocs;
  const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  void* p = cuda::alloc_pinned(rounded);
  std::memset(p, 0, rounded);
  std::lock_guard<std::mutex> lock(g_dry_mutex);
  g_pinned.insert(p);
  return p;
}

void host_free_pinned(void* p) {
  if (!p) return;
  bool pinned;
  {
    std::lock_guard<std::mutex> lock(g_dry_mutex);
    pinned = g_pinned.erase(p) != 0;
  }
  if (!pinned) return device_free(Device::CPU, p);  // a dry reservation or heap block (takes the lock)
  cuda::free_pinned(p);
}

void device_copy(Device dst_dev, void* dst, Device src_dev, const void* src, size_t bytes, void* stream) {
  if (bytes == 0 || dst == src) return;
  if (dst_dev == Device::CPU && src_dev == Device::CPU)
    std::memcpy(dst, src, bytes);
  else if (dst_dev == Device::CUDA && src_dev == Device::CPU)
    cuda::copy_h2d(dst, src, bytes, stream);
  else if (dst_dev == Device::CPU && src_dev == Device::CUDA)
    cuda::copy_d2h(dst, src, bytes, stream);
  else
    cuda::copy_d2d(dst, src, bytes, stream);
}

void device_sync(Device d) {
  if (d == Device::CUDA) cuda::sync();
}

bool cuda_available() { return cuda::available(); }

int64_t device_alloc_count() { return g_allocs.load(); }

size_t cuda_memory_in_use() {
  std::lock_guard<std::mutex> lock(g_dry_mutex);
  return g_cuda_live;
}

size_t cuda_memory_peak() {
  std::lock_guard<std::mutex> lock(g_dry_mutex);
  return g_cuda_peak;
}

void reset_cuda_memory_peak() {
  std::lock_guard<std::mutex> lock(g_dry_mutex);
  g_cuda_peak = g_cuda_live;
}

}  // namespace wersa

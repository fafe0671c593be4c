#include "wersa/backend/backend.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "wersa/common/error.h"

namespace wersa {

namespace {
std::atomic<int64_t> g_allocs{0};
}

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

void* device_alloc(Device d, size_t bytes) {
  ++g_allocs;
  const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
  if (d == Device::CUDA) {
    void* p = cuda::alloc(rounded);
    cuda::memset0(p, rounded);
    return p;
  }
  void* p = std::aligned_alloc(64, rounded);
  WERSA_CHECK(p != nullptr, "out of host memory allocating ", bytes, " bytes");
  std::memset(p, 0, rounded);
  return p;
}

void device_free(Device d, void* p) {
  if (!p) return;
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

}  // namespace wersa

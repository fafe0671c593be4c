#include "wersa/backend/backend.h"

#include <cstdlib>
#include <cstring>

namespace wersa {

void* device_alloc(Device d, size_t bytes) {
  if (bytes == 0) bytes = 64;
  if (d == Device::CUDA) {
    void* p = cuda::alloc(bytes);
    cuda::memset0(p, bytes);
    return p;
  }
  const size_t rounded = (bytes + 63) / 64 * 64;
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

void device_memset0(const Tensor& t) {
  if (!t.defined()) return;
  if (t.device == Device::CUDA)
    cuda::memset0(t.data, t.bytes());
  else
    std::memset(t.data, 0, t.bytes());
}

void tensor_copy(const Tensor& dst, const Tensor& src) {
  WERSA_ASSERT(dst.dtype == src.dtype && dst.numel() == src.numel(), "copy ", src.describe(), " -> ",
               dst.describe());
  const size_t n = src.bytes();
  if (dst.device == Device::CPU && src.device == Device::CPU)
    std::memcpy(dst.data, src.data, n);
  else if (dst.device == Device::CUDA && src.device == Device::CPU)
    cuda::copy_h2d(dst.data, src.data, n);
  else if (dst.device == Device::CPU && src.device == Device::CUDA)
    cuda::copy_d2h(dst.data, src.data, n);
  else
    cuda::copy_d2d(dst.data, src.data, n);
}

void device_sync(Device d) {
  if (d == Device::CUDA) cuda::sync();
}

bool cuda_available() { return cuda::available(); }

}  // namespace wersa

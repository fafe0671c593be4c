#include "wersa/tensor/arena.h"

#include <cstdio>
#include <fstream>
#include <string>

namespace wersa {

Arena::~Arena() {
  if (pinned_)
    host_free_pinned(base_);
  else
    device_free(device_, base_);
}

Tensor Arena::add(const std::string& name, DType dtype, Shape shape, bool follow) {
  const size_t n = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  WERSA_ASSERT(!follow || (bytes_ > 0 && dtype == last_dtype_), "arena '", purpose_, "': ", name,
               " follows no view of its dtype");
  const size_t offset = follow ? end_ : bytes_;
  bytes_ = (offset + n + 63) / 64 * 64;
  end_ = offset + n;
  last_dtype_ = dtype;
  if (measuring_) return Tensor(nullptr, dtype, device_, shape, {});
  WERSA_ASSERT(base_ && bytes_ <= capacity_, "arena '", purpose_, "': ", name, " does not fit the plan");
  names_.push_back(name);
  tensors_.emplace_back(static_cast<char*>(base_) + offset, dtype, device_, shape, names_.back());
  return tensors_.back();
}

void Arena::reserve(size_t bytes) {
  if (device_ == Device::CPU && !DryRun::active()) {
    const size_t avail = host_memory_available();
    WERSA_CHECK(avail == 0 || bytes <= avail, "the ", purpose_, " arena needs ", format_bytes(bytes),
                " but only ", format_bytes(avail), " of host memory is available");
  }
  base_ = pinned_ ? host_alloc_pinned(bytes) : device_alloc(device_, bytes);
  capacity_ = bytes;
  bytes_ = 0;
  end_ = 0;
}

Tensor Arena::flat(DType dtype) const {
  WERSA_ASSERT(base_ && bytes_ % dtype_size(dtype) == 0, "flat view of arena '", purpose_, "'");
  return Tensor(base_, dtype, device_, Shape{int64_t(bytes_ / dtype_size(dtype))}, purpose_);
}

void Arena::zero() { device_memset0(device_, base_, bytes_); }

size_t host_memory_available() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

std::string format_bytes(size_t n) {
  char buf[64];
  if (n >= (size_t(1) << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", n / 1073741824.0);
  else if (n >= (size_t(1) << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", n / 1048576.0);
  else
    std::snprintf(buf, sizeof buf, "%.1f KiB", n / 1024.0);
  return buf;
}

}  // namespace wersa

// test_backend_ops helper for plain TESTs that make device tensors by hand (the bad-length tests
// of mask_padding and pooling): a tensor with guard bands of a known byte on both sides, filled
// from host values, read back, and checked for writes outside it.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "wersa/backend/backend.h"
#include "wersa/common/error.h"
#include "wersa/tensor/tensor.h"

namespace wersa::test {

class GuardedTensor {
 public:
  static constexpr size_t kGuard = 256;
  static constexpr unsigned char kByte = 0x5A;

  template <class T>
  GuardedTensor(Device dev, DType dt, Shape s, const std::vector<T>& values) : dev_(dev) {
    bytes_ = size_t(s.numel()) * dtype_size(dt);
    WERSA_ASSERT(values.size() * sizeof(T) == bytes_, "GuardedTensor: values do not fill the tensor");
    std::vector<unsigned char> h(bytes_ + 2 * kGuard, kByte);
    if (bytes_) std::memcpy(h.data() + kGuard, values.data(), bytes_);
    base_ = device_alloc(dev, h.size());
    device_copy(dev, base_, Device::CPU, h.data(), h.size());
    t = Tensor(static_cast<char*>(base_) + kGuard, dt, dev, s, "guarded");
  }
  ~GuardedTensor() { device_free(dev_, base_); }
  GuardedTensor(const GuardedTensor&) = delete;
  GuardedTensor& operator=(const GuardedTensor&) = delete;

  // The tensor's values (T must match the dtype); `guards_ok` tells whether the bands are intact.
  template <class T>
  std::vector<T> read(bool* guards_ok = nullptr) const {
    std::vector<unsigned char> h(bytes_ + 2 * kGuard);
    device_copy(Device::CPU, h.data(), dev_, base_, h.size());
    bool ok = true;
    for (size_t k = 0; k < kGuard; ++k) ok = ok && h[k] == kByte && h[kGuard + bytes_ + k] == kByte;
    if (guards_ok) *guards_ok = ok;
    std::vector<T> v(bytes_ / sizeof(T));
    if (bytes_) std::memcpy(v.data(), h.data() + kGuard, bytes_);
    return v;
  }

  Tensor t;

 private:
  Device dev_;
  void* base_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace wersa::test

// test_backend_ops helper for the plain TESTs that make device tensors by hand (bad ids, targets
// and lengths on a device tensor, which the CPU kernels refuse, so the CPU-vs-CUDA runner cannot
// test them; the flat AdamW's segment table): a tensor on a device with a guard band of a known
// pattern on each side, its contents read back, and the guards checked.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "wersa/backend/backend.h"
#include "wersa/common/error.h"
#include "wersa/tensor/tensor.h"

namespace wersa::test {

class GuardedBuffer {
 public:
  static constexpr size_t kGuard = 512;
  static constexpr unsigned char kByte = 0x5A;

  // A tensor of `shape` and `dt` on `dev` holding `host` (its bytes), guards filled with kByte.
  GuardedBuffer(Device dev, DType dt, Shape shape, const void* host, const char* name = "t")
      : dev_(dev), bytes_(size_t(shape.numel()) * dtype_size(dt)) {
    base_ = device_alloc(dev, bytes_ + 2 * kGuard);
    std::vector<unsigned char> h(bytes_ + 2 * kGuard, kByte);
    if (bytes_) std::memcpy(h.data() + kGuard, host, bytes_);
    device_copy(dev, base_, Device::CPU, h.data(), h.size());
    t_ = Tensor(static_cast<char*>(base_) + kGuard, dt, dev, shape, name);
  }
  // The same, holding `values` (which must fill the tensor).
  template <class T>
  GuardedBuffer(Device dev, DType dt, Shape shape, const std::vector<T>& values)
      : GuardedBuffer(dev, dt, shape, values.data()) {
    WERSA_ASSERT(values.size() * sizeof(T) == bytes_, "GuardedBuffer: values do not fill the tensor");
  }
  ~GuardedBuffer() { device_free(dev_, base_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  const Tensor& t() const { return t_; }

  // The contents, as elements of E.
  template <class E>
  std::vector<E> read() const {
    std::vector<unsigned char> h = all();
    std::vector<E> v(bytes_ / sizeof(E));
    if (bytes_) std::memcpy(v.data(), h.data() + kGuard, bytes_);
    return v;
  }
  // The contents, and in *guards_ok whether both guard bands still hold the pattern.
  template <class E>
  std::vector<E> read(bool* guards_ok) const {
    *guards_ok = guards_intact();
    return read<E>();
  }
  // Whether both guard bands still hold the pattern.
  bool guards_intact() const {
    std::vector<unsigned char> h = all();
    for (size_t k = 0; k < kGuard; ++k)
      if (h[k] != kByte || h[kGuard + bytes_ + k] != kByte) return false;
    return true;
  }

 private:
  std::vector<unsigned char> all() const {
    std::vector<unsigned char> h(bytes_ + 2 * kGuard);
    device_copy(Device::CPU, h.data(), dev_, base_, h.size());
    return h;
  }
  Device dev_;
  size_t bytes_;
  void* base_ = nullptr;
  Tensor t_;
};

}  // namespace wersa::test

// An Arena is one allocation for one purpose (parameters, gradients, Adam moments, activations,
// scratch). It is planned first (add() records name, dtype and shape), then allocated once;
// the Tensors handed out by add() stay valid (stable addresses) and receive their data
// pointers at allocate(). Nothing is allocated during a training step.
#pragma once
#include <deque>
#include <string>

#include "wersa/tensor/tensor.h"

namespace wersa {

class Arena {
 public:
  Arena(std::string purpose, Device device) : purpose_(std::move(purpose)), device_(device) {}
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Plans a tensor; its data pointer is set by allocate(). Each tensor starts 64-byte aligned.
  Tensor& add(const std::string& name, DType dtype, Shape shape);
  // Allocates (zero-filled) everything planned so far; may be called once.
  void allocate();
  bool allocated() const { return base_ != nullptr; }
  size_t bytes() const { return bytes_; }
  const std::string& purpose() const { return purpose_; }
  Device device() const { return device_; }
  std::deque<Tensor>& tensors() { return tensors_; }
  const std::deque<Tensor>& tensors() const { return tensors_; }
  // The whole arena as one flat tensor of `dtype` (all tensors must share it).
  Tensor flat(DType dtype) const;
  void zero();

 private:
  std::string purpose_;
  Device device_;
  std::deque<Tensor> tensors_;
  std::deque<size_t> offsets_;
  size_t bytes_ = 0;
  void* base_ = nullptr;
};

// Host memory available to this process (MemAvailable), for "will this run fit" checks.
size_t host_memory_available();
std::string format_bytes(size_t n);  // "1.5 GiB"

}  // namespace wersa

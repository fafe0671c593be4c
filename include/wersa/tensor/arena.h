// An Arena is one allocation for one purpose (parameters, gradients, Adam moments, activations,
// generation state), planned up front: build(plan) runs the planning function once to measure
// (add() records name, dtype and shape and hands out views without data), allocates exactly that
// much once, then runs the plan again so that every add() returns a view into the allocation.
// The arena owns the names of its views. Nothing is allocated during a training step.
#pragma once
#include <deque>
#include <string>
#include <type_traits>

#include "wersa/tensor/tensor.h"

namespace wersa {

class Arena {
 public:
  // pinned: a host arena that a CUDA device copies from and to (host_alloc_pinned).
  Arena(std::string purpose, Device device, bool pinned = false)
      : purpose_(std::move(purpose)), device_(device), pinned_(pinned && device == Device::CPU) {}
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Measures plan(arena), allocates (zero-filled) and returns plan(arena) run on the allocation.
  template <class F>
  auto build(F&& plan) -> decltype(plan(std::declval<Arena&>())) {
    WERSA_ASSERT(!base_ && tensors_.empty(), "arena '", purpose_, "' built twice");
    measuring_ = true;
    plan(*this);
    measuring_ = false;
    reserve(bytes_);
    return plan(*this);
  }
  // A view of the next `shape` elements (64-byte aligned), named `name` (the arena keeps the
  // text). While measuring, the view has no data. With `follow`, the view starts right where the
  // previous one ends (no padding; same dtype), so that the two are also one tensor.
  Tensor add(const std::string& name, DType dtype, Shape shape, bool follow = false);
  size_t bytes() const { return bytes_; }
  bool measuring() const { return measuring_; }
  const std::string& purpose() const { return purpose_; }
  Device device() const { return device_; }
  // The views in the order they were added.
  const std::deque<Tensor>& tensors() const { return tensors_; }
  // The whole allocation as one flat tensor of `dtype` (padding between views is zero): what
  // whole-arena ops (gradient norm, clipping, device moves) run over.
  Tensor flat(DType dtype) const;
  void zero();

 private:
  std::string purpose_;
  Device device_;
  bool pinned_ = false;
  void reserve(size_t bytes);
  std::deque<Tensor> tensors_;
  std::deque<std::string> names_;  // stable storage for the views' names
  size_t bytes_ = 0, capacity_ = 0;
  size_t end_ = 0;  // where the last view ends (before its padding)
  DType last_dtype_ = DType::F32;
  void* base_ = nullptr;
  bool measuring_ = false;
};

// Host memory available to this process (MemAvailable), for "will this run fit" checks.
size_t host_memory_available();
std::string format_bytes(size_t n);  // "1.5 GiB"

}  // namespace wersa

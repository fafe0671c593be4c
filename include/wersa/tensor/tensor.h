// Tensors are contiguous, named, non-owning views: {data, dtype, device, shape, name}. Memory
// belongs to an Arena (see arena.h) planned up front, so a training step never allocates. A view
// is trivially copyable: its name is a std::string_view into storage owned by the arena (or a
// string literal), so passing a Tensor by value never allocates.
//
// Host access: ptr<T>() gives the typed pointer (asserting that T is the tensor's dtype) for
// kernels, which run on the tensor's device; host<T>() also asserts that the tensor is on the
// CPU, and is what code outside the kernels uses (model init, batch staging, tests).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <string>
#include <string_view>

#include "wersa/backend/backend.h"
#include "wersa/common/error.h"
#include "wersa/tensor/bf16.h"

namespace wersa {

// BF16: storage only (inference weights, see bf16.h); every op computes in f32 or f64.
enum class DType : uint8_t { F32, F64, I32, U16, U32, BF16 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::I32;
}
template <>
constexpr DType dtype_of<uint16_t>() {
  return DType::U16;
}
template <>
constexpr DType dtype_of<uint32_t>() {
  return DType::U32;
}
template <>
constexpr DType dtype_of<bf16>() {
  return DType::BF16;
}

constexpr int kMaxDims = 4;

struct Shape {
  std::array<int64_t, kMaxDims> dim{0, 0, 0, 0};
  int rank = 0;
  Shape() = default;
  Shape(std::initializer_list<int64_t> d);
  int64_t numel() const;
  int64_t operator[](int i) const { return dim[i]; }
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;  // "[2, 3]"
};

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  Shape shape;
  std::string_view name;  // not owned: arena storage or a literal

  Tensor() = default;
  Tensor(void* p, DType t, Device d, Shape s, std::string_view n = {})
      : data(p), dtype(t), device(d), shape(s), name(n) {}

  bool defined() const { return data != nullptr; }
  int64_t numel() const { return shape.numel(); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int rank() const { return shape.rank; }
  int64_t dim(int i) const { return shape.dim[i]; }

  // Typed pointer for code running on the tensor's device (kernels): T must be the dtype.
  template <class T>
  T* ptr() const {
    WERSA_ASSERT(dtype == dtype_of<T>(), "ptr<", dtype_name(dtype_of<T>()), "> of ", describe());
    return static_cast<T*>(data);
  }
  // Typed pointer for host code: the tensor must be on the CPU and of dtype T.
  template <class T>
  T* host() const {
    WERSA_ASSERT(device == Device::CPU, "host access to ", describe());
    return ptr<T>();
  }
  // Same memory, another shape with the same element count.
  Tensor view(Shape s) const;
  // Rows [r0, r1) of the leading dimension.
  Tensor rows(int64_t r0, int64_t r1) const;
  std::string describe() const;  // "name f32 [2, 3] cpu"
};

// Streams describe(): lets error messages take a tensor as an argument, formatted only on failure.
std::ostream& operator<<(std::ostream& os, const Tensor& t);

class Ctx;

// Synchronous copies and fills for setup and I/O (model moves, checkpoint loading): the device is
// idle before and after. Within a run use the forms that take the run's context, ordered on its
// stream (uploads, zeroing, read-backs), or copy_fwd (ops/elementwise.h).
void tensor_copy(const Tensor& dst, const Tensor& src);  // equal dtype and element count, any devices
void tensor_zero(const Tensor& t);
// Ordered after the work already queued on ctx's stream; a copy to the host waits for the stream
// (the host reads it next), other copies and the zero return at once.
void tensor_copy(Ctx& ctx, const Tensor& dst, const Tensor& src);
void tensor_zero(Ctx& ctx, const Tensor& t);
// CPU only, equal element counts: f32 -> bf16 (rounded to nearest even), bf16 -> f32 (exact), or
// a plain copy when the dtypes are equal.
void tensor_convert(const Tensor& dst, const Tensor& src);

// Element i of a CPU float tensor (f32 or f64) as double: for host code and tests that are generic
// over the float dtypes.
double host_get(const Tensor& t, int64_t i);

// Argument checks: each raises wersa::Error naming the op and the tensor, since a mismatch reaching
// an op is reported to whoever built the call.
void check_shape(const char* op, const Tensor& t, const Shape& expect);
void check_dtype(const char* op, const Tensor& t, DType expect);
void check_defined(const char* op, const Tensor& t, const char* what);
void check_float(const char* op, const Tensor& t);  // f32 or f64

}  // namespace wersa

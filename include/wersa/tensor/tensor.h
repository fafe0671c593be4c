// Tensors are contiguous, named, non-owning views: {data, dtype, device, shape, name}. Memory
// belongs to an Arena (see arena.h) planned up front, so a training step never allocates.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "wersa/common/error.h"

namespace wersa {

enum class DType : uint8_t { F32, F64, I32, U16, U32 };
enum class Device : uint8_t { CPU, CUDA };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
const char* device_name(Device d);

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
  std::string name;

  Tensor() = default;
  Tensor(void* p, DType t, Device d, Shape s, std::string n = {})
      : data(p), dtype(t), device(d), shape(s), name(std::move(n)) {}

  bool defined() const { return data != nullptr; }
  int64_t numel() const { return shape.numel(); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int rank() const { return shape.rank; }
  int64_t dim(int i) const { return shape.dim[i]; }

  template <class T>
  T* ptr() const {
    return static_cast<T*>(data);
  }
  // Same memory, another shape with the same element count.
  Tensor view(Shape s, const std::string& new_name = {}) const;
  // Rows [r0, r1) of the leading dimension.
  Tensor rows(int64_t r0, int64_t r1) const;
  std::string describe() const;  // "name f32 [2, 3] cpu"
};

// Validation helpers used by every op's dispatcher. They raise wersa::Error naming the op and
// the tensor, since a shape mismatch reaching an op is reported to whoever built the call.
void check_shape(const char* op, const Tensor& t, const Shape& expect);
void check_dtype(const char* op, const Tensor& t, DType expect);
void check_same_device(const char* op, std::initializer_list<const Tensor*> ts);
void check_defined(const char* op, const Tensor& t, const char* what);

}  // namespace wersa

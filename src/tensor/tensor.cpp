#include "wersa/tensor/tensor.h"

#include <sstream>

#include "wersa/tensor/context.h"

namespace wersa {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::F64:
      return 8;
    case DType::I32:
      return 4;
    case DType::U16:
      return 2;
    case DType::U32:
      return 4;
    case DType::BF16:
      return 2;
  }
  WERSA_ASSERT(false, "bad dtype");
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F64:
      return "f64";
    case DType::I32:
      return "i32";
    case DType::U16:
      return "u16";
    case DType::U32:
      return "u32";
    case DType::BF16:
      return "bf16";
  }
  return "?";
}

Shape::Shape(std::initializer_list<int64_t> d) {
  WERSA_ASSERT(d.size() <= kMaxDims, "rank ", d.size(), " > ", kMaxDims);
  for (int64_t v : d) dim[rank++] = v;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= dim[i];
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (rank != o.rank) return false;
  for (int i = 0; i < rank; ++i)
    if (dim[i] != o.dim[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::ostringstream os;
  os << '[';
  for (int i = 0; i < rank; ++i) os << (i ? ", " : "") << dim[i];
  os << ']';
  return os.str();
}

Tensor Tensor::view(Shape s) const {
  WERSA_ASSERT(s.numel() == numel(), "view of ", describe(), " as ", s.str());
  return Tensor(data, dtype, device, s, name);
}

Tensor Tensor::rows(int64_t r0, int64_t r1) const {
  WERSA_ASSERT(rank() >= 1 && 0 <= r0 && r0 <= r1 && r1 <= shape[0], "rows ", r0, ":", r1, " of ",
               describe());
  const int64_t row = shape[0] ? numel() / shape[0] : 0;
  Shape s = shape;
  s.dim[0] = r1 - r0;
  return Tensor(static_cast<char*>(data) + r0 * row * dtype_size(dtype), dtype, device, s, name);
}

std::string Tensor::describe() const {
  std::ostringstream os;
  os << (name.empty() ? std::string_view("<unnamed>") : name) << ' ' << dtype_name(dtype) << ' '
     << shape.str() << ' ' << device_name(device);
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.describe(); }

void tensor_copy(const Tensor& dst, const Tensor& src) {
  WERSA_ASSERT(dst.dtype == src.dtype && dst.numel() == src.numel(), "copy ", src.describe(), " -> ",
               dst.describe());
  const bool cuda = dst.device == Device::CUDA || src.device == Device::CUDA;
  if (cuda) device_sync(Device::CUDA);  // kernels of any stream may still write src or read dst
  device_copy(dst.device, dst.data, src.device, src.data, src.bytes());
  if (cuda) device_sync(Device::CUDA);
}

void tensor_zero(const Tensor& t) {
  if (t.device == Device::CUDA) device_sync(Device::CUDA);
  device_memset0(t.device, t.data, t.bytes());
  if (t.device == Device::CUDA) device_sync(Device::CUDA);
}

void tensor_copy(Ctx& ctx, const Tensor& dst, const Tensor& src) {
  WERSA_ASSERT(dst.dtype == src.dtype && dst.numel() == src.numel(), "copy ", src.describe(), " -> ",
               dst.describe());
  if (ctx.planning()) return;
  device_copy(dst.device, dst.data, src.device, src.data, src.bytes(), ctx.stream());
}

void tensor_zero(Ctx& ctx, const Tensor& t) {
  if (ctx.planning()) return;
  device_memset0_async(t.device, t.data, t.bytes(), ctx.stream());
}

void tensor_convert(const Tensor& dst, const Tensor& src) {
  WERSA_ASSERT(dst.numel() == src.numel() && dst.device == Device::CPU && src.device == Device::CPU,
               "convert ", src.describe(), " -> ", dst.describe());
  if (dst.dtype == src.dtype) return tensor_copy(dst, src);
  const int64_t n = src.numel();
  if (dst.dtype == DType::BF16 && src.dtype == DType::F32) {
    const float* s = src.host<float>();
    bf16* d = dst.host<bf16>();
#pragma omp parallel for schedule(static) if (n >= (int64_t(1) << 16))
    for (int64_t i = 0; i < n; ++i) d[i] = float_to_bf16(s[i]);
    return;
  }
  WERSA_ASSERT(dst.dtype == DType::F32 && src.dtype == DType::BF16, "convert ", src.describe(), " -> ",
               dst.describe());
  const bf16* s = src.host<bf16>();
  float* d = dst.host<float>();
#pragma omp parallel for schedule(static) if (n >= (int64_t(1) << 16))
  for (int64_t i = 0; i < n; ++i) d[i] = bf16_to_float(s[i]);
}

double host_get(const Tensor& t, int64_t i) {
  return t.dtype == DType::F64 ? t.host<double>()[i] : double(t.host<float>()[i]);
}

void check_shape(const char* op, const Tensor& t, const Shape& expect) {
  WERSA_CHECK(t.shape == expect, op, ": tensor ", t.describe(), " should have shape ", expect.str());
}
void check_dtype(const char* op, const Tensor& t, DType expect) {
  WERSA_CHECK(t.dtype == expect, op, ": tensor ", t.describe(), " should be ", dtype_name(expect));
}
void check_defined(const char* op, const Tensor& t, const char* what) {
  WERSA_CHECK(t.defined(), op, ": missing tensor '", what, "'");
}
void check_float(const char* op, const Tensor& t) {
  WERSA_CHECK(t.dtype == DType::F32 || t.dtype == DType::F64, op, ": tensor ", t.describe(),
              " should be f32 or f64");
}

}  // namespace wersa

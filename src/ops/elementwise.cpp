#include "wersa/ops/elementwise.h"

#include <cmath>

#include "wersa/ops/dispatch.h"

namespace wersa {

void add_fwd(const AddFwd& a) {
  const char* op = "add_fwd";
  check_defined(op, a.y, "y");
  check_defined(op, a.a, "a");
  check_defined(op, a.b, "b");
  for (const Tensor* t : {&a.a, &a.b}) {
    WERSA_CHECK(t->numel() == a.y.numel(), op, ": tensor ", t->describe(), " should have ", a.y.numel(),
                " elements like ", a.y.describe());
    check_dtype(op, *t, a.y.dtype);
  }
  check_same_device(op, {&a.y, &a.a, &a.b});
  WERSA_DISPATCH(add_fwd, a, a.y.device, a.y.dtype);
}

void axpy(const AxpyArgs& a) {
  const char* op = "axpy";
  check_defined(op, a.y, "y");
  check_defined(op, a.x, "x");
  WERSA_CHECK(a.x.numel() == a.y.numel(), op, ": tensor ", a.x.describe(), " should have ", a.y.numel(),
              " elements like ", a.y.describe());
  check_dtype(op, a.x, a.y.dtype);
  check_same_device(op, {&a.y, &a.x});
  WERSA_DISPATCH(axpy, a, a.y.device, a.y.dtype);
}

void scale_inplace(const ScaleArgs& a) {
  check_defined("scale_inplace", a.x, "x");
  WERSA_DISPATCH(scale_inplace, a, a.x.device, a.x.dtype);
}

double sum_squares(const Tensor& x) {
  check_defined("sum_squares", x, "x");
  if (x.device == Device::CUDA) cuda::unavailable("sum_squares");
  if (x.dtype == DType::F64) return cpu::sum_squares<double>(x);
  if (x.dtype == DType::F32) return cpu::sum_squares<float>(x);
  WERSA_FAIL("sum_squares: unsupported dtype ", dtype_name(x.dtype), " of ", x.describe());
}

}  // namespace wersa

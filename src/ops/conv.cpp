#include "wersa/ops/conv.h"

#include "wersa/ops/dispatch.h"

namespace wersa {
namespace {

// x [B, T, C], w [C, K] with K >= 1.
void check_input(const char* op, const Tensor& x, const Tensor& w) {
  check_defined(op, x, "x");
  check_defined(op, w, "w");
  WERSA_CHECK(x.rank() == 3, op, ": x must be [B, T, C]: ", x.describe());
  WERSA_CHECK(w.rank() == 2 && w.dim(0) == x.dim(2) && w.dim(1) >= 1, op,
              ": w must be [C, K] with C = ", x.dim(2), " and K >= 1: ", w.describe());
}

}  // namespace

void depthwise_conv_fwd(const DepthwiseConvFwd& a) {
  const char* op = "depthwise_conv_fwd";
  check_defined(op, a.y, "y");
  check_input(op, a.x, a.w);
  check_shape(op, a.y, a.x.shape);
  if (a.b.defined()) check_shape(op, a.b, Shape{a.x.dim(2)});
  for (const Tensor* t : {&a.x, &a.w, &a.b})
    if (t->defined()) check_dtype(op, *t, a.y.dtype);
  check_same_device(op, {&a.y, &a.x, &a.w, &a.b});
  WERSA_DISPATCH(depthwise_conv_fwd, a, a.y.device, a.y.dtype);
}

void depthwise_conv_bwd(const DepthwiseConvBwd& a) {
  const char* op = "depthwise_conv_bwd";
  check_defined(op, a.dy, "dy");
  check_input(op, a.x, a.w);
  check_shape(op, a.dy, a.x.shape);
  if (a.dx.defined()) check_shape(op, a.dx, a.x.shape);
  if (a.dw.defined()) check_shape(op, a.dw, a.w.shape);
  if (a.db.defined()) check_shape(op, a.db, Shape{a.x.dim(2)});
  for (const Tensor* t : {&a.dx, &a.dw, &a.db, &a.x, &a.w})
    if (t->defined()) check_dtype(op, *t, a.dy.dtype);
  check_same_device(op, {&a.dx, &a.dw, &a.db, &a.dy, &a.x, &a.w});
  WERSA_DISPATCH(depthwise_conv_bwd, a, a.dy.device, a.dy.dtype);
}

void depthwise_conv_step(const DepthwiseConvStep& a) {
  const char* op = "depthwise_conv_step";
  check_defined(op, a.y, "y");
  check_defined(op, a.x, "x");
  check_defined(op, a.w, "w");
  WERSA_CHECK(a.x.rank() == 1, op, ": x must be [C]: ", a.x.describe());
  const int64_t C = a.x.dim(0);
  WERSA_CHECK(a.w.rank() == 2 && a.w.dim(0) == C && a.w.dim(1) >= 1, op, ": w must be [C, K] with C = ", C,
              " and K >= 1: ", a.w.describe());
  const int64_t K = a.w.dim(1);
  check_shape(op, a.y, Shape{C});
  if (K > 1) {
    check_defined(op, a.window, "window");
    check_shape(op, a.window, Shape{K - 1, C});
  }
  if (a.b.defined()) check_shape(op, a.b, Shape{C});
  WERSA_CHECK(a.y.dtype == DType::F32 || a.y.dtype == DType::F64, op, ": y ", a.y.describe(),
              " should be f32 or f64");
  for (const Tensor* t : {&a.window, &a.x, &a.w, &a.b})
    if (t->defined()) check_dtype(op, *t, a.y.dtype);
  WERSA_CHECK(a.pos >= 0, op, ": pos = ", a.pos, ", expected >= 0");
  check_same_device(op, {&a.y, &a.window, &a.x, &a.w, &a.b});
  WERSA_DISPATCH(depthwise_conv_step, a, a.y.device, a.y.dtype);
}

}  // namespace wersa

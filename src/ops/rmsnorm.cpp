#include "wersa/ops/rmsnorm.h"

#include <cmath>

#include "wersa/ops/dispatch.h"

namespace wersa {

void rmsnorm_fwd(const RmsNormFwd& a) {
  const char* op = "rmsnorm_fwd";
  check_defined(op, a.y, "y");
  check_defined(op, a.x, "x");
  check_defined(op, a.w, "w");
  WERSA_CHECK(a.x.rank() == 2, op, ": x must be 2-D [N, C]: ", a.x.describe());
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  check_shape(op, a.y, Shape{N, C});
  check_shape(op, a.w, Shape{C});
  if (a.rstd.defined()) check_shape(op, a.rstd, Shape{N});
  for (const Tensor* t : {&a.x, &a.w, &a.rstd})
    if (t->defined()) check_dtype(op, *t, a.y.dtype);
  check_same_device(op, {&a.y, &a.rstd, &a.x, &a.w});
  WERSA_CHECK(std::isfinite(a.eps) && a.eps > 0, op, ": eps must be a positive number, got ", a.eps);
  WERSA_DISPATCH(rmsnorm_fwd, a, a.y.device, a.y.dtype);
}

void rmsnorm_bwd(const RmsNormBwd& a) {
  const char* op = "rmsnorm_bwd";
  check_defined(op, a.dy, "dy");
  check_defined(op, a.x, "x");
  check_defined(op, a.w, "w");
  check_defined(op, a.rstd, "rstd");
  WERSA_CHECK(a.x.rank() == 2, op, ": x must be 2-D [N, C]: ", a.x.describe());
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  check_shape(op, a.dy, Shape{N, C});
  check_shape(op, a.w, Shape{C});
  check_shape(op, a.rstd, Shape{N});
  if (a.dx.defined()) check_shape(op, a.dx, Shape{N, C});
  if (a.dw.defined()) check_shape(op, a.dw, Shape{C});
  for (const Tensor* t : {&a.dx, &a.dw, &a.x, &a.w, &a.rstd})
    if (t->defined()) check_dtype(op, *t, a.dy.dtype);
  check_same_device(op, {&a.dx, &a.dw, &a.dy, &a.x, &a.w, &a.rstd});
  WERSA_DISPATCH(rmsnorm_bwd, a, a.dy.device, a.dy.dtype);
}

}  // namespace wersa

#include "wersa/ops/layernorm.h"

#include <cmath>

#include "wersa/ops/dispatch.h"

namespace wersa {

void layernorm_fwd(const LayerNormFwd& a) {
  const char* op = "layernorm_fwd";
  check_defined(op, a.y, "y");
  check_defined(op, a.x, "x");
  check_defined(op, a.w, "w");
  check_defined(op, a.b, "b");
  WERSA_CHECK(a.x.rank() == 2, op, ": x must be 2-D [N, C]: ", a.x.describe());
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  check_shape(op, a.y, Shape{N, C});
  check_shape(op, a.w, Shape{C});
  check_shape(op, a.b, Shape{C});
  if (a.mean.defined()) check_shape(op, a.mean, Shape{N});
  if (a.rstd.defined()) check_shape(op, a.rstd, Shape{N});
  for (const Tensor* t : {&a.mean, &a.rstd, &a.x, &a.w, &a.b})
    if (t->defined()) check_dtype(op, *t, a.y.dtype);
  check_same_device(op, {&a.y, &a.mean, &a.rstd, &a.x, &a.w, &a.b});
  WERSA_CHECK(std::isfinite(a.eps) && a.eps > 0, op, ": eps must be a positive number, got ", a.eps);
  WERSA_DISPATCH(layernorm_fwd, a, a.y.device, a.y.dtype);
}

void layernorm_bwd(const LayerNormBwd& a) {
  const char* op = "layernorm_bwd";
  check_defined(op, a.dy, "dy");
  check_defined(op, a.x, "x");
  check_defined(op, a.w, "w");
  check_defined(op, a.mean, "mean");
  check_defined(op, a.rstd, "rstd");
  WERSA_CHECK(a.x.rank() == 2, op, ": x must be 2-D [N, C]: ", a.x.describe());
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  check_shape(op, a.dy, Shape{N, C});
  check_shape(op, a.w, Shape{C});
  check_shape(op, a.mean, Shape{N});
  check_shape(op, a.rstd, Shape{N});
  if (a.dx.defined()) check_shape(op, a.dx, Shape{N, C});
  if (a.dw.defined()) check_shape(op, a.dw, Shape{C});
  if (a.db.defined()) check_shape(op, a.db, Shape{C});
  for (const Tensor* t : {&a.dx, &a.dw, &a.db, &a.x, &a.w, &a.mean, &a.rstd})
    if (t->defined()) check_dtype(op, *t, a.dy.dtype);
  check_same_device(op, {&a.dx, &a.dw, &a.db, &a.dy, &a.x, &a.w, &a.mean, &a.rstd});
  WERSA_DISPATCH(layernorm_bwd, a, a.dy.device, a.dy.dtype);
}

}  // namespace wersa

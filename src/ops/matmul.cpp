#include "wersa/ops/matmul.h"

#include "wersa/ops/dispatch.h"

namespace wersa {

void matmul_fwd(const MatmulFwd& a) {
  const char* op = "matmul_fwd";
  check_defined(op, a.y, "y");
  check_defined(op, a.x, "x");
  check_defined(op, a.w, "w");
  WERSA_CHECK(a.x.rank() == 2 && a.w.rank() == 2, op, ": x and w must be 2-D: ", a.x.describe(), ", ",
              a.w.describe());
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  check_shape(op, a.w, Shape{O, I});
  check_shape(op, a.y, Shape{N, O});
  if (a.b.defined()) check_shape(op, a.b, Shape{O});
  for (const Tensor* t : {&a.x, &a.w, &a.b})
    if (t->defined()) check_dtype(op, *t, a.y.dtype);
  check_same_device(op, {&a.y, &a.x, &a.w, &a.b});
  WERSA_DISPATCH(matmul_fwd, a, a.y.device, a.y.dtype);
}

void matmul_bwd(const MatmulBwd& a) {
  const char* op = "matmul_bwd";
  check_defined(op, a.dy, "dy");
  check_defined(op, a.x, "x");
  check_defined(op, a.w, "w");
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  check_shape(op, a.w, Shape{O, I});
  check_shape(op, a.dy, Shape{N, O});
  if (a.dx.defined()) check_shape(op, a.dx, Shape{N, I});
  if (a.dw.defined()) check_shape(op, a.dw, Shape{O, I});
  if (a.db.defined()) check_shape(op, a.db, Shape{O});
  for (const Tensor* t : {&a.dx, &a.dw, &a.db, &a.x, &a.w})
    if (t->defined()) check_dtype(op, *t, a.dy.dtype);
  check_same_device(op, {&a.dx, &a.dw, &a.db, &a.dy, &a.x, &a.w});
  WERSA_DISPATCH(matmul_bwd, a, a.dy.device, a.dy.dtype);
}

}  // namespace wersa

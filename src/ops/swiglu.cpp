#include "wersa/ops/swiglu.h"

#include "wersa/ops/dispatch.h"

namespace wersa {

void swiglu_fwd(const SwigluFwd& a) {
  const char* op = "swiglu_fwd";
  check_defined(op, a.y, "y");
  check_defined(op, a.gate, "gate");
  check_defined(op, a.up, "up");
  check_shape(op, a.gate, a.y.shape);
  check_shape(op, a.up, a.y.shape);
  check_dtype(op, a.gate, a.y.dtype);
  check_dtype(op, a.up, a.y.dtype);
  check_same_device(op, {&a.y, &a.gate, &a.up});
  WERSA_DISPATCH(swiglu_fwd, a, a.y.device, a.y.dtype);
}

void swiglu_bwd(const SwigluBwd& a) {
  const char* op = "swiglu_bwd";
  check_defined(op, a.dgate, "dgate");
  check_defined(op, a.dup, "dup");
  check_defined(op, a.dy, "dy");
  check_defined(op, a.gate, "gate");
  check_defined(op, a.up, "up");
  for (const Tensor* t : {&a.dgate, &a.dup, &a.gate, &a.up}) {
    check_shape(op, *t, a.dy.shape);
    check_dtype(op, *t, a.dy.dtype);
  }
  WERSA_CHECK(a.dgate.data != a.dup.data, op, ": dgate and dup must not share memory: ", a.dgate.describe(),
              ", ", a.dup.describe());
  check_same_device(op, {&a.dgate, &a.dup, &a.dy, &a.gate, &a.up});
  WERSA_DISPATCH(swiglu_bwd, a, a.dy.device, a.dy.dtype);
}

}  // namespace wersa

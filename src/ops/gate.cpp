#include "wersa/ops/gate.h"

#include "wersa/ops/dispatch.h"

namespace wersa {

void gate_fwd(const GateFwd& a) {
  const char* op = "gate_fwd";
  check_defined(op, a.gamma, "gamma");
  check_defined(op, a.g, "g");
  check_defined(op, a.z, "z");
  check_defined(op, a.s, "s");
  WERSA_CHECK(a.z.rank() == 2, op, ": z must be [N, L+1]: ", a.z.describe());
  check_shape(op, a.s, Shape{a.z.dim(1)});
  check_shape(op, a.g, a.z.shape);
  check_shape(op, a.gamma, a.z.shape);
  for (const Tensor* t : {&a.g, &a.z, &a.s}) check_dtype(op, *t, a.gamma.dtype);
  check_same_device(op, {&a.gamma, &a.g, &a.z, &a.s});
  WERSA_DISPATCH(gate_fwd, a, a.gamma.device, a.gamma.dtype);
}

void gate_bwd(const GateBwd& a) {
  const char* op = "gate_bwd";
  check_defined(op, a.dgamma, "dgamma");
  check_defined(op, a.g, "g");
  check_defined(op, a.s, "s");
  WERSA_CHECK(a.g.rank() == 2, op, ": g must be [N, L+1]: ", a.g.describe());
  check_shape(op, a.dgamma, a.g.shape);
  check_shape(op, a.s, Shape{a.g.dim(1)});
  if (a.dz.defined()) check_shape(op, a.dz, a.g.shape);
  if (a.ds.defined()) check_shape(op, a.ds, a.s.shape);
  for (const Tensor* t : {&a.dz, &a.ds, &a.g, &a.s})
    if (t->defined()) check_dtype(op, *t, a.dgamma.dtype);
  check_same_device(op, {&a.dz, &a.ds, &a.dgamma, &a.g, &a.s});
  WERSA_DISPATCH(gate_bwd, a, a.dgamma.device, a.dgamma.dtype);
}

}  // namespace wersa

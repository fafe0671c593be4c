#include "wersa/ops/adamw.h"

#include "wersa/ops/dispatch.h"

namespace wersa {

void adamw_step(const AdamWArgs& a) {
  const char* op = "adamw_step";
  for (const Tensor* t : {&a.m, &a.v, &a.g}) {
    WERSA_CHECK(t->numel() == a.p.numel(), op, ": ", t->describe(), " does not match ", a.p.describe());
    check_dtype(op, *t, a.p.dtype);
  }
  check_same_device(op, {&a.p, &a.m, &a.v, &a.g});
  WERSA_CHECK(a.step >= 1, op, ": step must be >= 1");
  WERSA_DISPATCH(adamw_step, a, a.p.device, a.p.dtype);
}

}  // namespace wersa

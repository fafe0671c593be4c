#include "wersa/ops/swiglu.h"

#include "check.h"
#include "dispatch.h"

namespace wersa {

void swiglu_fwd(Ctx& ctx, const SwigluFwd& a) {
  const detail::ArgCheck c(ctx, "swiglu_fwd");
  c.need(a.y, "y").need(a.gate, "gate", a.y.shape).need(a.up, "up", a.y.shape);
  c.floating(a.y).dtype(a.y.dtype, {&a.gate, &a.up});
  WERSA_DISPATCH(ctx, swiglu_fwd, a, a.y.dtype);
}

void swiglu_bwd(Ctx& ctx, const SwigluBwd& a) {
  const detail::ArgCheck c(ctx, "swiglu_bwd");
  c.need(a.dy, "dy").need(a.dgate, "dgate", a.dy.shape).need(a.dup, "dup", a.dy.shape);
  c.need(a.gate, "gate", a.dy.shape).need(a.up, "up", a.dy.shape);
  c.floating(a.dy).dtype(a.dy.dtype, {&a.dgate, &a.dup, &a.gate, &a.up});
  c.that(a.dgate.data != a.dup.data, "dgate and dup must not share memory: ", a.dgate, ", ", a.dup);
  WERSA_DISPATCH(ctx, swiglu_bwd, a, a.dy.dtype);
}

}  // namespace wersa

#include "wersa/ops/swiglu.h"

#include "check.h"
#include "dispatch.h"

namespace wersa {

namespace {
// The shape of a packed [..., 2F] tensor for y [..., F].
Shape packed_shape(const Shape& y) {
  Shape s = y;
  s.dim[s.rank - 1] *= 2;
  return s;
}
}  // namespace

void swiglu_fwd(Ctx& ctx, const SwigluFwd& a) {
  const detail::ArgCheck c(ctx, "swiglu_fwd");
  c.need(a.y, "y");
  if (a.gate_up.defined()) {
    c.that(!a.gate.defined() && !a.up.defined(), "gate_up replaces gate and up: ", a.gate_up);
    c.that(a.y.rank() >= 1, "y needs a last dimension: ", a.y);
    c.need(a.gate_up, "gate_up", packed_shape(a.y.shape));
    c.disjoint(a.gate_up, a.y);
  } else {
    c.need(a.gate, "gate", a.y.shape).need(a.up, "up", a.y.shape);
  }
  c.floating(a.y).dtype(a.y.dtype, {&a.gate, &a.up, &a.gate_up});
  WERSA_DISPATCH(ctx, swiglu_fwd, a, a.y.dtype);
}

void swiglu_bwd(Ctx& ctx, const SwigluBwd& a) {
  const detail::ArgCheck c(ctx, "swiglu_bwd");
  c.need(a.dy, "dy");
  if (a.gate_up.defined() || a.dgate_up.defined()) {
    c.that(!a.gate.defined() && !a.up.defined() && !a.dgate.defined() && !a.dup.defined(),
           "gate_up and dgate_up replace gate, up, dgate and dup");
    c.that(a.dy.rank() >= 1, "dy needs a last dimension: ", a.dy);
    const Shape s = packed_shape(a.dy.shape);
    c.need(a.gate_up, "gate_up", s).need(a.dgate_up, "dgate_up", s);
    c.disjoint(a.dgate_up, a.dy).disjoint(a.dgate_up, a.gate_up);
  } else {
    c.need(a.dgate, "dgate", a.dy.shape).need(a.dup, "dup", a.dy.shape);
    c.need(a.gate, "gate", a.dy.shape).need(a.up, "up", a.dy.shape);
    c.that(a.dgate.data != a.dup.data, "dgate and dup must not share memory: ", a.dgate, ", ", a.dup);
  }
  c.floating(a.dy).dtype(a.dy.dtype, {&a.dgate, &a.dup, &a.gate, &a.up, &a.dgate_up, &a.gate_up});
  WERSA_DISPATCH(ctx, swiglu_bwd, a, a.dy.dtype);
}

}  // namespace wersa

#include "wersa/ops/gate.h"

#include "check.h"
#include "dispatch.h"

namespace wersa {

void gate_fwd(Ctx& ctx, const GateFwd& a) {
  const detail::ArgCheck c(ctx, "gate_fwd");
  c.need(a.gamma, "gamma").need(a.g, "g").need(a.z, "z").need(a.s, "s");
  c.that(a.z.rank() == 2, "z must be [N, L+1]: ", a.z);
  c.need(a.s, "s", Shape{a.z.dim(1)}).need(a.g, "g", a.z.shape).need(a.gamma, "gamma", a.z.shape);
  c.floating(a.gamma).dtype(a.gamma.dtype, {&a.g, &a.z, &a.s});
  WERSA_DISPATCH(ctx, gate_fwd, a, a.gamma.dtype);
}

void gate_bwd(Ctx& ctx, const GateBwd& a) {
  const detail::ArgCheck c(ctx, "gate_bwd");
  c.need(a.dgamma, "dgamma").need(a.g, "g").need(a.s, "s");
  c.that(a.g.rank() == 2, "g must be [N, L+1]: ", a.g);
  c.need(a.dgamma, "dgamma", a.g.shape).need(a.s, "s", Shape{a.g.dim(1)});
  c.opt(a.dz, a.g.shape).opt(a.ds, a.s.shape);
  c.floating(a.dgamma).dtype(a.dgamma.dtype, {&a.dz, &a.ds, &a.g, &a.s});
  WERSA_DISPATCH(ctx, gate_bwd, a, a.dgamma.dtype);
}

}  // namespace wersa

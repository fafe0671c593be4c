#include "wersa/ops/adamw.h"

#include "check.h"
#include "dispatch.h"

namespace wersa {

void adamw_step(Ctx& ctx, const AdamWArgs& a) {
  const detail::ArgCheck c(ctx, "adamw_step");
  c.need(a.p, "p").need(a.m, "m").need(a.v, "v").need(a.g, "g").floating(a.p);
  for (const Tensor* t : {&a.m, &a.v, &a.g}) c.that(t->numel() == a.p.numel(), *t, " does not match ", a.p);
  c.dtype(a.p.dtype, {&a.m, &a.v, &a.g});
  c.that(a.step >= 1, "step must be >= 1");
  WERSA_DISPATCH(ctx, adamw_step, a, a.p.dtype);
}

}  // namespace wersa

#include "wersa/ops/adamw.h"

#include <limits>

#include "check.h"
#include "dispatch.h"

namespace wersa {

void adamw_step(Ctx& ctx, const AdamWArgs& a) {
  const detail::ArgCheck c(ctx, "adamw_step");
  c.need(a.p, "p").need(a.m, "m").need(a.v, "v").need(a.g, "g").floating(a.p);
  for (const Tensor* t : {&a.m, &a.v, &a.g}) c.that(t->numel() == a.p.numel(), *t, " does not match ", a.p);
  c.dtype(a.p.dtype, {&a.m, &a.v, &a.g});
  c.that(a.step >= 1, "step must be >= 1");
  // The kernels read and write the four through restrict pointers: no two may overlap.
  const Tensor* ts[] = {&a.p, &a.m, &a.v, &a.g};
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j) c.disjoint(*ts[i], *ts[j]);
  if (a.segments.defined()) {  // the flat form; its rows are checked by the kernels (CPU)
    c.opt(a.segments)
        .that(a.segments.rank() == 2 && a.segments.dim(1) == 3,
              "segments must be [S, 3] (begin, end, decays): ", a.segments);
    c.dtype(DType::I32, {&a.segments});
    c.that(a.p.numel() <= std::numeric_limits<int32_t>::max(), "the flat form indexes ", a.p,
           " with i32 offsets: at most 2^31 - 1 elements");
    for (int i = 0; i < 4; ++i) c.disjoint(*ts[i], a.segments);
  }
  WERSA_DISPATCH(ctx, adamw_step, a, a.p.dtype);
}

}  // namespace wersa

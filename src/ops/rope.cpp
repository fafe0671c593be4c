#include "wersa/ops/rope.h"

#include <cmath>

#include "check.h"
#include "dispatch.h"

namespace wersa {
namespace {

void check_rope(const detail::ArgCheck& c, const RopeArgs& a) {
  c.need(a.y, "y").need(a.x, "x");
  c.that(a.x.rank() == 4, "x must be 4-D [B, T, heads, d]: ", a.x);
  c.need(a.y, "y", a.x.shape).floating(a.y).dtype(a.y.dtype, {&a.x});
  const int64_t d = a.x.dim(3);
  c.that(d > 0 && d % 2 == 0, "head width d = ", d, " of ", a.x,
         " must be even and positive (pairs (i, i + d/2) are rotated)");
  c.that(std::isfinite(a.theta) && a.theta > 0, "rope theta must be a positive number, got ", a.theta);
  c.that(a.pos0 >= 0, "pos0 must be >= 0, got ", a.pos0);
}

}  // namespace

void rope_fwd(Ctx& ctx, const RopeArgs& a) {
  check_rope(detail::ArgCheck(ctx, "rope_fwd"), a);
  WERSA_DISPATCH(ctx, rope_fwd, a, a.y.dtype);
}

void rope_bwd(Ctx& ctx, const RopeArgs& a) {
  check_rope(detail::ArgCheck(ctx, "rope_bwd"), a);
  WERSA_DISPATCH(ctx, rope_bwd, a, a.y.dtype);
}

}  // namespace wersa

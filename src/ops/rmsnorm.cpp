#include "wersa/ops/rmsnorm.h"

#include <cmath>

#include "check.h"
#include "dispatch.h"

namespace wersa {

void rmsnorm_fwd(Ctx& ctx, const RmsNormFwd& a) {
  const detail::ArgCheck c(ctx, "rmsnorm_fwd");
  c.need(a.y, "y").need(a.x, "x").need(a.w, "w");
  c.that(a.x.rank() == 2, "x must be 2-D [N, C]: ", a.x);
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  c.need(a.y, "y", Shape{N, C}).need(a.w, "w", Shape{C}).opt(a.rstd, Shape{N});
  c.floating(a.y).dtype(a.y.dtype, {&a.x, &a.w, &a.rstd});
  c.that(std::isfinite(a.eps) && a.eps > 0, "eps must be a positive number, got ", a.eps);
  WERSA_DISPATCH(ctx, rmsnorm_fwd, a, a.y.dtype);
}

void rmsnorm_bwd(Ctx& ctx, const RmsNormBwd& a) {
  const detail::ArgCheck c(ctx, "rmsnorm_bwd");
  c.need(a.dy, "dy").need(a.x, "x").need(a.w, "w").need(a.rstd, "rstd");
  c.that(a.x.rank() == 2, "x must be 2-D [N, C]: ", a.x);
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  c.need(a.dy, "dy", Shape{N, C}).need(a.w, "w", Shape{C}).need(a.rstd, "rstd", Shape{N});
  c.opt(a.dx, Shape{N, C}).opt(a.dw, Shape{C});
  c.floating(a.dy).dtype(a.dy.dtype, {&a.dx, &a.dw, &a.x, &a.w, &a.rstd});
  WERSA_DISPATCH(ctx, rmsnorm_bwd, a, a.dy.dtype);
}

}  // namespace wersa

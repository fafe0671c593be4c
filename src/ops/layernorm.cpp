#include "wersa/ops/layernorm.h"

#include <cmath>

#include "check.h"
#include "dispatch.h"

namespace wersa {

void layernorm_fwd(Ctx& ctx, const LayerNormFwd& a) {
  const detail::ArgCheck c(ctx, "layernorm_fwd");
  c.need(a.y, "y").need(a.x, "x").need(a.w, "w").need(a.b, "b");
  c.that(a.x.rank() == 2, "x must be 2-D [N, C]: ", a.x);
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  c.need(a.y, "y", Shape{N, C}).need(a.w, "w", Shape{C}).need(a.b, "b", Shape{C});
  c.opt(a.mean, Shape{N}).opt(a.rstd, Shape{N});
  c.floating(a.y).dtype(a.y.dtype, {&a.mean, &a.rstd, &a.x, &a.w, &a.b});
  c.that(std::isfinite(a.eps) && a.eps > 0, "eps must be a positive number, got ", a.eps);
  WERSA_DISPATCH(ctx, layernorm_fwd, a, a.y.dtype);
}

void layernorm_bwd(Ctx& ctx, const LayerNormBwd& a) {
  const detail::ArgCheck c(ctx, "layernorm_bwd");
  c.need(a.dy, "dy").need(a.x, "x").need(a.w, "w").need(a.mean, "mean").need(a.rstd, "rstd");
  c.that(a.x.rank() == 2, "x must be 2-D [N, C]: ", a.x);
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  c.need(a.dy, "dy", Shape{N, C}).need(a.w, "w", Shape{C}).need(a.mean, "mean", Shape{N});
  c.need(a.rstd, "rstd", Shape{N}).opt(a.dx, Shape{N, C}).opt(a.dw, Shape{C}).opt(a.db, Shape{C});
  c.floating(a.dy).dtype(a.dy.dtype, {&a.dx, &a.dw, &a.db, &a.x, &a.w, &a.mean, &a.rstd});
  WERSA_DISPATCH(ctx, layernorm_bwd, a, a.dy.dtype);
}

}  // namespace wersa

#include "wersa/ops/pool.h"

#include "check.h"
#include "dispatch.h"

namespace wersa {

// The lengths themselves are checked by the kernels, where they are (before writing).

void pool_fwd(Ctx& ctx, const PoolFwd& a) {
  const detail::ArgCheck c(ctx, "pool_fwd");
  c.need(a.p, "p").need(a.x, "x").need(a.lengths, "lengths");
  c.that(a.x.rank() == 3, "x must be 3-D [B, T, D]: ", a.x);
  const int64_t B = a.x.dim(0), D = a.x.dim(2);
  c.need(a.p, "p", Shape{B, D}).need(a.lengths, "lengths", Shape{B}).dtype(DType::I32, {&a.lengths});
  c.floating(a.p).dtype(a.p.dtype, {&a.x});
  WERSA_DISPATCH(ctx, pool_fwd, a, a.p.dtype);
}

void pool_bwd(Ctx& ctx, const PoolBwd& a) {
  const detail::ArgCheck c(ctx, "pool_bwd");
  c.need(a.dx, "dx").need(a.dp, "dp").need(a.lengths, "lengths");
  c.that(a.dx.rank() == 3, "dx must be 3-D [B, T, D]: ", a.dx);
  const int64_t B = a.dx.dim(0), D = a.dx.dim(2);
  c.need(a.dp, "dp", Shape{B, D}).need(a.lengths, "lengths", Shape{B}).dtype(DType::I32, {&a.lengths});
  c.floating(a.dx).dtype(a.dx.dtype, {&a.dp});
  WERSA_DISPATCH(ctx, pool_bwd, a, a.dx.dtype);
}

}  // namespace wersa

#include "wersa/ops/mask.h"

#include "check.h"
#include "dispatch.h"

namespace wersa {

// The lengths themselves are checked by the kernels, where they are (before writing).

void mask_padding(Ctx& ctx, const MaskPadding& a) {
  const detail::ArgCheck c(ctx, "mask_padding");
  c.need(a.y, "y").need(a.x, "x").need(a.lengths, "lengths");
  c.that(a.x.rank() >= 2, "x must be [B, T, ...]: ", a.x);
  c.need(a.y, "y", a.x.shape).need(a.lengths, "lengths", Shape{a.x.dim(0)}).dtype(DType::I32, {&a.lengths});
  c.floating(a.y).dtype(a.y.dtype, {&a.x});
  const char *y = static_cast<const char*>(a.y.data), *x = static_cast<const char*>(a.x.data);
  c.that(y == x || y + a.y.bytes() <= x || x + a.x.bytes() <= y, "y ", a.y, " must be x ", a.x,
         " itself or not overlap it");
  WERSA_DISPATCH(ctx, mask_padding, a, a.y.dtype);
}

}  // namespace wersa

#include "wersa/ops/rope.h"

#include <cmath>

#include "wersa/ops/dispatch.h"

namespace wersa {
namespace {

void check_rope(const char* op, const RopeArgs& a) {
  check_defined(op, a.y, "y");
  check_defined(op, a.x, "x");
  WERSA_CHECK(a.x.rank() == 4, op, ": x must be 4-D [B, T, heads, d]: ", a.x.describe());
  check_shape(op, a.y, a.x.shape);
  check_dtype(op, a.x, a.y.dtype);
  check_same_device(op, {&a.y, &a.x});
  const int64_t d = a.x.dim(3);
  WERSA_CHECK(d > 0 && d % 2 == 0, op, ": head width d = ", d, " of ", a.x.describe(),
              " must be even and positive (pairs (i, i + d/2) are rotated)");
  WERSA_CHECK(std::isfinite(a.theta) && a.theta > 0, op, ": rope theta must be a positive number, got ",
              a.theta);
  WERSA_CHECK(a.pos0 >= 0, op, ": pos0 must be >= 0, got ", a.pos0);
}

}  // namespace

void rope_fwd(const RopeArgs& a) {
  check_rope("rope_fwd", a);
  WERSA_DISPATCH(rope_fwd, a, a.y.device, a.y.dtype);
}

void rope_bwd(const RopeArgs& a) {
  check_rope("rope_bwd", a);
  WERSA_DISPATCH(rope_bwd, a, a.y.device, a.y.dtype);
}

}  // namespace wersa

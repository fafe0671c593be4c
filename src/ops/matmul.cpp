#include "wersa/ops/matmul.h"

#include "check.h"
#include "dispatch.h"

namespace wersa {

void matmul_fwd(Ctx& ctx, const MatmulFwd& a) {
  const detail::ArgCheck c(ctx, "matmul_fwd");
  c.need(a.y, "y").need(a.x, "x").need(a.w, "w");
  c.that(a.x.rank() == 2 && a.w.rank() == 2, "x and w must be 2-D: ", a.x, ", ", a.w);
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  c.need(a.w, "w", Shape{O, I}).need(a.y, "y", Shape{N, O}).opt(a.b, Shape{O});
  c.floating(a.y).dtype(a.y.dtype, {&a.x, &a.b});
  if (a.w.dtype == DType::BF16) {  // inference weights: CPU kernel, fp32/f64 arithmetic
    c.that(ctx.device() == Device::CPU, "bf16 weights run on the CPU only: ", a.w);
    WERSA_DISPATCH(ctx, matmul_fwd_bf16w, a, a.y.dtype);
    return;
  }
  c.dtype(a.y.dtype, {&a.w});
  WERSA_DISPATCH(ctx, matmul_fwd, a, a.y.dtype);
}

void matmul_bwd(Ctx& ctx, const MatmulBwd& a) {
  const detail::ArgCheck c(ctx, "matmul_bwd");
  c.need(a.dy, "dy").need(a.x, "x").need(a.w, "w");
  c.that(a.x.rank() == 2 && a.w.rank() == 2, "x and w must be 2-D: ", a.x, ", ", a.w);
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  c.need(a.w, "w", Shape{O, I}).need(a.dy, "dy", Shape{N, O});
  c.opt(a.dx, Shape{N, I}).opt(a.dw, Shape{O, I}).opt(a.db, Shape{O});
  c.floating(a.dy).dtype(a.dy.dtype, {&a.dx, &a.dw, &a.db, &a.x, &a.w});
  WERSA_DISPATCH(ctx, matmul_bwd, a, a.dy.dtype);
}

}  // namespace wersa

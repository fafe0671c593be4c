#include "wersa/ops/conv.h"

#include "check.h"
#include "dispatch.h"

namespace wersa {
namespace {

// x [B, T, C], w [C, K] with K >= 1.
void check_input(const detail::ArgCheck& c, const Tensor& x, const Tensor& w) {
  c.need(x, "x").need(w, "w");
  c.that(x.rank() == 3, "x must be [B, T, C]: ", x);
  c.that(w.rank() == 2 && w.dim(0) == x.dim(2) && w.dim(1) >= 1, "w must be [C, K] with C = ", x.dim(2),
         " and K >= 1: ", w);
}

// Optional per-sequence lengths [B] i32 of x [B, T, C] (their values are checked by the kernels).
void check_lengths(const detail::ArgCheck& c, const Tensor& lengths, const Tensor& x) {
  c.opt(lengths, Shape{x.dim(0)}).dtype(DType::I32, {&lengths});
}

}  // namespace

void depthwise_conv_fwd(Ctx& ctx, const DepthwiseConvFwd& a) {
  const detail::ArgCheck c(ctx, "depthwise_conv_fwd");
  c.need(a.y, "y");
  check_input(c, a.x, a.w);
  c.need(a.y, "y", a.x.shape).opt(a.b, Shape{a.x.dim(2)}).floating(a.y).dtype(a.y.dtype, {&a.x, &a.w, &a.b});
  if (a.window.defined()) {
    c.that(a.causal, "a window (continuing a sequence) needs the causal convolution");
    c.opt(a.window, Shape{a.x.dim(0), a.w.dim(1) - 1, a.x.dim(2)}).dtype(a.y.dtype, {&a.window});
    c.that(a.pos0 >= 0, "pos0 = ", a.pos0, ", expected >= 0");
    c.that(!a.lengths.defined(), "a window (continuing a sequence) takes no lengths");
  }
  check_lengths(c, a.lengths, a.x);
  const int64_t B = a.x.dim(0), T = a.x.dim(1), C = a.x.dim(2), W = a.w.dim(1) - 1;
  if (!a.window.defined() || W == 0) return WERSA_DISPATCH(ctx, depthwise_conv_fwd, a, a.y.dtype);
  // Continuing a sequence (generation): routed here, so that the kernels stay plain.
  const detail::RoutedOp op(ctx, "depthwise_conv_fwd");
  if (B == 1 && T == 1) {  // one position of one sequence: the step kernel
    const DepthwiseConvStep s{a.y.view({C}), a.window.view({W, C}), a.x.view({C}), a.w, a.b, a.pos0};
    return WERSA_DISPATCH(ctx, depthwise_conv_step, s, a.y.dtype);
  }
  // A longer chunk: the forward reading the window, then the window advanced past the chunk.
  WERSA_DISPATCH(ctx, depthwise_conv_fwd, a, a.y.dtype);
  WERSA_DISPATCH(ctx, depthwise_conv_window, (DepthwiseConvWindow{a.window, a.x, a.pos0}), a.y.dtype);
}

void depthwise_conv_bwd(Ctx& ctx, const DepthwiseConvBwd& a) {
  const detail::ArgCheck c(ctx, "depthwise_conv_bwd");
  c.need(a.dy, "dy");
  check_input(c, a.x, a.w);
  c.need(a.dy, "dy", a.x.shape).opt(a.dx, a.x.shape).opt(a.dw, a.w.shape).opt(a.db, Shape{a.x.dim(2)});
  c.floating(a.dy).dtype(a.dy.dtype, {&a.dx, &a.dw, &a.db, &a.x, &a.w});
  check_lengths(c, a.lengths, a.x);
  WERSA_DISPATCH(ctx, depthwise_conv_bwd, a, a.dy.dtype);
}

void depthwise_conv_step(Ctx& ctx, const DepthwiseConvStep& a) {
  const detail::ArgCheck c(ctx, "depthwise_conv_step");
  c.need(a.y, "y").need(a.x, "x").need(a.w, "w");
  c.that(a.x.rank() == 1, "x must be [C]: ", a.x);
  const int64_t C = a.x.dim(0);
  c.that(a.w.rank() == 2 && a.w.dim(0) == C && a.w.dim(1) >= 1, "w must be [C, K] with C = ", C,
         " and K >= 1: ", a.w);
  const int64_t K = a.w.dim(1);
  c.need(a.y, "y", Shape{C});
  if (K > 1) c.need(a.window, "window", Shape{K - 1, C});
  c.opt(a.window).opt(a.b, Shape{C}).floating(a.y).dtype(a.y.dtype, {&a.window, &a.x, &a.w, &a.b});
  c.that(a.pos >= 0, "pos = ", a.pos, ", expected >= 0");
  WERSA_DISPATCH(ctx, depthwise_conv_step, a, a.y.dtype);
}

void depthwise_conv_window(Ctx& ctx, const DepthwiseConvWindow& a) {
  const detail::ArgCheck c(ctx, "depthwise_conv_window");
  c.need(a.window, "window").need(a.x, "x");
  c.that(a.x.rank() == 3, "x must be [B, T, C]: ", a.x);
  c.that(a.window.rank() == 3 && a.window.dim(1) >= 1, "window must be [B, K-1, C] with K >= 2: ", a.window);
  c.need(a.window, "window", Shape{a.x.dim(0), a.window.dim(1), a.x.dim(2)});
  c.floating(a.x).dtype(a.x.dtype, {&a.window}).disjoint(a.window, a.x);
  c.that(a.pos0 >= 0, "pos0 = ", a.pos0, ", expected >= 0");
  WERSA_DISPATCH(ctx, depthwise_conv_window, a, a.x.dtype);
}

}  // namespace wersa

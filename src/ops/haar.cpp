#include "wersa/ops/haar.h"

#include "check.h"
#include "dispatch.h"

namespace wersa {
namespace {

constexpr int kMaxLevels = 16;

void check_levels(const detail::ArgCheck& c, int levels) {
  c.that(levels >= 1 && levels <= kMaxLevels, "levels = ", levels, ", expected 1..", kMaxLevels);
}

// signal [B, T, C]: returns the coefficient shape [L+1, B, T, C].
Shape coef_shape(const detail::ArgCheck& c, const Tensor& signal, const char* what, int levels) {
  c.that(signal.rank() == 3, what, " must be [B, T, C]: ", signal);
  return Shape{levels + 1, signal.dim(0), signal.dim(1), signal.dim(2)};
}

int64_t ring_rows(int levels) { return (int64_t(1) << levels) - 1; }

// A history state [B, 2^L - 1, C] of the signal x [B, T, C] (optional).
void check_state(const detail::ArgCheck& c, const Tensor& state, const Tensor& x, int levels, int64_t pos0) {
  if (!state.defined()) return;
  c.opt(state, Shape{x.dim(0), ring_rows(levels), x.dim(2)}).dtype(x.dtype, {&state});
  c.that(pos0 >= 0, "pos0 = ", pos0, ", expected >= 0");
}

}  // namespace

void haar_analysis_fwd(Ctx& ctx, const HaarAnalysisFwd& a) {
  const detail::ArgCheck c(ctx, "haar_analysis_fwd");
  check_levels(c, a.levels);
  c.need(a.coef, "coef").need(a.x, "x");
  c.need(a.coef, "coef", coef_shape(c, a.x, "x", a.levels)).floating(a.coef).dtype(a.coef.dtype, {&a.x});
  check_state(c, a.state, a.x, a.levels, a.pos0);
  WERSA_DISPATCH(ctx, haar_analysis_fwd, a, a.coef.dtype);
}

void haar_step(Ctx& ctx, const HaarStep& a) {
  const detail::ArgCheck c(ctx, "haar_step");
  check_levels(c, a.levels);
  c.need(a.x, "x").need(a.state, "state");
  c.that(a.x.rank() == 1, "x must be [C]: ", a.x);
  const int64_t C = a.x.dim(0);
  c.need(a.state, "state", Shape{ring_rows(a.levels), C});
  if (a.y.defined()) c.need(a.gamma, "gamma", Shape{a.levels + 1}).need(a.y, "y", Shape{C});
  c.opt(a.gamma).floating(a.x).dtype(a.x.dtype, {&a.y, &a.state, &a.gamma});
  c.that(a.pos >= 0, "pos = ", a.pos, ", expected >= 0");
  WERSA_DISPATCH(ctx, haar_step, a, a.x.dtype);
}

void haar_analysis_bwd(Ctx& ctx, const HaarAnalysisBwd& a) {
  const detail::ArgCheck c(ctx, "haar_analysis_bwd");
  check_levels(c, a.levels);
  c.need(a.dx, "dx").need(a.dcoef, "dcoef");
  c.need(a.dcoef, "dcoef", coef_shape(c, a.dx, "dx", a.levels)).floating(a.dx).dtype(a.dx.dtype, {&a.dcoef});
  WERSA_DISPATCH(ctx, haar_analysis_bwd, a, a.dx.dtype);
}

void haar_synthesis_fwd(Ctx& ctx, const HaarSynthesisFwd& a) {
  const detail::ArgCheck c(ctx, "haar_synthesis_fwd");
  check_levels(c, a.levels);
  c.need(a.y, "y").need(a.coef, "coef").need(a.gamma, "gamma");
  c.need(a.coef, "coef", coef_shape(c, a.y, "y", a.levels));
  c.need(a.gamma, "gamma", Shape{a.y.dim(0), a.y.dim(1), a.levels + 1});
  c.floating(a.y).dtype(a.y.dtype, {&a.coef, &a.gamma});
  WERSA_DISPATCH(ctx, haar_synthesis_fwd, a, a.y.dtype);
}

void haar_synthesis_bwd(Ctx& ctx, const HaarSynthesisBwd& a) {
  const detail::ArgCheck c(ctx, "haar_synthesis_bwd");
  check_levels(c, a.levels);
  c.need(a.dy, "dy").need(a.coef, "coef").need(a.gamma, "gamma");
  c.need(a.coef, "coef", coef_shape(c, a.dy, "dy", a.levels));
  c.need(a.gamma, "gamma", Shape{a.dy.dim(0), a.dy.dim(1), a.levels + 1});
  c.opt(a.dcoef, a.coef.shape).opt(a.dgamma, a.gamma.shape);
  c.floating(a.dy).dtype(a.dy.dtype, {&a.dcoef, &a.dgamma, &a.coef, &a.gamma});
  WERSA_DISPATCH(ctx, haar_synthesis_bwd, a, a.dy.dtype);
}

void haar_filter_fwd(Ctx& ctx, const HaarFilterFwd& a) {
  const detail::ArgCheck c(ctx, "haar_filter_fwd");
  check_levels(c, a.levels);
  c.need(a.y, "y").need(a.x, "x").need(a.gamma, "gamma");
  c.that(a.x.rank() == 3, "x must be [B, T, C]: ", a.x);
  c.need(a.y, "y", a.x.shape).need(a.gamma, "gamma", Shape{a.x.dim(0), a.x.dim(1), a.levels + 1});
  c.floating(a.y).dtype(a.y.dtype, {&a.x, &a.gamma});
  check_state(c, a.state, a.x, a.levels, a.pos0);
  if (!a.state.defined()) return WERSA_DISPATCH(ctx, haar_filter_fwd, a, a.y.dtype);
  // Continuing a sequence from its history state (generation): routed here, so that the kernels
  // stay plain.
  const detail::RoutedOp op(ctx, "haar_filter_fwd");
  const int L = a.levels;
  const int64_t B = a.x.dim(0), T = a.x.dim(1), C = a.x.dim(2);
  if (B == 1 && T == 1) {  // one position of one sequence: the step kernel (analysis and synthesis)
    const HaarStep s{a.y.view({C}), a.state.view({ring_rows(L), C}), a.x.view({C}), a.gamma.view({L + 1}), L,
                     a.pos0};
    return WERSA_DISPATCH(ctx, haar_step, s, a.y.dtype);
  }
  // A longer chunk: the analysis from the state (advancing it) into coefficients held in this
  // call's scratch, then the gated synthesis.
  const Shape cs{L + 1, B, T, C};
  void* held = ctx.take<char>(cs.numel() * int64_t(dtype_size(a.x.dtype)));  // null while planning
  const Tensor coef(held, a.x.dtype, a.x.device, cs, "haar_filter coef");
  WERSA_DISPATCH(ctx, haar_analysis_fwd, (HaarAnalysisFwd{coef, a.x, L, a.state, a.pos0}), a.y.dtype);
  WERSA_DISPATCH(ctx, haar_synthesis_fwd, (HaarSynthesisFwd{a.y, coef, a.gamma, L}), a.y.dtype);
}

void haar_filter_bwd(Ctx& ctx, const HaarFilterBwd& a) {
  const detail::ArgCheck c(ctx, "haar_filter_bwd");
  check_levels(c, a.levels);
  c.need(a.dy, "dy").need(a.x, "x").need(a.gamma, "gamma");
  c.that(a.x.rank() == 3, "x must be [B, T, C]: ", a.x);
  c.need(a.dy, "dy", a.x.shape).need(a.gamma, "gamma", Shape{a.x.dim(0), a.x.dim(1), a.levels + 1});
  c.opt(a.dx, a.x.shape).opt(a.dgamma, a.gamma.shape);
  c.floating(a.dy).dtype(a.dy.dtype, {&a.dx, &a.dgamma, &a.x, &a.gamma});
  WERSA_DISPATCH(ctx, haar_filter_bwd, a, a.dy.dtype);
}

}  // namespace wersa

#include "wersa/ops/haar.h"

#include "wersa/ops/dispatch.h"

namespace wersa {
namespace {

constexpr int kMaxLevels = 16;

void check_levels(const char* op, int levels) {
  WERSA_CHECK(levels >= 1 && levels <= kMaxLevels, op, ": levels = ", levels, ", expected 1..", kMaxLevels);
}

// signal [B, T, C]: returns the coefficient shape [L+1, B, T, C].
Shape coef_shape(const char* op, const Tensor& signal, const char* what, int levels) {
  WERSA_CHECK(signal.rank() == 3, op, ": ", what, " must be [B, T, C]: ", signal.describe());
  return Shape{levels + 1, signal.dim(0), signal.dim(1), signal.dim(2)};
}

}  // namespace

void haar_analysis_fwd(const HaarAnalysisFwd& a) {
  const char* op = "haar_analysis_fwd";
  check_levels(op, a.levels);
  check_defined(op, a.coef, "coef");
  check_defined(op, a.x, "x");
  check_shape(op, a.coef, coef_shape(op, a.x, "x", a.levels));
  check_dtype(op, a.x, a.coef.dtype);
  check_same_device(op, {&a.coef, &a.x});
  WERSA_DISPATCH(haar_analysis_fwd, a, a.coef.device, a.coef.dtype);
}

void haar_analysis_bwd(const HaarAnalysisBwd& a) {
  const char* op = "haar_analysis_bwd";
  check_levels(op, a.levels);
  check_defined(op, a.dx, "dx");
  check_defined(op, a.dcoef, "dcoef");
  check_shape(op, a.dcoef, coef_shape(op, a.dx, "dx", a.levels));
  check_dtype(op, a.dcoef, a.dx.dtype);
  check_same_device(op, {&a.dx, &a.dcoef});
  WERSA_DISPATCH(haar_analysis_bwd, a, a.dx.device, a.dx.dtype);
}

void haar_synthesis_fwd(const HaarSynthesisFwd& a) {
  const char* op = "haar_synthesis_fwd";
  check_levels(op, a.levels);
  check_defined(op, a.y, "y");
  check_defined(op, a.coef, "coef");
  check_defined(op, a.gamma, "gamma");
  check_shape(op, a.coef, coef_shape(op, a.y, "y", a.levels));
  check_shape(op, a.gamma, Shape{a.y.dim(0), a.y.dim(1), a.levels + 1});
  for (const Tensor* t : {&a.coef, &a.gamma}) check_dtype(op, *t, a.y.dtype);
  check_same_device(op, {&a.y, &a.coef, &a.gamma});
  WERSA_DISPATCH(haar_synthesis_fwd, a, a.y.device, a.y.dtype);
}

void haar_synthesis_bwd(const HaarSynthesisBwd& a) {
  const char* op = "haar_synthesis_bwd";
  check_levels(op, a.levels);
  check_defined(op, a.dy, "dy");
  check_defined(op, a.coef, "coef");
  check_defined(op, a.gamma, "gamma");
  check_shape(op, a.coef, coef_shape(op, a.dy, "dy", a.levels));
  check_shape(op, a.gamma, Shape{a.dy.dim(0), a.dy.dim(1), a.levels + 1});
  if (a.dcoef.defined()) check_shape(op, a.dcoef, a.coef.shape);
  if (a.dgamma.defined()) check_shape(op, a.dgamma, a.gamma.shape);
  for (const Tensor* t : {&a.dcoef, &a.dgamma, &a.coef, &a.gamma})
    if (t->defined()) check_dtype(op, *t, a.dy.dtype);
  check_same_device(op, {&a.dcoef, &a.dgamma, &a.dy, &a.coef, &a.gamma});
  WERSA_DISPATCH(haar_synthesis_bwd, a, a.dy.device, a.dy.dtype);
}

}  // namespace wersa

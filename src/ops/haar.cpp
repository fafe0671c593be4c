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

int64_t ring_rows(int levels) { return (int64_t(1) << levels) - 1; }

}  // namespace

void haar_analysis_fwd(const HaarAnalysisFwd& a) {
  const char* op = "haar_analysis_fwd";
  check_levels(op, a.levels);
  check_defined(op, a.coef, "coef");
  check_defined(op, a.x, "x");
  check_shape(op, a.coef, coef_shape(op, a.x, "x", a.levels));
  check_dtype(op, a.x, a.coef.dtype);
  if (a.state.defined()) {
    check_shape(op, a.state, Shape{a.x.dim(0), ring_rows(a.levels), a.x.dim(2)});
    check_dtype(op, a.state, a.coef.dtype);
    WERSA_CHECK(a.pos0 >= 0, op, ": pos0 = ", a.pos0, ", expected >= 0");
  }
  check_same_device(op, {&a.coef, &a.x, &a.state});
  WERSA_DISPATCH(haar_analysis_fwd, a, a.coef.device, a.coef.dtype);
}

void haar_step(const HaarStep& a) {
  const char* op = "haar_step";
  check_levels(op, a.levels);
  check_defined(op, a.x, "x");
  check_defined(op, a.state, "state");
  WERSA_CHECK(a.x.rank() == 1, op, ": x must be [C]: ", a.x.describe());
  const int64_t C = a.x.dim(0);
  check_shape(op, a.state, Shape{ring_rows(a.levels), C});
  if (a.y.defined()) {
    check_defined(op, a.gamma, "gamma");
    check_shape(op, a.y, Shape{C});
    check_shape(op, a.gamma, Shape{a.levels + 1});
  }
  WERSA_CHECK(a.x.dtype == DType::F32 || a.x.dtype == DType::F64, op, ": x ", a.x.describe(),
              " should be f32 or f64");
  for (const Tensor* t : {&a.y, &a.state, &a.gamma})
    if (t->defined()) check_dtype(op, *t, a.x.dtype);
  WERSA_CHECK(a.pos >= 0, op, ": pos = ", a.pos, ", expected >= 0");
  check_same_device(op, {&a.y, &a.state, &a.x, &a.gamma});
  WERSA_DISPATCH(haar_step, a, a.x.device, a.x.dtype);
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

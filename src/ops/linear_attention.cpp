#include "wersa/ops/linear_attention.h"

#include <cmath>
#include <utility>

#include "wersa/ops/dispatch.h"

namespace wersa {

namespace {

struct LinDims {
  int64_t B, T, H, Hkv, m, d;
};

void check_float(const char* op, const Tensor& t) {
  WERSA_CHECK(t.dtype == DType::F32 || t.dtype == DType::F64, op, ": tensor ", t.describe(),
              " should be f32 or f64");
}

void check_rank(const char* op, const Tensor& t, int rank, const char* layout) {
  WERSA_CHECK(t.rank() == rank, op, ": tensor ", t.describe(), " should be ", layout);
}

void check_heads(const char* op, int64_t H, int64_t Hkv, const Tensor& q, const Tensor& k) {
  WERSA_CHECK(Hkv > 0 && H % Hkv == 0, op, ": query heads (", q.describe(),
              ") must be a multiple of key/value heads (", k.describe(), ")");
}

void check_common(const char* op, int chunk, double eps) {
  WERSA_CHECK(chunk >= 1, op, ": chunk = ", chunk, ", expected >= 1");
  WERSA_CHECK(std::isfinite(eps) && eps >= 0, op, ": eps = ", eps, ", expected finite and >= 0");
}

// Validates phiq [B,T,H,m], phik [B,T,Hkv,m], v [B,T,Hkv,d] and returns the sizes.
LinDims check_inputs(const char* op, const Tensor& phiq, const Tensor& phik, const Tensor& v) {
  check_defined(op, phiq, "phiq");
  check_defined(op, phik, "phik");
  check_defined(op, v, "v");
  check_rank(op, phiq, 4, "[B, T, H, m]");
  check_rank(op, phik, 4, "[B, T, Hkv, m]");
  check_rank(op, v, 4, "[B, T, Hkv, d]");
  LinDims D{phiq.dim(0), phiq.dim(1), phiq.dim(2), phik.dim(2), phiq.dim(3), v.dim(3)};
  check_heads(op, D.H, D.Hkv, phiq, phik);
  check_shape(op, phik, Shape{D.B, D.T, D.Hkv, D.m});
  check_shape(op, v, Shape{D.B, D.T, D.Hkv, D.d});
  check_float(op, phiq);
  check_dtype(op, phik, phiq.dtype);
  check_dtype(op, v, phiq.dtype);
  return D;
}

}  // namespace

void linear_attention_fwd(const LinearAttnFwd& a) {
  const char* op = "linear_attention_fwd";
  const LinDims D = check_inputs(op, a.phiq, a.phik, a.v);
  check_common(op, a.chunk, a.eps);
  check_defined(op, a.o, "o");
  check_defined(op, a.den, "den");
  check_shape(op, a.o, Shape{D.B, D.T, D.H, D.d});
  check_shape(op, a.den, Shape{D.B, D.T, D.H});
  check_dtype(op, a.o, a.phiq.dtype);
  check_dtype(op, a.den, a.phiq.dtype);
  if (a.S0.defined() || a.z0.defined()) {
    WERSA_CHECK(a.causal, op, ": an initial state (S0, z0) needs causal attention");
    check_defined(op, a.S0, "S0");
    check_defined(op, a.z0, "z0");
    check_shape(op, a.S0, Shape{D.B, D.Hkv, D.m, D.d});
    check_shape(op, a.z0, Shape{D.B, D.Hkv, D.m});
    check_dtype(op, a.S0, a.phiq.dtype);
    check_dtype(op, a.z0, a.phiq.dtype);
  }
  check_same_device(op, {&a.o, &a.den, &a.phiq, &a.phik, &a.v, &a.S0, &a.z0});
  WERSA_DISPATCH(linear_attention_fwd, a, a.phiq.device, a.phiq.dtype);
}

void linear_attention_bwd(const LinearAttnBwd& a) {
  const char* op = "linear_attention_bwd";
  const LinDims D = check_inputs(op, a.phiq, a.phik, a.v);
  check_common(op, a.chunk, a.eps);
  const std::pair<const Tensor*, const char*> need[] = {{&a.dphiq, "dphiq"}, {&a.dphik, "dphik"},
                                                        {&a.dv, "dv"},       {&a.dout, "dout"},
                                                        {&a.o, "o"},         {&a.den, "den"}};
  for (const auto& [t, what] : need) {
    check_defined(op, *t, what);
    check_dtype(op, *t, a.phiq.dtype);
  }
  check_shape(op, a.dphiq, a.phiq.shape);
  check_shape(op, a.dphik, a.phik.shape);
  check_shape(op, a.dv, a.v.shape);
  check_shape(op, a.dout, Shape{D.B, D.T, D.H, D.d});
  check_shape(op, a.o, Shape{D.B, D.T, D.H, D.d});
  check_shape(op, a.den, Shape{D.B, D.T, D.H});
  check_same_device(op, {&a.dphiq, &a.dphik, &a.dv, &a.dout, &a.o, &a.den, &a.phiq, &a.phik, &a.v});
  WERSA_DISPATCH(linear_attention_bwd, a, a.phiq.device, a.phiq.dtype);
}

void linear_attention_step(const LinearAttnStep& a) {
  const char* op = "linear_attention_step";
  const std::pair<const Tensor*, const char*> need[] = {{&a.o, "o"},       {&a.S, "S"},       {&a.z, "z"},
                                                        {&a.phiq, "phiq"}, {&a.phik, "phik"}, {&a.v, "v"}};
  for (const auto& [t, what] : need) check_defined(op, *t, what);
  check_rank(op, a.phiq, 2, "[H, m]");
  check_rank(op, a.phik, 2, "[Hkv, m]");
  check_rank(op, a.v, 2, "[Hkv, d]");
  const int64_t H = a.phiq.dim(0), m = a.phiq.dim(1), Hkv = a.phik.dim(0), d = a.v.dim(1);
  check_heads(op, H, Hkv, a.phiq, a.phik);
  check_shape(op, a.phik, Shape{Hkv, m});
  check_shape(op, a.v, Shape{Hkv, d});
  check_shape(op, a.S, Shape{Hkv, m, d});
  check_shape(op, a.z, Shape{Hkv, m});
  check_shape(op, a.o, Shape{H, d});
  check_float(op, a.phiq);
  for (const auto& [t, what] : need) check_dtype(op, *t, a.phiq.dtype);
  check_common(op, 1, a.eps);
  check_same_device(op, {&a.o, &a.S, &a.z, &a.phiq, &a.phik, &a.v});
  WERSA_DISPATCH(linear_attention_step, a, a.phiq.device, a.phiq.dtype);
}

void linear_attention_state(const LinearAttnState& a) {
  const char* op = "linear_attention_state";
  check_defined(op, a.S, "S");
  check_defined(op, a.z, "z");
  check_defined(op, a.phik, "phik");
  check_defined(op, a.v, "v");
  check_rank(op, a.phik, 4, "[B, T, Hkv, m]");
  check_rank(op, a.v, 4, "[B, T, Hkv, d]");
  const int64_t B = a.phik.dim(0), T = a.phik.dim(1), Hkv = a.phik.dim(2), m = a.phik.dim(3);
  const int64_t d = a.v.dim(3);
  check_shape(op, a.v, Shape{B, T, Hkv, d});
  check_shape(op, a.S, Shape{B, Hkv, m, d});
  check_shape(op, a.z, Shape{B, Hkv, m});
  check_float(op, a.phik);
  for (const Tensor* t : {&a.S, &a.z, &a.v}) check_dtype(op, *t, a.phik.dtype);
  check_same_device(op, {&a.S, &a.z, &a.phik, &a.v});
  WERSA_DISPATCH(linear_attention_state, a, a.phik.device, a.phik.dtype);
}

}  // namespace wersa

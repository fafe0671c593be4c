#include "wersa/ops/linear_attention.h"

#include <cmath>

#include "check.h"
#include "dispatch.h"

namespace wersa {

namespace {

struct LinDims {
  int64_t B, T, H, Hkv, m, d;
};

void check_heads(const detail::ArgCheck& c, int64_t H, int64_t Hkv, const Tensor& q, const Tensor& k) {
  c.that(Hkv > 0 && H % Hkv == 0, "query heads (", q, ") must be a multiple of key/value heads (", k, ")");
}

void check_common(const detail::ArgCheck& c, int chunk, double eps) {
  c.that(chunk >= 1, "chunk = ", chunk, ", expected >= 1");
  c.that(std::isfinite(eps) && eps >= 0, "eps = ", eps, ", expected finite and >= 0");
}

// Validates phiq [B,T,H,m], phik [B,T,Hkv,m], v [B,T,Hkv,d] and returns the sizes.
LinDims check_inputs(const detail::ArgCheck& c, const Tensor& phiq, const Tensor& phik, const Tensor& v) {
  c.need(phiq, "phiq").need(phik, "phik").need(v, "v");
  c.rank(phiq, 4, "[B, T, H, m]").rank(phik, 4, "[B, T, Hkv, m]").rank(v, 4, "[B, T, Hkv, d]");
  LinDims D{phiq.dim(0), phiq.dim(1), phiq.dim(2), phik.dim(2), phiq.dim(3), v.dim(3)};
  check_heads(c, D.H, D.Hkv, phiq, phik);
  c.need(phik, "phik", Shape{D.B, D.T, D.Hkv, D.m}).need(v, "v", Shape{D.B, D.T, D.Hkv, D.d});
  c.floating(phiq).dtype(phiq.dtype, {&phik, &v});
  return D;
}

}  // namespace

void linear_attention_fwd(Ctx& ctx, const LinearAttnFwd& a) {
  const detail::ArgCheck c(ctx, "linear_attention_fwd");
  const LinDims D = check_inputs(c, a.phiq, a.phik, a.v);
  check_common(c, a.chunk, a.eps);
  c.need(a.o, "o", Shape{D.B, D.T, D.H, D.d}).need(a.den, "den", Shape{D.B, D.T, D.H});
  c.dtype(a.phiq.dtype, {&a.o, &a.den});
  if (a.S0.defined() || a.z0.defined() || a.advance) {
    c.that(a.causal, "an initial state (S0, z0) needs causal attention");
    c.need(a.S0, "S0", Shape{D.B, D.Hkv, D.m, D.d}).need(a.z0, "z0", Shape{D.B, D.Hkv, D.m});
    c.dtype(a.phiq.dtype, {&a.S0, &a.z0});
  }
  if (!a.advance) return WERSA_DISPATCH(ctx, linear_attention_fwd, a, a.phiq.dtype);
  // Advancing a state (generation): routed here, so that the kernels stay plain.
  const detail::RoutedOp op(ctx, "linear_attention_fwd");
  if (D.B == 1 && D.T == 1) {  // one position of one sequence: the step (update, then query)
    const LinearAttnStep s{a.o.view({D.H, D.d}),
                           a.S0.view({D.Hkv, D.m, D.d}),
                           a.z0.view({D.Hkv, D.m}),
                           a.phiq.view({D.H, D.m}),
                           a.phik.view({D.Hkv, D.m}),
                           a.v.view({D.Hkv, D.d}),
                           a.eps,
                           a.den.view({D.H})};
    return WERSA_DISPATCH(ctx, linear_attention_step, s, a.phiq.dtype);
  }
  // A longer chunk: the chunked kernel from (S0, z0), then the state advanced past the chunk.
  LinearAttnFwd f = a;
  f.advance = false;
  WERSA_DISPATCH(ctx, linear_attention_fwd, f, a.phiq.dtype);
  WERSA_DISPATCH(ctx, linear_attention_state, (LinearAttnState{a.S0, a.z0, a.phik, a.v, true}), a.phiq.dtype);
}

void linear_attention_bwd(Ctx& ctx, const LinearAttnBwd& a) {
  const detail::ArgCheck c(ctx, "linear_attention_bwd");
  const LinDims D = check_inputs(c, a.phiq, a.phik, a.v);
  check_common(c, a.chunk, a.eps);
  c.need(a.dphiq, "dphiq").need(a.dphik, "dphik").need(a.dv, "dv").need(a.dout, "dout");
  c.need(a.o, "o").need(a.den, "den");
  c.dtype(a.phiq.dtype, {&a.dphiq, &a.dphik, &a.dv, &a.dout, &a.o, &a.den});
  c.need(a.dphiq, "dphiq", a.phiq.shape).need(a.dphik, "dphik", a.phik.shape).need(a.dv, "dv", a.v.shape);
  c.need(a.dout, "dout", Shape{D.B, D.T, D.H, D.d}).need(a.o, "o", Shape{D.B, D.T, D.H, D.d});
  c.need(a.den, "den", Shape{D.B, D.T, D.H});
  WERSA_DISPATCH(ctx, linear_attention_bwd, a, a.phiq.dtype);
}

void linear_attention_step(Ctx& ctx, const LinearAttnStep& a) {
  const detail::ArgCheck c(ctx, "linear_attention_step");
  c.need(a.o, "o").need(a.S, "S").need(a.z, "z").need(a.phiq, "phiq").need(a.phik, "phik").need(a.v, "v");
  c.rank(a.phiq, 2, "[H, m]").rank(a.phik, 2, "[Hkv, m]").rank(a.v, 2, "[Hkv, d]");
  const int64_t H = a.phiq.dim(0), m = a.phiq.dim(1), Hkv = a.phik.dim(0), d = a.v.dim(1);
  check_heads(c, H, Hkv, a.phiq, a.phik);
  c.need(a.phik, "phik", Shape{Hkv, m}).need(a.v, "v", Shape{Hkv, d}).need(a.S, "S", Shape{Hkv, m, d});
  c.need(a.z, "z", Shape{Hkv, m}).need(a.o, "o", Shape{H, d}).opt(a.den, Shape{H});
  c.floating(a.phiq).dtype(a.phiq.dtype, {&a.o, &a.S, &a.z, &a.phik, &a.v, &a.den});
  check_common(c, 1, a.eps);
  WERSA_DISPATCH(ctx, linear_attention_step, a, a.phiq.dtype);
}

void linear_attention_state(Ctx& ctx, const LinearAttnState& a) {
  const detail::ArgCheck c(ctx, "linear_attention_state");
  c.need(a.S, "S").need(a.z, "z").need(a.phik, "phik").need(a.v, "v");
  c.rank(a.phik, 4, "[B, T, Hkv, m]").rank(a.v, 4, "[B, T, Hkv, d]");
  const int64_t B = a.phik.dim(0), T = a.phik.dim(1), Hkv = a.phik.dim(2), m = a.phik.dim(3);
  const int64_t d = a.v.dim(3);
  c.need(a.v, "v", Shape{B, T, Hkv, d}).need(a.S, "S", Shape{B, Hkv, m, d}).need(a.z, "z", Shape{B, Hkv, m});
  c.floating(a.phik).dtype(a.phik.dtype, {&a.S, &a.z, &a.v});
  WERSA_DISPATCH(ctx, linear_attention_state, a, a.phik.dtype);
}

}  // namespace wersa

// exp and the functions built on it, for floats, without a libm call per element. Each is written
// once as a template over float and simd::VF (simd.h), so a vector lane gives bitwise the scalar
// result; the scalar names (vexp_one, ...) are the float instances.
// Range reduction x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in a high part exact in float and a
// low part), exp(r) by its Taylor polynomial to degree 7 (truncation below 6e-9 relative, under
// 0.1 ulp), then the exponent n added to the bits. Inputs below -87.3 (where the result would be
// subnormal, < 1.2e-38) give 0; NaN is not expected (callers pass x - max(x) of finite logits).
// Checked against std::exp in double over [-87.25, 88] (2 ulp): tests/test_kernels_vexp.cpp.
#pragma once
#include <cstdint>

#include "simd.h"

namespace wersa::cpu {

namespace vx {
using simd::exp2i;
using simd::fma_exact;
using simd::fma_f;
using simd::sel;

// exp(r) 2^n for the reduced argument r (|r| <= ln2 / 2 up to rounding) and the integer n (as a
// float): the Taylor polynomial by Horner's rule in fused multiply-adds.
template <class V>
inline V reduced(V r, V n) {
  V p = fma_f(V(1.f / 5040.f), r, V(1.f / 720.f));
  p = fma_f(p, r, V(1.f / 120.f));
  p = fma_f(p, r, V(1.f / 24.f));
  p = fma_f(p, r, V(1.f / 6.f));
  p = fma_f(p, r, V(0.5f));
  p = fma_f(p, r, V(1.f));
  p = fma_f(p, r, V(1.f));
  return p * exp2i(n);
}

constexpr float kLo = -87.3f;                         // below: the result is 0
constexpr float kLn2Hi = 0.693145751953125f;          // 45425 * 2^-16: n * kLn2Hi is exact
constexpr float kLn2Lo = 1.42860682030941723212e-6f;  // ln2 - kLn2Hi

// round(x / ln2): adding and subtracting 1.5 * 2^23 rounds to the nearest integer.
template <class V>
inline V round_n(V x) {
  return (x * V(1.44269504088896341f) + V(12582912.f)) - V(12582912.f);
}

template <class V>
inline V exp(V x) {
  const auto under = x < V(kLo);
  x = sel(under, V(kLo), x);
  x = sel(x > V(88.3f), V(88.3f), x);
  const V n = round_n(x);
  const V r = fma_f(-n, V(kLn2Lo), x - n * V(kLn2Hi));
  return sel(under, V(0.f), reduced(r, n));
}

// exp(a + b) for a in [-87, 0] and |b| <= 4 without rounding a + b first (that rounding, up to
// 4e-6 at a = -84, would be the result's relative error): n is taken from a + b, then a - n kLn2Hi
// is exact (both are multiples of 2^-17 and their difference is below 8) and b joins the reduced
// argument. 0 where a + b < -87.3.
template <class V>
inline V exp_sum(V a, V b) {
  const V x = a + b;
  const auto under = x < V(kLo);
  const V n = round_n(sel(under, V(kLo), x));
  const V r = fma_f(-n, V(kLn2Lo), (a - n * V(kLn2Hi)) + b);
  return sel(under, V(0.f), reduced(r, n));
}

template <class V>
inline V sigmoid(V x) {
  const V ax = sel(x < V(0.f), -x, x);
  const V e = exp(sel(ax < V(88.f), -ax, V(-88.f)));
  const V r = V(1.f) / (V(1.f) + e);
  return sel(x >= V(0.f), r, sel(x < V(0.f), e * r, x));
}

template <class V>
inline V normal_cdf(V x) {
  const V ax = sel(x < V(0.f), -x, x);
  const auto in = ax < V(13.f);
  const V a = sel(in, ax, V(13.f));
  const V z = a * V(0.70710678118654752f);
  const V t = V(1.f) / fma_f(V(0.5f), z, V(1.f));
  V p = fma_f(V(0.17087277f), t, V(-0.82215223f));
  p = fma_f(p, t, V(1.48851587f));
  p = fma_f(p, t, V(-1.13520398f));
  p = fma_f(p, t, V(0.27886807f));
  p = fma_f(p, t, V(-0.18628806f));
  p = fma_f(p, t, V(0.09678418f));
  p = fma_f(p, t, V(0.37409196f));
  p = fma_f(p, t, V(1.00002368f));
  p = fma_f(p, t, V(-1.26551223f));
  const V sq = a * a;
  const V hi = V(0.5f) * sq;                    // z^2 = x^2 / 2 from x itself: z's own rounding would cost
  const V lo = V(0.5f) * fma_exact(a, a, -sq);  // 1e-5 relative at z = 9
  const V half_erfc = V(0.5f) * t * exp_sum(-hi, p - lo);
  const V cdf = sel(x < V(0.f), half_erfc, V(1.f) - half_erfc);
  return sel(in, cdf, sel(x < V(0.f), V(0.f), sel(x > V(0.f), V(1.f), x)));
}

template <class V>
inline V normal_pdf(V x) {
  const V h = V(0.5f) * x;
  const V hi = h * x;
  const V lo = fma_exact(h, x, -hi);
  const auto in = hi < V(88.f);
  const V e = sel(in, exp(-hi), V(0.f));
  const V d = sel(in, fma_f(-e, lo, e), V(0.f));
  return sel(hi == hi, V(0.39894228040143267794f) * d, x);
}

}  // namespace vx

inline float vexp_one(float x) { return vx::exp(x); }
inline float vexp_sum_one(float a, float b) { return vx::exp_sum(a, b); }

// Logistic sigmoid through vexp_one: e = exp(-|x|) in (0, 1], 1 / (1 + e) for x >= 0 and
// e / (1 + e) below, so exp is only taken of a non-positive number. Below x = -87.3 the result is 0
// (vexp_one's cut; the exact value is under 1.2e-38); |x| is capped at 88, which also keeps NaN out
// of vexp_one's integer conversion; a NaN input is returned as it is.
inline float vsigmoid_one(float x) { return vx::sigmoid(x); }

// Standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2 for GELU. erfc(z), z >= 0, by the Chebyshev
// fit of Numerical Recipes in C (2nd ed., section 6.2, erfcc; fractional error below 1.2e-7):
//   erfc(z) = t exp(-z^2 + P(t)),  t = 1 / (1 + z / 2),  P a degree-9 polynomial,
// with -z^2 split as -hi - lo (hi = x*x/2 rounded, lo = its rounding error by fma) and the
// exponent -hi + (P - lo) reduced by vexp_sum_one, so that large z keep their relative accuracy;
// then Phi = erfc(z) / 2 below 0 and 1 - erfc(z) / 2 above. Below x = -13 the result is 0 (the
// exact value is under 1e-38). Float throughout: below 6e-7 relative (5 ulp) over [-12.9, 12.9]
// (tests/test_kernels_vexp.cpp).
inline float vnormal_cdf_one(float x) { return vx::normal_cdf(x); }

// Standard normal density exp(-x^2 / 2) / sqrt(2 pi), with x^2 / 2 split as in vnormal_cdf_one:
// exp(-hi - lo) = exp(-hi) (1 - lo) to 1e-11 (|lo| <= 2^-18 where hi < 88).
inline float vnormal_pdf_one(float x) { return vx::normal_pdf(x); }

// out[i] = exp(x[i] - shift) for i < n (out may equal x); returns the sum of the outputs,
// accumulated in double in 16 lanes (fixed order: the same on every thread count).
double vexp_shift_sum(int64_t n, const float* x, float shift, float* out);
// The same sum without storing the outputs.
double vexp_shift_sum(int64_t n, const float* x, float shift);

}  // namespace wersa::cpu

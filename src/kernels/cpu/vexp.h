// exp of a row of floats, written so the compiler vectorises it (no libm call per element).
// Range reduction x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in a high part exact in float and a
// low part), exp(r) by its Taylor polynomial to degree 7 (truncation below 6e-9 relative, under
// 0.1 ulp), then the exponent n added to the bits. Inputs below -87.3 (where the result would be
// subnormal, < 1.2e-38) give 0; NaN is not expected (callers pass x - max(x) of finite logits).
// Checked against std::exp in double over [-87.25, 88] (2 ulp): tests/test_kernels_vexp.cpp.
#pragma once
#include <cstdint>

namespace wersa::cpu {

inline float vexp_one(float x) {
  const float lo = -87.3f;
  const bool under = x < lo;
  x = x < lo ? lo : x;
  x = x > 88.3f ? 88.3f : x;
  // n = round(x / ln2): adding and subtracting 1.5 * 2^23 rounds to the nearest integer.
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;
  float r = x - n * 0.693145751953125f;  // ln2 high: 13 significant bits, n * hi exact
  r = r - n * 1.42860682030941723212e-6f;
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  const float scale = __builtin_bit_cast(float, bits);
  return under ? 0.f : p * scale;
}

// Logistic sigmoid through vexp_one: e = exp(-|x|) in (0, 1], 1 / (1 + e) for x >= 0 and
// e / (1 + e) below, so exp is only taken of a non-positive number. Below x = -87.3 the result is 0
// (vexp_one's cut; the exact value is under 1.2e-38); |x| is capped at 88, which also keeps NaN out
// of vexp_one's integer conversion; a NaN input is returned as it is.
inline float vsigmoid_one(float x) {
  const float ax = x < 0.f ? -x : x;
  const float e = vexp_one(ax < 88.f ? -ax : -88.f);
  const float r = 1.f / (1.f + e);
  return x >= 0.f ? r : (x < 0.f ? e * r : x);
}

// Standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2 for GELU. erfc(z), z >= 0, by the Chebyshev
// fit of Numerical Recipes in C (2nd ed., section 6.2, erfcc; fractional error below 1.2e-7):
//   erfc(z) = t exp(-z^2 + P(t)),  t = 1 / (1 + z / 2),  P a degree-9 polynomial,
// with exp(-z^2) split as exp(-hi) exp(-lo) (hi = x*x/2 rounded, lo = its rounding error by fma),
// so that large z keep their relative accuracy; then Phi = erfc(z) / 2 below 0 and 1 - erfc(z) / 2
// above. Below x = -13 the result is 0 (the exact value is under 1e-38). Float throughout: below 6e-7
// relative (5 ulp) over [-12.9, 12.9] (tests/test_kernels_vexp.cpp).
inline float vnormal_cdf_one(float x) {
  const float ax = x < 0.f ? -x : x;
  const float a = ax < 13.f ? ax : 13.f;
  const float z = a * 0.70710678118654752f;
  const float t = 1.f / (1.f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float hi = 0.5f * (a * a);  // z^2 = x^2 / 2 from x itself: z's own rounding would cost
  const float lo = 0.5f * __builtin_fmaf(a, a, -(a * a));  // 1e-5 relative at z = 9
  const float half_erfc = 0.5f * t * vexp_one(-hi) * vexp_one(p - lo);
  const float cdf = x < 0.f ? half_erfc : 1.f - half_erfc;
  return ax < 13.f ? cdf : (x < 0.f ? 0.f : (x > 0.f ? 1.f : x));
}

// Standard normal density exp(-x^2 / 2) / sqrt(2 pi), with x^2 / 2 split as in vnormal_cdf_one.
inline float vnormal_pdf_one(float x) {
  const float h = 0.5f * x;
  const float hi = h * x;
  const float lo = __builtin_fmaf(h, x, -hi);
  const float e = hi < 88.f ? vexp_one(-hi) * vexp_one(-lo) : 0.f;
  return hi == hi ? 0.39894228040143267794f * e : x;
}

// out[i] = exp(x[i] - shift) for i < n (out may equal x); returns the sum of the outputs,
// accumulated in double in 16 lanes (fixed order: the same on every thread count).
double vexp_shift_sum(int64_t n, const float* x, float shift, float* out);
// The same sum without storing the outputs.
double vexp_shift_sum(int64_t n, const float* x, float shift);

}  // namespace wersa::cpu

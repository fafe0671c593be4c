// Internal to the CUDA activation and SwiGLU kernels (activation.cu, swiglu.cu): the scalar
// functions of the CPU kernels from the CUDA math library (exp, erfc in the tensor's type), each
// matching the CPU function its op uses, cuts included:
//   sigmoid_t(x)     1 / (1 + e^-x), exp taken of a non-positive number only (scalar.h: the CPU's
//                    activations in both types, no cut)
//   sigmoid_vx_t(x)  the same; in float with vexp.h's cut (the CPU's float SwiGLU): e^-|x| is 0
//                    where |x| > 87.3
//   normal_cdf_t(x)  Phi(x) = erfc(-x / sqrt 2) / 2; in float as vexp.h: 0 at x <= -13, 1 at
//                    x >= 13 (the CPU's float GELU; double: scalar.h)
//   normal_pdf_t(x)  exp(-x^2 / 2) / sqrt(2 pi); in float as vexp.h: 0 where x^2 / 2 > 87.3
// The cuts sit where the exact result is below or near the smallest normal float, so a product
// with an infinite dy is NaN (0 * inf) at the same places on both devices, not inf times a
// subnormal. NaN passes through all of them. As on the CPU, float carries the arguments of exp and
// erfc with their rounding errors (x^2 / 2 = hi + lo, -x / sqrt 2 = zh + zl, by fma) so that Phi
// and the density keep their relative accuracy for large |x|.
#pragma once
#include <cuda_runtime.h>

namespace wersa::cuda {
namespace {

constexpr float kExpCut = 87.3f;  // vexp.h kLo: exp(y) = 0 below y = -kExpCut

__device__ inline float exp_t(float x) { return expf(x); }
__device__ inline double exp_t(double x) { return exp(x); }

// sigmoid as scalar.h (the CPU's activations, both types): no cut.
template <class T>
__device__ inline T sigmoid_t(T x) {
  if (x >= T(0)) return T(1) / (T(1) + exp_t(-x));
  const T e = exp_t(x);
  return e / (T(1) + e);
}

// sigmoid as vexp.h's vx::sigmoid in float (the CPU's SwiGLU): exp(-|x|) is 0 where |x| > 87.3.
__device__ inline float sigmoid_vx_t(float x) {
  if (x >= 0.f) return 1.f / (1.f + (x > kExpCut ? 0.f : expf(-x)));
  const float e = x < -kExpCut ? 0.f : expf(x);
  return e / (1.f + e);
}
__device__ inline double sigmoid_vx_t(double x) { return sigmoid_t(x); }

__device__ inline float normal_cdf_t(float x) {
  if (x <= -13.f) return 0.f;
  if (x >= 13.f) return 1.f;
  // z = -x / sqrt 2 as zh + zl (zl: the rounding errors of the product and of 1 / sqrt 2), and
  // erfc(zh + zl) = erfc(zh) - zl 2 / sqrt(pi) exp(-zh^2) to first order: rounding z would cost
  // 2 z^2 6e-8 relative (1e-6 at x = -4), as vexp.h notes.
  const float zh = -x * 0.70710677f;
  const float zl = fmaf(-x, 0.70710677f, -zh) - x * 1.2101617e-8f;
  return 0.5f * fmaf(-1.12837917f * expf(-zh * zh), zl, erfcf(zh));
}
__device__ inline double normal_cdf_t(double x) { return 0.5 * erfc(-x * 0.70710678118654752440); }

__device__ inline float normal_pdf_t(float x) {
  const float h = 0.5f * x, hi = h * x;
  if (hi > kExpCut) return 0.f;
  const float lo = fmaf(h, x, -hi);  // x^2 / 2 - hi, exactly
  const float e = expf(-hi);
  return 0.39894228040143267794f * fmaf(-e, lo, e);  // exp(-hi - lo) = exp(-hi) (1 - lo)
}
__device__ inline double normal_pdf_t(double x) { return 0.39894228040143267794 * exp(-0.5 * x * x); }

}  // namespace
}  // namespace wersa::cuda

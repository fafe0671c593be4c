// Scalar functions shared by the elementwise CPU kernels (float or double, no branches on NaN).
#pragma once
#include <cmath>

namespace wersa::cpu {

// Logistic sigmoid without overflow: exp is only taken of a non-positive number.
template <class T>
inline T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// Standard normal CDF Phi(x) = 0.5 (1 + erf(x / sqrt 2)), written with erfc so that it keeps
// its relative accuracy for large negative x.
template <class T>
inline T normal_cdf(T x) {
  return T(0.5) * std::erfc(-x * T(0.70710678118654752440));
}

// Standard normal density exp(-x^2 / 2) / sqrt(2 pi).
template <class T>
inline T normal_pdf(T x) {
  return T(0.39894228040143267794) * std::exp(T(-0.5) * x * x);
}

}  // namespace wersa::cpu

// CPU activations: y = f(x) and dx = dy f'(x) for exact-erf GELU, ReLU, sigmoid and SiLU
// (formulas in activation.h). The switch sits outside the loops so each loop is a plain
// elementwise kernel. Elements are independent, so y may alias x and dx may alias dy.
// GELU in float evaluates Phi with vx::normal_cdf (vexp.h: below 6e-7 relative), double with erfc.
#include "wersa/ops/activation.h"

#include <algorithm>

#include "kernels.h"
#include "parallel.h"
#include "scalar.h"
#include "vexp.h"

namespace wersa::cpu {
namespace {

template <class T, class F>
void map(int64_t n, T* y, const T* x, F f) {
  parallel_for(n, n >= kParallelMinElems, [&](int64_t i) { y[i] = f(x[i]); });
}

// dx = dy * f'(x), or dx += dy * f'(x).
template <class T, class F>
void map_grad(int64_t n, T* dx, const T* dy, const T* x, bool acc, F df) {
  if (acc) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * df(x[i]);
  } else {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * df(x[i]);
  }
}

// GELU in float: Phi and its density through vx::normal_cdf / vx::normal_pdf (vexp.h) on
// simd::VF vectors, kStep elements per step (simd.h), blocks of kElemBlock elements per parallel
// task (for_elem_blocks).
__attribute__((target_clones("avx512f", "avx2", "default"))) void gelu_block(int64_t n, float* y,
                                                                             const float* x) {
  simd::map1(n, x, y, [](simd::VF v) { return v * vx::normal_cdf(v); });
}

// dx = dy * GELU'(x) (or +=).
template <class V>
inline V gelu_grad_of(V x) {
  return vx::normal_cdf(x) + x * vx::normal_pdf(x);
}
__attribute__((target_clones("avx512f", "avx2", "default"))) void gelu_grad_block(int64_t n, float* dx,
                                                                                  const float* dy,
                                                                                  const float* x, bool acc) {
  using simd::kLanes;
  using simd::kStep;
  using simd::kUnroll;
  using simd::VF;
  int64_t i = 0;
  for (; i + kStep <= n; i += kStep) {
    VF g[kUnroll];
    for (int u = 0; u < kUnroll; ++u) g[u] = gelu_grad_of(simd::load(x + i + u * kLanes));
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t o = i + u * kLanes;
      const VF d = simd::load(dy + o) * g[u];
      simd::store(dx + o, acc ? simd::load(dx + o) + d : d);
    }
  }
  for (; i < n; ++i) {  // the tail: the same arithmetic, one element at a time
    const float d = dy[i] * gelu_grad_of(x[i]);
    dx[i] = acc ? dx[i] + d : d;
  }
}

void gelu(int64_t n, float* y, const float* x) {
  for_elem_blocks(n, [&](int64_t i0, int64_t len) { gelu_block(len, y + i0, x + i0); });
}
void gelu(int64_t n, double* y, const double* x) {
  map(n, y, x, [](double v) { return v * normal_cdf(v); });
}

void gelu_grad(int64_t n, float* dx, const float* dy, const float* x, bool acc) {
  for_elem_blocks(n, [&](int64_t i0, int64_t len) { gelu_grad_block(len, dx + i0, dy + i0, x + i0, acc); });
}
void gelu_grad(int64_t n, double* dx, const double* dy, const double* x, bool acc) {
  map_grad(n, dx, dy, x, acc, [](double v) { return normal_cdf(v) + v * normal_pdf(v); });
}

}  // namespace

template <class T>
void activation_fwd(Ctx&, const ActivationFwd& a) {
  const int64_t n = a.y.numel();
  T* y = a.y.ptr<T>();
  const T* x = a.x.ptr<T>();
  switch (a.act) {
    case Activation::Gelu:
      return gelu(n, y, x);
    case Activation::Relu:
      return map(n, y, x, [](T v) { return v > T(0) ? v : T(0); });
    case Activation::Sigmoid:
      return map(n, y, x, [](T v) { return sigmoid(v); });
    case Activation::Silu:
      return map(n, y, x, [](T v) { return v * sigmoid(v); });
  }
}

template <class T>
void activation_bwd(Ctx&, const ActivationBwd& a) {
  const int64_t n = a.dx.numel();
  T* dx = a.dx.ptr<T>();
  const T* dy = a.dy.ptr<T>();
  const T* x = a.x.ptr<T>();
  const bool acc = a.accumulate_dx;
  switch (a.act) {
    case Activation::Gelu:
      return gelu_grad(n, dx, dy, x, acc);
    case Activation::Relu:
      return map_grad(n, dx, dy, x, acc, [](T v) { return v > T(0) ? T(1) : T(0); });
    case Activation::Sigmoid:
      return map_grad(n, dx, dy, x, acc, [](T v) {
        const T s = sigmoid(v);
        return s * (T(1) - s);
      });
    case Activation::Silu:
      return map_grad(n, dx, dy, x, acc, [](T v) {
        const T s = sigmoid(v);
        return s * (T(1) + v * (T(1) - s));
      });
  }
}

template void activation_fwd<float>(Ctx&, const ActivationFwd&);
template void activation_fwd<double>(Ctx&, const ActivationFwd&);
template void activation_bwd<float>(Ctx&, const ActivationBwd&);
template void activation_bwd<double>(Ctx&, const ActivationBwd&);

}  // namespace wersa::cpu

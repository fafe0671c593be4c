// CPU activations: y = f(x) and dx = dy f'(x) for exact-erf GELU, ReLU, sigmoid and SiLU
// (formulas in activation.h). The switch sits outside the loops so each loop is a plain
// elementwise kernel. Elements are independent, so y may alias x and dx may alias dy.
#include "wersa/ops/activation.h"

#include "kernels.h"
#include "parallel.h"
#include "scalar.h"

namespace wersa::cpu {
namespace {

template <class T, class F>
void map(int64_t n, T* y, const T* x, F f) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
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

}  // namespace

template <class T>
void activation_fwd(Ctx&, const ActivationFwd& a) {
  const int64_t n = a.y.numel();
  T* y = a.y.ptr<T>();
  const T* x = a.x.ptr<T>();
  switch (a.act) {
    case Activation::Gelu:
      return map(n, y, x, [](T v) { return v * normal_cdf(v); });
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
      return map_grad(n, dx, dy, x, acc, [](T v) { return normal_cdf(v) + v * normal_pdf(v); });
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

// CPU activations: y = f(x) and dx = dy f'(x) for exact-erf GELU, ReLU, sigmoid and SiLU
// (formulas in activation.h). The switch sits outside the loops so each loop is a plain
// elementwise kernel. Elements are independent, so y may alias x and dx may alias dy.
// GELU in float evaluates Phi with vnormal_cdf_one (vexp.h: below 6e-7 relative), double with erfc.
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

// GELU in float: Phi and its density through vnormal_cdf_one / vnormal_pdf_one (vexp.h), 16
// elements at a time through local arrays (outputs may alias inputs), one clone per instruction
// set, blocks of kElemBlock elements per parallel task (for_elem_blocks).
constexpr int W = 16;

// f(x, y) computes y[0:W] from x[0:W]; blocks of exactly W elements (fixed trip counts, so the
// loops inside f vectorise), then the tail through zero-padded local arrays.
template <class F>
inline void by_w(int64_t n, const float* x, float* y, F f) {
  int64_t i0 = 0;
  for (; i0 + W <= n; i0 += W) f(x + i0, y + i0);
  if (i0 == n) return;
  float xv[W] = {}, yv[W];
  std::copy(x + i0, x + n, xv);
  f(xv, yv);
  std::copy(yv, yv + (n - i0), y + i0);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void gelu_block(int64_t n, float* y,
                                                                             const float* x) {
  by_w(n, x, y, [](const float* xs, float* ys) {
    float xv[W], yv[W];
    std::copy(xs, xs + W, xv);
    for (int j = 0; j < W; ++j) yv[j] = xv[j] * vnormal_cdf_one(xv[j]);
    std::copy(yv, yv + W, ys);
  });
}

// dx = dy * GELU'(x) (or +=): first GELU'(x) into dx's place through by_w, then the product.
__attribute__((target_clones("avx512f", "avx2", "default"))) void gelu_grad_block(int64_t n, float* dx,
                                                                                  const float* dy,
                                                                                  const float* x, bool acc) {
  float d[kElemBlock];  // n <= kElemBlock: called by for_elem_blocks
  by_w(n, x, d, [](const float* xs, float* ys) {
    float xv[W], yv[W];
    std::copy(xs, xs + W, xv);
    for (int j = 0; j < W; ++j) yv[j] = vnormal_cdf_one(xv[j]) + xv[j] * vnormal_pdf_one(xv[j]);
    std::copy(yv, yv + W, ys);
  });
  if (acc)
    for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * d[i];
  else
    for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * d[i];
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

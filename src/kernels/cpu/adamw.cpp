// CPU AdamW: elementwise, so any partition gives bitwise identical results.
#include "wersa/ops/adamw.h"

#include <cmath>

#include "kernels.h"

namespace wersa::cpu {

template <class T>
void adamw_step(Ctx&, const AdamWArgs& a) {
  // Four distinct arenas (parameters, moments, gradients; ops/adamw.cpp checks): restrict lets
  // the loop vectorise without run-time overlap checks.
  T* __restrict p = a.p.ptr<T>();
  T* __restrict m = a.m.ptr<T>();
  T* __restrict v = a.v.ptr<T>();
  const T* __restrict g = a.g.ptr<T>();
  const int64_t n = a.p.numel();
  const T b1 = T(a.beta1), b2 = T(a.beta2), eps = T(a.eps), lr = T(a.lr), wd = T(a.weight_decay);
  const T c1 = T(1.0 / (1.0 - std::pow(a.beta1, double(a.step))));
  const T c2 = T(1.0 / (1.0 - std::pow(a.beta2, double(a.step))));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (T(1) - b1) * g[i];
    v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
    const T mh = m[i] * c1, vh = v[i] * c2;
    p[i] -= lr * (mh / (std::sqrt(vh) + eps) + wd * p[i]);
  }
}

template void adamw_step<float>(Ctx&, const AdamWArgs&);
template void adamw_step<double>(Ctx&, const AdamWArgs&);

}  // namespace wersa::cpu

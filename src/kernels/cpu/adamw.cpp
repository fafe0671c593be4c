// CPU AdamW: elementwise, so any partition gives bitwise identical results. The flat form runs the
// same loop over each range of its table (after checking the table), so it is bitwise the same as
// one call per range.
#include "wersa/ops/adamw.h"

#include <cmath>

#include "kernels.h"

namespace wersa::cpu {
namespace {

template <class T>
void update(const AdamWArgs& a, int64_t begin, int64_t end, double weight_decay) {
  // Four distinct arenas (parameters, moments, gradients; ops/adamw.cpp checks): restrict lets
  // the loop vectorise without run-time overlap checks.
  T* __restrict p = a.p.ptr<T>();
  T* __restrict m = a.m.ptr<T>();
  T* __restrict v = a.v.ptr<T>();
  const T* __restrict g = a.g.ptr<T>();
  const T b1 = T(a.beta1), b2 = T(a.beta2), eps = T(a.eps), lr = T(a.lr), wd = T(weight_decay);
  const T c1 = T(1.0 / (1.0 - std::pow(a.beta1, double(a.step))));
  const T c2 = T(1.0 / (1.0 - std::pow(a.beta2, double(a.step))));
#pragma omp parallel for schedule(static)
  for (int64_t i = begin; i < end; ++i) {
    m[i] = b1 * m[i] + (T(1) - b1) * g[i];
    v[i] = b2 * v[i] + (T(1) - b2) * g[i] * g[i];
    const T mh = m[i] * c1, vh = v[i] * c2;
    p[i] -= lr * (mh / (std::sqrt(vh) + eps) + wd * p[i]);
  }
}

}  // namespace

template <class T>
void adamw_step(Ctx&, const AdamWArgs& a) {
  const int64_t n = a.p.numel();
  if (!a.segments.defined()) {
    update<T>(a, 0, n, a.weight_decay);
    return;
  }
  const int32_t* seg = a.segments.ptr<int32_t>();
  const int64_t S = a.segments.dim(0);
  for (int64_t s = 0, prev = 0; s < S; prev = seg[3 * s + 1], ++s)
    WERSA_CHECK(seg[3 * s] >= prev && seg[3 * s] <= seg[3 * s + 1] && seg[3 * s + 1] <= n,
                "adamw_step: segment ", s, " [", seg[3 * s], ", ", seg[3 * s + 1],
                ") is not a sorted, disjoint range of the ", n, " elements (the previous one ends at ", prev,
                ")");
  for (int64_t s = 0; s < S; ++s)
    update<T>(a, seg[3 * s], seg[3 * s + 1], seg[3 * s + 2] != 0 ? a.weight_decay : 0.0);
}

template void adamw_step<float>(Ctx&, const AdamWArgs&);
template void adamw_step<double>(Ctx&, const AdamWArgs&);

}  // namespace wersa::cpu

// CPU SwiGLU: y = silu(gate) * up; dgate = dy up s (1 + g (1 - s)), dup = dy silu(g).
// Each element reads its inputs before writing, so outputs may alias inputs at the same index.
#include "wersa/ops/swiglu.h"

#include "kernels.h"
#include "parallel.h"
#include "scalar.h"

namespace wersa::cpu {

template <class T>
void swiglu_fwd(Ctx&, const SwigluFwd& a) {
  const int64_t n = a.y.numel();
  const T* g = a.gate.ptr<T>();
  const T* u = a.up.ptr<T>();
  T* y = a.y.ptr<T>();
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i], ui = u[i];
    y[i] = gi * sigmoid(gi) * ui;
  }
}

template <class T>
void swiglu_bwd(Ctx&, const SwigluBwd& a) {
  const int64_t n = a.dy.numel();
  const T* dy = a.dy.ptr<T>();
  const T* g = a.gate.ptr<T>();
  const T* u = a.up.ptr<T>();
  T* dg = a.dgate.ptr<T>();
  T* du = a.dup.ptr<T>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i], ui = u[i], d = dy[i];
    const T s = sigmoid(gi);
    dg[i] = d * ui * s * (T(1) + gi * (T(1) - s));
    du[i] = d * gi * s;
  }
}

template void swiglu_fwd<float>(Ctx&, const SwigluFwd&);
template void swiglu_fwd<double>(Ctx&, const SwigluFwd&);
template void swiglu_bwd<float>(Ctx&, const SwigluBwd&);
template void swiglu_bwd<double>(Ctx&, const SwigluBwd&);

}  // namespace wersa::cpu

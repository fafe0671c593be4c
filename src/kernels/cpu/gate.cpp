// CPU level gates: g = sigmoid(z), gamma = g * s; dz = dgamma * s * g (1 - g), ds += sum_n dgamma * g.
#include "wersa/ops/gate.h"

#include <cmath>

#include "kernels.h"
#include "parallel.h"

namespace wersa::cpu {
namespace {

// Overflow-free logistic function.
template <class T>
T sigmoid(T z) {
  if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
  const T e = std::exp(z);
  return e / (T(1) + e);
}

}  // namespace

template <class T>
void gate_fwd(Ctx&, const GateFwd& a) {
  const int64_t N = a.z.dim(0), L1 = a.z.dim(1);
  const T* z = a.z.ptr<T>();
  const T* s = a.s.ptr<T>();
  T* g = a.g.ptr<T>();
  T* gamma = a.gamma.ptr<T>();
  parallel_for(N, N * L1 >= kParallelMinElems, [&](int64_t n) {
    for (int64_t l = 0; l < L1; ++l) {
      const T v = sigmoid(z[n * L1 + l]);
      g[n * L1 + l] = v;
      gamma[n * L1 + l] = v * s[l];
    }
  });
}

template <class T>
void gate_bwd(Ctx&, const GateBwd& a) {
  const int64_t N = a.g.dim(0), L1 = a.g.dim(1);
  const T* dgamma = a.dgamma.ptr<T>();
  const T* g = a.g.ptr<T>();
  const T* s = a.s.ptr<T>();
  if (a.dz.defined()) {
    T* dz = a.dz.ptr<T>();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t l = 0; l < L1; ++l) {
        const int64_t i = n * L1 + l;
        dz[i] = dgamma[i] * s[l] * g[i] * (T(1) - g[i]);
      }
  }
  if (a.ds.defined()) {
    // L+1 columns only: a serial sum per column in double is cheap and deterministic.
    T* ds = a.ds.ptr<T>();
    for (int64_t l = 0; l < L1; ++l) {
      double acc = 0;
      for (int64_t n = 0; n < N; ++n) acc += double(dgamma[n * L1 + l]) * double(g[n * L1 + l]);
      ds[l] += T(acc);
    }
  }
}

template void gate_fwd<float>(Ctx&, const GateFwd&);
template void gate_fwd<double>(Ctx&, const GateFwd&);
template void gate_bwd<float>(Ctx&, const GateBwd&);
template void gate_bwd<double>(Ctx&, const GateBwd&);

}  // namespace wersa::cpu

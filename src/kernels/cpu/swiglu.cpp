// CPU SwiGLU: y = silu(gate) * up; dgate = dy up s (1 + g (1 - s)), dup = dy silu(g), s = sigmoid(g).
// Each element reads its inputs before writing, so outputs may alias inputs at the same index.
// float: sigmoid through vx::sigmoid (vexp.h) on simd::VF vectors, kStep elements per step, all of
// a step's inputs read before its outputs are written; double: the scalar sigmoid of scalar.h.
#include "wersa/ops/swiglu.h"

#include <algorithm>

#include "kernels.h"
#include "parallel.h"
#include "scalar.h"
#include "vexp.h"

namespace wersa::cpu {
namespace {

using simd::kLanes;
using simd::kStep;
using simd::kUnroll;
using simd::VF;

// One element of each pass, written once for float and VF (simd.h): the vector steps and the tail
// compute the same thing.
template <class V>
inline V fwd_one(V g, V u) {
  return g * vx::sigmoid(g) * u;
}
template <class V>
inline void bwd_one(V d, V g, V u, V& dg, V& du) {
  const V s = vx::sigmoid(g);
  dg = d * u * s * (V(1.f) + g * (V(1.f) - s));
  du = d * g * s;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void fwd_block(int64_t n, const float* g,
                                                                            const float* u, float* y) {
  int64_t i = 0;
  for (; i + kStep <= n; i += kStep) {
    VF r[kUnroll];
    for (int k = 0; k < kUnroll; ++k)
      r[k] = fwd_one(simd::load(g + i + k * kLanes), simd::load(u + i + k * kLanes));
    for (int k = 0; k < kUnroll; ++k) simd::store(y + i + k * kLanes, r[k]);
  }
  for (; i < n; ++i) y[i] = fwd_one(g[i], u[i]);
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void bwd_block(int64_t n, const float* dy,
                                                                            const float* g, const float* u,
                                                                            float* dg, float* du) {
  int64_t i = 0;
  for (; i + kStep <= n; i += kStep) {
    VF a[kUnroll], b[kUnroll];
    for (int k = 0; k < kUnroll; ++k) {
      const int64_t o = i + k * kLanes;
      bwd_one(simd::load(dy + o), simd::load(g + o), simd::load(u + o), a[k], b[k]);
    }
    for (int k = 0; k < kUnroll; ++k) {
      simd::store(dg + i + k * kLanes, a[k]);
      simd::store(du + i + k * kLanes, b[k]);
    }
  }
  for (; i < n; ++i) bwd_one(dy[i], g[i], u[i], dg[i], du[i]);
}

void fwd_rows(int64_t n, const float* g, const float* u, float* y) {
  for_elem_blocks(n, [&](int64_t i0, int64_t len) { fwd_block(len, g + i0, u + i0, y + i0); });
}

void bwd_rows(int64_t n, const float* dy, const float* g, const float* u, float* dg, float* du) {
  for_elem_blocks(
      n, [&](int64_t i0, int64_t len) { bwd_block(len, dy + i0, g + i0, u + i0, dg + i0, du + i0); });
}

void fwd_rows(int64_t n, const double* g, const double* u, double* y) {
  parallel_for(n, n >= kParallelMinElems, [&](int64_t i) {
    const double gi = g[i], ui = u[i];
    y[i] = gi * sigmoid(gi) * ui;
  });
}

void bwd_rows(int64_t n, const double* dy, const double* g, const double* u, double* dg, double* du) {
  parallel_for(n, n >= kParallelMinElems, [&](int64_t i) {
    const double gi = g[i], ui = u[i], d = dy[i];
    const double s = sigmoid(gi);
    dg[i] = d * ui * s * (1.0 + gi * (1.0 - s));
    du[i] = d * gi * s;
  });
}

// Packed form: row r of y reads gate_up[r, :F] and gate_up[r, F:]; rows in parallel, each through the
// single-threaded block kernel (float) or loop (double).
void fwd_packed_row(int64_t F, const float* gu, float* y) { fwd_block(F, gu, gu + F, y); }
void bwd_packed_row(int64_t F, const float* dy, const float* gu, float* dgu) {
  bwd_block(F, dy, gu, gu + F, dgu, dgu + F);
}
void fwd_packed_row(int64_t F, const double* gu, double* y) {
  for (int64_t i = 0; i < F; ++i) y[i] = gu[i] * sigmoid(gu[i]) * gu[F + i];
}
void bwd_packed_row(int64_t F, const double* dy, const double* gu, double* dgu) {
  for (int64_t i = 0; i < F; ++i) {
    const double g = gu[i], u = gu[F + i], s = sigmoid(g);
    dgu[i] = dy[i] * u * s * (1.0 + g * (1.0 - s));
    dgu[F + i] = dy[i] * g * s;
  }
}

}  // namespace

template <class T>
void swiglu_fwd(Ctx&, const SwigluFwd& a) {
  if (!a.gate_up.defined()) return fwd_rows(a.y.numel(), a.gate.ptr<T>(), a.up.ptr<T>(), a.y.ptr<T>());
  const int64_t n = a.y.numel(), F = a.y.dim(a.y.rank() - 1), R = F > 0 ? n / F : 0;
  const T* gu = a.gate_up.ptr<T>();
  T* y = a.y.ptr<T>();
  parallel_for(R, n >= kParallelMinElems, [&](int64_t r) { fwd_packed_row(F, gu + 2 * r * F, y + r * F); });
}

template <class T>
void swiglu_bwd(Ctx&, const SwigluBwd& a) {
  if (!a.gate_up.defined())
    return bwd_rows(a.dy.numel(), a.dy.ptr<T>(), a.gate.ptr<T>(), a.up.ptr<T>(), a.dgate.ptr<T>(),
                    a.dup.ptr<T>());
  const int64_t n = a.dy.numel(), F = a.dy.dim(a.dy.rank() - 1), R = F > 0 ? n / F : 0;
  const T *dy = a.dy.ptr<T>(), *gu = a.gate_up.ptr<T>();
  T* dgu = a.dgate_up.ptr<T>();
  parallel_for(R, n >= kParallelMinElems,
               [&](int64_t r) { bwd_packed_row(F, dy + r * F, gu + 2 * r * F, dgu + 2 * r * F); });
}

template void swiglu_fwd<float>(Ctx&, const SwigluFwd&);
template void swiglu_fwd<double>(Ctx&, const SwigluFwd&);
template void swiglu_bwd<float>(Ctx&, const SwigluBwd&);
template void swiglu_bwd<double>(Ctx&, const SwigluBwd&);

}  // namespace wersa::cpu

// CPU SwiGLU: y = silu(gate) * up; dgate = dy up s (1 + g (1 - s)), dup = dy silu(g), s = sigmoid(g).
// Each element reads its inputs before writing, so outputs may alias inputs at the same index.
// float: sigmoid through vsigmoid_one (vexp.h), 16 elements at a time through local arrays (so
// the compiler vectorises without knowing whether outputs alias inputs), one clone per
// instruction set; double: the scalar sigmoid of scalar.h.
#include "wersa/ops/swiglu.h"

#include <algorithm>

#include "kernels.h"
#include "parallel.h"
#include "scalar.h"
#include "vexp.h"

namespace wersa::cpu {
namespace {

constexpr int W = 16;  // elements per vector step; parallel tasks: for_elem_blocks (parallel.h)

__attribute__((target_clones("avx512f", "avx2", "default"))) void fwd_block(int64_t n, const float* g,
                                                                            const float* u, float* y) {
  for (int64_t i0 = 0; i0 < n; i0 += W) {
    const int w = int(std::min<int64_t>(W, n - i0));
    float gv[W] = {}, uv[W] = {}, yv[W];
    std::copy(g + i0, g + i0 + w, gv);
    std::copy(u + i0, u + i0 + w, uv);
    for (int j = 0; j < W; ++j) yv[j] = gv[j] * vsigmoid_one(gv[j]) * uv[j];
    std::copy(yv, yv + w, y + i0);
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void bwd_block(int64_t n, const float* dy,
                                                                            const float* g, const float* u,
                                                                            float* dg, float* du) {
  for (int64_t i0 = 0; i0 < n; i0 += W) {
    const int w = int(std::min<int64_t>(W, n - i0));
    float dv[W] = {}, gv[W] = {}, uv[W] = {}, dgv[W], duv[W];
    std::copy(dy + i0, dy + i0 + w, dv);
    std::copy(g + i0, g + i0 + w, gv);
    std::copy(u + i0, u + i0 + w, uv);
    for (int j = 0; j < W; ++j) {
      const float s = vsigmoid_one(gv[j]);
      dgv[j] = dv[j] * uv[j] * s * (1.f + gv[j] * (1.f - s));
      duv[j] = dv[j] * gv[j] * s;
    }
    std::copy(dgv, dgv + w, dg + i0);
    std::copy(duv, duv + w, du + i0);
  }
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

}  // namespace

template <class T>
void swiglu_fwd(Ctx&, const SwigluFwd& a) {
  fwd_rows(a.y.numel(), a.gate.ptr<T>(), a.up.ptr<T>(), a.y.ptr<T>());
}

template <class T>
void swiglu_bwd(Ctx&, const SwigluBwd& a) {
  bwd_rows(a.dy.numel(), a.dy.ptr<T>(), a.gate.ptr<T>(), a.up.ptr<T>(), a.dgate.ptr<T>(), a.dup.ptr<T>());
}

template void swiglu_fwd<float>(Ctx&, const SwigluFwd&);
template void swiglu_fwd<double>(Ctx&, const SwigluFwd&);
template void swiglu_bwd<float>(Ctx&, const SwigluBwd&);
template void swiglu_bwd<double>(Ctx&, const SwigluBwd&);

}  // namespace wersa::cpu

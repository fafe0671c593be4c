// CPU RMSNorm: y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps); row statistics in double, summed
// in 16 lanes (a fixed order that vectorises), elementwise products in the tensors' type.
// Backward: dx = rstd (g - x rstd^2 mean(g x)), g = dy w; dw += sum_n dy x rstd, reduced over
// fixed row blocks (reduce.h) so that it is deterministic. Scratch: the per-block partial sums of
// dw, [blocks, C] in double.
#include "wersa/ops/rmsnorm.h"

#include <cmath>

#include "kernels.h"
#include "parallel.h"
#include "reduce.h"

namespace wersa::cpu {

template <class T>
void rmsnorm_fwd(Ctx&, const RmsNormFwd& a) {
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  const T* x = a.x.ptr<T>();
  const T* w = a.w.ptr<T>();
  T* y = a.y.ptr<T>();
  T* rstd = a.rstd.defined() ? a.rstd.ptr<T>() : nullptr;
  parallel_for(N, N * C >= kParallelMinElems, [&](int64_t n) {
    const T* xr = x + n * C;
    T* yr = y + n * C;
    const double r =
        1.0 /
        std::sqrt(lane_sum(C, [&](int64_t c) { return double(xr[c]) * double(xr[c]); }) / double(C) + a.eps);
    if (rstd) rstd[n] = T(r);
    const T rt = T(r);
    for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * rt * w[c];
  });
}

template <class T>
void rmsnorm_bwd(Ctx& ctx, const RmsNormBwd& a) {
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  const FixedBlocks blocks(N, 64);
  double* part = a.dw.defined() ? ctx.take<double>(blocks.count * C) : nullptr;  // [blocks, C] partial dw
  const auto gs = ctx.per_thread<T>(a.dx.defined() ? C : 0);
  if (ctx.planning()) return;
  const T* dy = a.dy.ptr<T>();
  const T* x = a.x.ptr<T>();
  const T* w = a.w.ptr<T>();
  const T* rstd = a.rstd.ptr<T>();
  T* dx = a.dx.defined() ? a.dx.ptr<T>() : nullptr;
  T* dw = a.dw.defined() ? a.dw.ptr<T>() : nullptr;
  const bool acc = a.accumulate_dx;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks.count; ++b) {
    double* p = part ? part + b * C : nullptr;
    if (p)
      for (int64_t c = 0; c < C; ++c) p[c] = 0;
    for (int64_t n = blocks.begin(b); n < blocks.end(b); ++n) {
      const T* dyr = dy + n * C;
      const T* xr = x + n * C;
      const double r = double(rstd[n]);
      if (dx) {
        T* dxr = dx + n * C;
        T* g = mine(gs);  // g = dy w
        for (int64_t c = 0; c < C; ++c) g[c] = dyr[c] * w[c];
        const double k =
            r * r * r * lane_sum(C, [&](int64_t c) { return double(g[c]) * double(xr[c]); }) / double(C);
        const T rt = T(r), kt = T(k);
        if (acc)
          for (int64_t c = 0; c < C; ++c) dxr[c] += rt * g[c] - kt * xr[c];
        else
          for (int64_t c = 0; c < C; ++c) dxr[c] = rt * g[c] - kt * xr[c];
      }
      if (p) {
        const T rt = T(r);
        for (int64_t c = 0; c < C; ++c) p[c] += double(dyr[c] * xr[c] * rt);
      }
    }
  }
  if (dw) {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      double s = 0;
      for (int64_t b = 0; b < blocks.count; ++b) s += part[b * C + c];
      dw[c] = T(double(dw[c]) + s);
    }
  }
}

template void rmsnorm_fwd<float>(Ctx&, const RmsNormFwd&);
template void rmsnorm_fwd<double>(Ctx&, const RmsNormFwd&);
template void rmsnorm_bwd<float>(Ctx&, const RmsNormBwd&);
template void rmsnorm_bwd<double>(Ctx&, const RmsNormBwd&);

}  // namespace wersa::cpu

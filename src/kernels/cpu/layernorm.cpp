// CPU LayerNorm: y = (x - mean) rstd w + b with two-pass row statistics in double, each sum in 16
// lanes (reduce.h lane_sum); the elementwise passes in the tensors' type.
// Backward: xh = (x - mean) rstd, g = dy w, dx = rstd (g - mean(g) - xh mean(g xh));
// dw += sum_n dy xh, db += sum_n dy, reduced over fixed row blocks (reduce.h): deterministic.
// Scratch: the per-block partial sums of dw and db, [blocks, C] each in double.
#include "wersa/ops/layernorm.h"

#include <cmath>

#include "kernels.h"
#include "parallel.h"
#include "reduce.h"

namespace wersa::cpu {

template <class T>
void layernorm_fwd(Ctx&, const LayerNormFwd& a) {
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  const T* x = a.x.ptr<T>();
  const T* w = a.w.ptr<T>();
  const T* b = a.b.ptr<T>();
  T* y = a.y.ptr<T>();
  T* mean = a.mean.defined() ? a.mean.ptr<T>() : nullptr;
  T* rstd = a.rstd.defined() ? a.rstd.ptr<T>() : nullptr;
  parallel_for(N, N * C >= kParallelMinElems, [&](int64_t n) {
    const T* xr = x + n * C;
    T* yr = y + n * C;
    const double m = lane_sum(C, [&](int64_t c) { return double(xr[c]); }) / double(C);
    const double v = lane_sum(C, [&](int64_t c) { return (double(xr[c]) - m) * (double(xr[c]) - m); });
    const double r = 1.0 / std::sqrt(v / double(C) + a.eps);
    if (mean) mean[n] = T(m);
    if (rstd) rstd[n] = T(r);
    // The row statistics in double; the elementwise part in T (f32: 16 lanes, one rounding of the
    // statistics, within a few ulp of the double expression).
    const T mt = T(m), rt = T(r);
    for (int64_t c = 0; c < C; ++c) yr[c] = (xr[c] - mt) * rt * w[c] + b[c];
  });
}

template <class T>
void layernorm_bwd(Ctx& ctx, const LayerNormBwd& a) {
  const int64_t N = a.x.dim(0), C = a.x.dim(1);
  const FixedBlocks blocks(N, 64);
  // Partial sums per row block: [blocks, C] for dw, then [blocks, C] for db.
  const bool params = a.dw.defined() || a.db.defined();
  double* part = params ? ctx.take<double>(2 * blocks.count * C) : nullptr;
  if (ctx.planning()) return;
  const T* dy = a.dy.ptr<T>();
  const T* x = a.x.ptr<T>();
  const T* w = a.w.ptr<T>();
  const T* mean = a.mean.ptr<T>();
  const T* rstd = a.rstd.ptr<T>();
  T* dx = a.dx.defined() ? a.dx.ptr<T>() : nullptr;
  T* dw = a.dw.defined() ? a.dw.ptr<T>() : nullptr;
  T* db = a.db.defined() ? a.db.ptr<T>() : nullptr;
  double* part_b = params ? part + blocks.count * C : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks.count; ++blk) {
    double* pw = params ? part + blk * C : nullptr;
    double* pb = params ? part_b + blk * C : nullptr;
    if (params)
      for (int64_t c = 0; c < C; ++c) pw[c] = pb[c] = 0;
    for (int64_t n = blocks.begin(blk); n < blocks.end(blk); ++n) {
      const T* dyr = dy + n * C;
      const T* xr = x + n * C;
      const double m = double(mean[n]), r = double(rstd[n]);
      if (dx) {
        const double sg = lane_sum(C, [&](int64_t c) { return double(dyr[c]) * double(w[c]); }) / double(C);
        const double sgx =
            lane_sum(C, [&](int64_t c) { return double(dyr[c]) * double(w[c]) * (double(xr[c]) - m) * r; }) /
            double(C);
        T* dxr = dx + n * C;
        const T mt = T(m), rt = T(r), sgt = T(sg), sgxt = T(sgx);  // elementwise in T, as forward
        for (int64_t c = 0; c < C; ++c) dxr[c] = rt * (dyr[c] * w[c] - sgt - (xr[c] - mt) * rt * sgxt);
      }
      if (params)
        for (int64_t c = 0; c < C; ++c) {
          pw[c] += double(dyr[c]) * (double(xr[c]) - m) * r;
          pb[c] += double(dyr[c]);
        }
    }
  }
  if (params) {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < C; ++c) {
      double sw = 0, sb = 0;
      for (int64_t blk = 0; blk < blocks.count; ++blk) {
        sw += part[blk * C + c];
        sb += part_b[blk * C + c];
      }
      if (dw) dw[c] = T(double(dw[c]) + sw);
      if (db) db[c] = T(double(db[c]) + sb);
    }
  }
}

template void layernorm_fwd<float>(Ctx&, const LayerNormFwd&);
template void layernorm_fwd<double>(Ctx&, const LayerNormFwd&);
template void layernorm_bwd<float>(Ctx&, const LayerNormBwd&);
template void layernorm_bwd<double>(Ctx&, const LayerNormBwd&);

}  // namespace wersa::cpu

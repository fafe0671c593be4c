// CPU elementwise helpers: add, axpy, scale, clipping by a norm, copy, and a deterministic sum of
// squares (fixed blocks of the tensor, each summed serially in double, the block sums added in
// block order; the block partial sums are the only scratch).
#include "wersa/ops/elementwise.h"

#include <algorithm>
#include <cmath>

#include "kernels.h"
#include "parallel.h"
#include "reduce.h"

namespace wersa::cpu {

template <class T>
void add_fwd(Ctx&, const AddFwd& a) {
  const int64_t n = a.y.numel();
  const T* pa = a.a.ptr<T>();
  const T* pb = a.b.ptr<T>();
  T* y = a.y.ptr<T>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = pa[i] + pb[i];
}

template <class T>
void axpy(Ctx&, const AxpyArgs& a) {
  const int64_t n = a.y.numel();
  const double alpha = a.alpha;
  const T* x = a.x.ptr<T>();
  T* y = a.y.ptr<T>();
  // In double, rounded once: gradient accumulation in f32 loses less to cancellation.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = T(double(y[i]) + alpha * double(x[i]));
}

template <class T>
void scale_inplace(Ctx&, const ScaleArgs& a) {
  const int64_t n = a.x.numel();
  const T alpha = T(a.alpha);
  T* x = a.x.ptr<T>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] *= alpha;
}

template <class T>
void clip_by_norm(Ctx&, const ClipByNormArgs& a) {
  const double norm = std::sqrt(a.norm2.ptr<double>()[0]);
  if (!(a.max_norm > 0) || !(norm > a.max_norm)) return;
  const T f = T(a.max_norm / norm);
  const int64_t n = a.x.numel();
  T* x = a.x.ptr<T>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] *= f;
}

template <class T>
void copy_fwd(Ctx&, const CopyArgs& a) {
  const int64_t n = a.y.numel();
  const T* x = a.x.ptr<T>();
  T* y = a.y.ptr<T>();
  if (x == y) return;
  constexpr int64_t kBlock = kParallelMinElems;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  if (blocks <= 1) {  // a row of generation: no parallel region at all
    std::copy(x, x + n, y);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t i0 = b * kBlock, i1 = std::min(n, i0 + kBlock);
    std::copy(x + i0, x + i1, y + i0);
  }
}

template <class T>
void sum_squares(Ctx& ctx, const SumSquaresArgs& a) {
  const int64_t n = a.x.numel();
  const FixedBlocks blocks(n, 1024);
  double* part = ctx.take<double>(blocks.count);
  if (ctx.planning()) return;
  const T* x = a.x.ptr<T>();
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks.count; ++b) {
    const T* xb = x + blocks.begin(b);
    part[b] =
        lane_sum(blocks.end(b) - blocks.begin(b), [&](int64_t i) { return double(xb[i]) * double(xb[i]); });
  }
  double total = 0;
  for (int64_t b = 0; b < blocks.count; ++b) total += part[b];
  a.out.ptr<double>()[0] = total;
}

// Dispatched as f32 (the dtype of x); y holds bf16 bits.
template <class T>
void convert_bf16(Ctx&, const ConvertArgs& a) {
  const int64_t n = a.x.numel();
  const float* x = a.x.ptr<float>();
  bf16* y = a.y.ptr<bf16>();
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) y[i] = float_to_bf16(x[i]);
}

template void add_fwd<float>(Ctx&, const AddFwd&);
template void add_fwd<double>(Ctx&, const AddFwd&);
template void axpy<float>(Ctx&, const AxpyArgs&);
template void axpy<double>(Ctx&, const AxpyArgs&);
template void scale_inplace<float>(Ctx&, const ScaleArgs&);
template void scale_inplace<double>(Ctx&, const ScaleArgs&);
template void clip_by_norm<float>(Ctx&, const ClipByNormArgs&);
template void clip_by_norm<double>(Ctx&, const ClipByNormArgs&);
template void copy_fwd<float>(Ctx&, const CopyArgs&);
template void copy_fwd<double>(Ctx&, const CopyArgs&);
template void sum_squares<float>(Ctx&, const SumSquaresArgs&);
template void sum_squares<double>(Ctx&, const SumSquaresArgs&);
template void convert_bf16<float>(Ctx&, const ConvertArgs&);
template void convert_bf16<double>(Ctx&, const ConvertArgs&);

}  // namespace wersa::cpu

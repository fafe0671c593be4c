// CPU linear layer in mixed precision (train.precision bf16; include/wersa/ops/matmul.h):
//   y = bf16(x) w^T (+ b),  dx = bf16(dy) w,  dw += bf16(dy)^T bf16(x),  db += sum_n dy
// with w the bf16 shadow weights. The bf16 values are widened exactly to f32 and the products go
// through sgemm (f32 accumulation), so the result is the one of cublasGemmEx with bf16 operands
// and f32 compute up to the order of the f32 sums. The weights are widened once per call into
// planned scratch; the activation operands are rounded kRows rows at a time into planned scratch
// (a row tile per GEMM), so the scratch does not grow with the rows of the call. Validation
// (src/ops/matmul.cpp) admits f32 tensors only; the f64 instance exists for the dispatcher.
#include <algorithm>

#include "blas.h"
#include "kernels.h"
#include "parallel.h"
#include "wersa/ops/matmul.h"

namespace wersa::cpu {

namespace {

constexpr int64_t kRows = 512;  // rows of x or dy rounded per GEMM

// dst[i] = widen(src[i]), i < n.
template <class T>
void widen(T* dst, const bf16* src, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) dst[i] = T(bf16_to_float(src[i]));
}

// dst[i] = the bf16 value nearest to src[i] (ties to even), as T.
template <class T>
void round_rows(T* dst, const T* src, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMinElems)
  for (int64_t i = 0; i < n; ++i) dst[i] = T(bf16_to_float(float_to_bf16(float(src[i]))));
}

}  // namespace

template <class T>
void matmul_fwd_mixed(Ctx& ctx, const MatmulFwd& a) {
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  const int64_t tile = std::max<int64_t>(1, std::min(N, kRows));
  T* wf = ctx.take<T>(std::max<int64_t>(1, O * I));
  T* xt = ctx.take<T>(std::max<int64_t>(1, tile * I));
  if (ctx.planning() || N == 0) return;
  T* y = a.y.ptr<T>();
  const T* x = a.x.ptr<T>();
  widen(wf, a.w.ptr<bf16>(), O * I);
  // The bias as matmul_fwd places it: written before the GEMMs (beta 1), or added after them.
  const T* b = a.b.defined() ? a.b.ptr<T>() : nullptr;
  T beta = a.accumulate_y ? T(1) : T(0);
  if (b && !a.accumulate_y) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) y[n * O + o] = b[o];
    beta = T(1);
  }
  if (O == 0) return;
  for (int64_t r0 = 0; r0 < N; r0 += tile) {
    const int64_t nr = std::min(tile, N - r0);
    round_rows(xt, x + r0 * I, nr * I);
    gemm(false, true, int(nr), int(O), int(I), T(1), xt, int(I), wf, int(I), beta, y + r0 * O, int(O));
  }
  if (b && a.accumulate_y) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) y[n * O + o] += b[o];
  }
}

template <class T>
void matmul_bwd_mixed(Ctx& ctx, const MatmulBwd& a) {
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  const bool dx = a.dx.defined(), dw = a.dw.defined();
  const int64_t tile = std::max<int64_t>(1, std::min(N, kRows));
  T* wf = dx ? ctx.take<T>(std::max<int64_t>(1, O * I)) : nullptr;
  T* dyt = dx || dw ? ctx.take<T>(std::max<int64_t>(1, tile * O)) : nullptr;
  T* xt = dw ? ctx.take<T>(std::max<int64_t>(1, tile * I)) : nullptr;
  if (ctx.planning()) return;
  if (dx && N == 0) return;  // as matmul_bwd
  if (dx) widen(wf, a.w.ptr<bf16>(), O * I);
  const T* dy = a.dy.ptr<T>();
  for (int64_t r0 = 0; (dx || dw) && r0 < N; r0 += tile) {
    const int64_t nr = std::min(tile, N - r0);
    round_rows(dyt, dy + r0 * O, nr * O);
    if (dx)
      gemm(false, false, int(nr), int(I), int(O), T(1), dyt, int(O), wf, int(I),
           a.accumulate_dx ? T(1) : T(0), a.dx.ptr<T>() + r0 * I, int(I));
    if (dw) {
      round_rows(xt, a.x.ptr<T>() + r0 * I, nr * I);
      gemm(true, false, int(O), int(I), int(nr), T(1), dyt, int(O), xt, int(I), T(1), a.dw.ptr<T>(), int(I));
    }
  }
  if (a.db.defined()) {  // from the unrounded dy, in matmul_bwd's fixed order
    MatmulBwd b;
    b.db = a.db, b.dy = a.dy, b.x = a.x, b.w = a.w;
    matmul_bwd<T>(ctx, b);
  }
}

template void matmul_fwd_mixed<float>(Ctx&, const MatmulFwd&);
template void matmul_fwd_mixed<double>(Ctx&, const MatmulFwd&);
template void matmul_bwd_mixed<float>(Ctx&, const MatmulBwd&);
template void matmul_bwd_mixed<double>(Ctx&, const MatmulBwd&);

}  // namespace wersa::cpu

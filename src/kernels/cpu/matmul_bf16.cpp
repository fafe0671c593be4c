// CPU linear layer over bf16 weights (forward only): y = x widen(w)^T + b.
// Up to kGemvMaxRows rows (decode steps, one sequence or several together): the bf16 GEMV, reading
// 2 bytes per weight once for all rows. More rows (prefill, evaluation): w is widened kTile rows at a time
// into planned scratch and each tile goes through BLAS, so a prefill keeps the speed of sgemm at the cost of
// one widening pass over w.
#include <algorithm>

#include "blas.h"
#include "gemv.h"
#include "kernels.h"
#include "wersa/ops/matmul.h"

namespace wersa::cpu {

namespace {
constexpr int64_t kTile = 256;  // rows of w widened per BLAS call
}

template <class T>
void matmul_fwd_bf16w(Ctx& ctx, const MatmulFwd& a) {
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  const bf16* w = a.w.ptr<bf16>();
  if constexpr (std::is_same<T, float>::value) {
    if (N <= kGemvMaxRows) {  // decoding: each row's result that of the one-row GEMV, bit for bit
      float* xp = N > 1 ? ctx.take<float>(N * std::min(I, kGemvBf16Chunk)) : nullptr;
      if (ctx.planning() || N == 0) return;
      const float* b = a.b.defined() ? a.b.ptr<float>() : nullptr;
      if (N == 1)
        gemv_rows(O, I, w, I, a.x.ptr<float>(), b, a.accumulate_y, a.y.ptr<float>());
      else
        gemv_rows_multi(N, O, I, w, I, a.x.ptr<float>(), I, b, a.accumulate_y, a.y.ptr<float>(), O, xp);
      return;
    }
  }
  const int64_t tile = std::min(O, kTile);
  T* wt = ctx.take<T>(tile * I);
  if (ctx.planning() || N == 0) return;
  T* y = a.y.ptr<T>();
  const T* x = a.x.ptr<T>();
  T beta = a.accumulate_y ? T(1) : T(0);
  if (a.b.defined()) {  // the bias first, then every tile adds its product
    const T* b = a.b.ptr<T>();
    const bool acc = a.accumulate_y;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) y[n * O + o] = acc ? y[n * O + o] + b[o] : b[o];
    beta = T(1);
  }
  for (int64_t o0 = 0; o0 < O; o0 += tile) {
    const int64_t ob = std::min(tile, O - o0);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < ob; ++r)
      for (int64_t i = 0; i < I; ++i) wt[r * I + i] = T(bf16_to_float(w[(o0 + r) * I + i]));
    gemm(false, true, int(N), int(ob), int(I), T(1), x, int(I), wt, int(I), beta, y + o0, int(O));
  }
}

template void matmul_fwd_bf16w<float>(Ctx&, const MatmulFwd&);
template void matmul_fwd_bf16w<double>(Ctx&, const MatmulFwd&);

}  // namespace wersa::cpu

// CPU linear layer: y = x w^T + b, backward dx = dy w, dw += dy^T x, db += sum dy.
#include "wersa/ops/matmul.h"

#include <algorithm>

#include "blas.h"
#include "gemv.h"
#include "kernels.h"
#include "parallel.h"

namespace wersa::cpu {

template <class T>
void matmul_fwd(Ctx&, const MatmulFwd& a) {
  const int N = int(a.x.dim(0)), I = int(a.x.dim(1)), O = int(a.w.dim(0));
  T* y = a.y.ptr<T>();
  if (N == 0) return;
  // Decoding (one row, or a few sequences together): the GEMV kernel, each weight row read once for
  // all rows, every row's result bitwise that of the row alone.
  if (N <= kGemvMaxRows) {
    gemv_rows_multi(N, O, I, a.w.ptr<T>(), I, a.x.ptr<T>(), I, a.b.defined() ? a.b.ptr<T>() : nullptr,
                    a.accumulate_y, y, O);
    return;
  }
  if (a.b.defined() && !a.accumulate_y) {
    const T* b = a.b.ptr<T>();
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < O; ++o) y[int64_t(n) * O + o] = b[o];
    gemm(false, true, N, O, I, T(1), a.x.ptr<T>(), I, a.w.ptr<T>(), I, T(1), y, O);
    return;
  }
  gemm(false, true, N, O, I, T(1), a.x.ptr<T>(), I, a.w.ptr<T>(), I, a.accumulate_y ? T(1) : T(0), y, O);
  if (a.b.defined()) {
    const T* b = a.b.ptr<T>();
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < O; ++o) y[int64_t(n) * O + o] += b[o];
  }
}

template <class T>
void matmul_bwd(Ctx&, const MatmulBwd& a) {
  const int N = int(a.x.dim(0)), I = int(a.x.dim(1)), O = int(a.w.dim(0));
  const T* dy = a.dy.ptr<T>();
  if (a.dx.defined() && N > 0)
    gemm(false, false, N, I, O, T(1), dy, O, a.w.ptr<T>(), I, a.accumulate_dx ? T(1) : T(0), a.dx.ptr<T>(),
         I);
  if (a.dx.defined() && N == 0) return;
  if (a.dw.defined() && N > 0)
    gemm(true, false, O, I, N, T(1), dy, O, a.x.ptr<T>(), I, T(1), a.dw.ptr<T>(), I);
  if (a.db.defined()) {
    T* db = a.db.ptr<T>();
    // Column sums in a fixed order (deterministic): each task sums a block of kColBlock columns
    // over the rows in order, so dy is read row by row once (a task per column would stride down
    // dy once per column, from memory when dy outgrows the cache).
    constexpr int kColBlock = 16;
    const int nb = (O + kColBlock - 1) / kColBlock;
    parallel_for(nb, int64_t(N) * O >= kParallelMinElems && nb > 1, [&](int64_t blk) {
      const int o0 = int(blk) * kColBlock, no = std::min(kColBlock, O - o0);
      double s[kColBlock] = {};
      for (int n = 0; n < N; ++n) {
        const T* r = dy + int64_t(n) * O + o0;
        for (int j = 0; j < no; ++j) s[j] += double(r[j]);
      }
      for (int j = 0; j < no; ++j) db[o0 + j] += T(s[j]);
    });
  }
}

template void matmul_fwd<float>(Ctx&, const MatmulFwd&);
template void matmul_fwd<double>(Ctx&, const MatmulFwd&);
template void matmul_bwd<float>(Ctx&, const MatmulBwd&);
template void matmul_bwd<double>(Ctx&, const MatmulBwd&);

}  // namespace wersa::cpu

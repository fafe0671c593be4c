// Linear layer (PyTorch/HF weight layout [out, in]):
//   y[N, O] = x[N, I] w[O, I]^T + b[O]                       (b optional)
// Derivatives:
//   dx = dy w        (overwritten, or added to dx when accumulate_dx)
//   dw += dy^T x     (parameter gradient: accumulated)
//   db += sum_n dy   (accumulated; skipped when db is undefined)
// The backward needs x and w from the forward. Either dx or dw may be left undefined to skip it.
// dtypes: f32 (BLAS sgemm) or f64 (dgemm, the reference used by gradient tests). The forward also
// takes bf16 weights w (inference copies, CPU and CUDA; x, y and b f32 or f64): each weight widens
// exactly to the compute type, so the result is that of the widened matrix (one row: a bf16 GEMV;
// more rows: tiles of w widened into planned scratch, then sgemm/dgemm).
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct MatmulFwd {
  Tensor y;        // [N, O] out (overwritten, or added to when accumulate_y)
  Tensor x, w, b;  // [N, I], [O, I], [O] or undefined
  bool accumulate_y = false;
};
struct MatmulBwd {
  Tensor dx, dw, db;  // [N, I], [O, I], [O]
  Tensor dy, x, w;    // [N, O], [N, I], [O, I]
  bool accumulate_dx = false;
};

void matmul_fwd(Ctx& ctx, const MatmulFwd& a);
void matmul_bwd(Ctx& ctx, const MatmulBwd& a);

}  // namespace wersa

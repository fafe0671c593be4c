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
// Mixed precision (bf16 = true; train.precision bf16): w is the bf16 shadow of an f32 master weight,
// every other tensor f32, and the activation operands are rounded to bf16 (nearest, ties to even)
// before the products, which accumulate in f32:
//   y = bf16(x) w^T (+ b),  dx = bf16(dy) w,  dw += bf16(dy)^T bf16(x),  db += sum_n dy (dy unrounded)
// Each product of two bf16 values is exact in f32, so only the order of the f32 sums differs
// between backends (CPU: operands rounded into planned scratch, row tiles, sgemm; CUDA:
// cublasGemmEx with CUDA_R_16BF operands and CUBLAS_COMPUTE_32F).
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct MatmulFwd {
  Tensor y;        // [N, O] out (overwritten, or added to when accumulate_y)
  Tensor x, w, b;  // [N, I], [O, I], [O] or undefined
  bool accumulate_y = false;
  bool bf16 = false;  // mixed precision (above): w bf16, x rounded to bf16, f32 accumulation
};
struct MatmulBwd {
  Tensor dx, dw, db;  // [N, I], [O, I], [O]
  Tensor dy, x, w;    // [N, O], [N, I], [O, I]
  bool accumulate_dx = false;
  bool bf16 = false;  // mixed precision (above): w bf16, dy and x rounded to bf16, f32 accumulation
};

void matmul_fwd(Ctx& ctx, const MatmulFwd& a);
void matmul_bwd(Ctx& ctx, const MatmulBwd& a);

}  // namespace wersa

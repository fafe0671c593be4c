// Elementwise helpers over whole tensors (any shapes with equal element counts):
//   add_fwd:        y = a + b            (y overwritten; may alias a or b)
//   axpy:           y += alpha * x       (residual-stream gradients, gradient accumulation)
//   scale_inplace:  x *= alpha           (gradient clipping, loss scaling)
//   copy_fwd:       y = x                (equal dtype and element count; y overwritten; f32, f64, i32
//                                         or u32, copied bit for bit)
//   sum_squares:    out[0] = sum_i x_i^2 in double (out: f64 [1], overwritten), for the global
//                   gradient norm over the flat gradient arena. Deterministic: the tensor is cut
//                   into fixed blocks (depending only on its size), each summed in double in
//                   16 lanes (lane_sum: a fixed order), and the block sums added in block order.
//   clip_by_norm:   x *= T(max_norm / sqrt(norm2[0])) when max_norm > 0 and sqrt(norm2[0]) > max_norm,
//                   else x unchanged (a NaN norm clips nothing); norm2: f64 [1] on x's device (e.g.
//                   sum_squares' out). Global-norm gradient clipping decided where the norm is,
//                   without a read-back; the factor is computed in double, as a host would.
//   convert_bf16:   y = bf16(x)          (x f32, y bf16 of the same element count; to nearest, ties to
//                                         even, NaN stays a quiet NaN: float_to_bf16 of
//                                         wersa/tensor/bf16.h; the shadow weights of train.precision bf16)
// add's derivative is the identity into both inputs (callers pass dy on, or axpy it); copy's too.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct AddFwd {
  Tensor y;     // out (overwritten); may alias a or b
  Tensor a, b;  // same element count as y
};
struct AxpyArgs {
  Tensor y;  // in/out
  Tensor x;  // same element count as y
  double alpha;
};
struct ScaleArgs {
  Tensor x;  // in/out
  double alpha;
};
struct CopyArgs {
  Tensor y;  // out (overwritten)
  Tensor x;  // same dtype and element count as y
};
struct ConvertArgs {
  Tensor y;  // bf16 out (overwritten)
  Tensor x;  // f32, same element count as y
};
struct SumSquaresArgs {
  Tensor out;  // f64 [1] (overwritten)
  Tensor x;    // f32 or f64, any shape
};

struct ClipByNormArgs {
  Tensor x;      // in/out, f32 or f64
  Tensor norm2;  // f64 [1]: the sum of squares whose root is the norm
  double max_norm;
};

void add_fwd(Ctx& ctx, const AddFwd& a);
void axpy(Ctx& ctx, const AxpyArgs& a);
void scale_inplace(Ctx& ctx, const ScaleArgs& a);
void copy_fwd(Ctx& ctx, const CopyArgs& a);
void sum_squares(Ctx& ctx, const SumSquaresArgs& a);
void clip_by_norm(Ctx& ctx, const ClipByNormArgs& a);
void convert_bf16(Ctx& ctx, const ConvertArgs& a);

}  // namespace wersa

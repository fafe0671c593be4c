// Elementwise helpers over whole tensors (any shapes with equal element counts):
//   add_fwd:        y = a + b            (y overwritten; may alias a or b)
//   axpy:           y += alpha * x       (residual-stream gradients, gradient accumulation)
//   scale_inplace:  x *= alpha           (gradient clipping, loss scaling)
//   sum_squares:    sum_i x_i^2 in double, for the global gradient norm. Deterministic: the
//                   tensor is cut into fixed blocks (depending only on its size), each summed
//                   serially in double, and the block sums added in block order.
// add's derivative is the identity into both inputs (callers pass dy on, or axpy it).
#pragma once
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

void add_fwd(const AddFwd& a);
void axpy(const AxpyArgs& a);
void scale_inplace(const ScaleArgs& a);
double sum_squares(const Tensor& x);

namespace cpu {
template <class T>
void add_fwd(const AddFwd& a);
template <class T>
void axpy(const AxpyArgs& a);
template <class T>
void scale_inplace(const ScaleArgs& a);
template <class T>
double sum_squares(const Tensor& x);
}  // namespace cpu

}  // namespace wersa

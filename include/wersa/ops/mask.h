// Zeroes the padded rows of a batch (spec: "Classification"), for the masks of bidirectional
// attention over padded documents. A batch holds B sequences padded to T rows; sequence b is real
// in rows t < n_b = lengths[b].
//   y[b, t, ...] = x[b, t, ...]  for t < n_b,      y[b, t, ...] = 0  for t >= n_b
//   x, y [B, T, ...] (any trailing shape), lengths [B] i32 (1 <= n_b <= T)
// Derivative: the op is linear and its own adjoint, dx = mask_padding(dy): dx[b, t] = dy[b, t] for
// t < n_b and 0 at padding. So one op serves the forward and the backward.
// y is overwritten (an activation gradient too); y may be x itself (in place). The padded rows of x
// are never read, so whatever they hold (NaN included) y is 0 there. Lengths are validated by the
// kernel where they are: on the CPU a length outside [1, T] is a wersa::Error naming b and n_b,
// raised before anything is written; on CUDA (lengths in device memory, not read by the host) such
// a sequence gets NaN in all its rows of y instead, and the other sequences are unaffected.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct MaskPadding {
  Tensor y;           // [B, T, ...] out (overwritten); may be x
  Tensor x, lengths;  // [B, T, ...], [B] i32
};

void mask_padding(Ctx& ctx, const MaskPadding& a);

}  // namespace wersa

// Depthwise convolution along time, one filter per channel (the WERSA gate convolution, spec step 2).
//   causal (default):  y[b,t,c] = bias[c] + sum_{i=0..K-1} w[c,i] * x[b, t-K+1+i, c]
//   centred:           y[b,t,c] = bias[c] + sum_{i=0..K-1} w[c,i] * x[b, t-(K-1)/2+i, c]
// with x = 0 outside [0, T) (per sequence). Causal mode sees the present and the K-1 previous
// positions only; centred mode (bidirectional models) sees (K-1)/2 future positions. With
// o = K-1 (causal) or (K-1)/2 (centred), both read y[t] = bias + sum_i w[:,i] * x[t-o+i].
// Shapes: x, y [B, T, C]; w [C, K]; bias [C] (may be undefined: no bias).
// Derivatives:
//   dx[b,s,c] = sum_i w[c,i] * dy[b, s+o-i, c]      (overwritten, or added when accumulate_dx)
//   dw[c,i]  += sum_{b,t} dy[b,t,c] * x[b, t-o+i, c]  (accumulated)
//   db[c]    += sum_{b,t} dy[b,t,c]                   (accumulated)
// Any of dx, dw, db may be left undefined to skip it. The backward needs x and w from the forward.
// Parameter-gradient sums run per channel in a fixed order (deterministic), accumulated in double.
//
// Padded batches (spec "Classification"): with `lengths` [B] i32 (1 <= n_b <= T), the input rows
// t >= n_b of sequence b are taken as 0, i.e. the op runs on x' = x with those rows zeroed:
//   y[b,t]   = bias + sum_i w[:,i] * x[b, t-o+i]  over t-o+i < n_b only  (every row t < T written)
//   dx[b,s]  = 0 for s >= n_b  (left unchanged when accumulate_dx; no gradient into padding)
//   dw       sums over input rows s < n_b only
// The padded rows of x are never read. Not with a window (generation has no padding).
//
// A causal forward may continue a sequence: with `window` [B, K-1, C] (the ring of the K-1 inputs
// before position pos0, position p in row p mod (K-1); rows of positions < 0 are never read), the
// inputs before the chunk come from the window instead of 0, and the window is then advanced in
// place to hold the chunk's last inputs. The op routes this itself, above the kernels (every
// backend's kernels are plain): a chunk of one position of one sequence runs the
// depthwise_conv_step kernel (O(K C)); a longer chunk the depthwise_conv_fwd kernel, which only
// reads the window, then the depthwise_conv_window kernel, which advances it; either is one call
// of depthwise_conv_fwd in OpTimes. Chunk by chunk, this computes exactly the output over the
// whole sequence.
//
// Generation: depthwise_conv_step computes the causal output of one position pos of one sequence
// from a ring `window` [K-1, C] of the K-1 previous inputs (position p in row p mod (K-1); rows of
// positions < 0 are never read, as x = 0 there), then stores x in the row of pos. It sums in the
// same order as the parallel forward (bias, then i = 0..K-1, in double), so it returns the same
// values. Inference only (no backward).
//
// depthwise_conv_window advances a window [B, K-1, C] past a chunk x [B, T, C] at positions
// pos0 .. pos0 + T - 1: the chunk's last min(T, K-1) inputs replace the ring's oldest rows (what a
// forward with that window does after computing its outputs).
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct DepthwiseConvFwd {
  Tensor y;        // [B, T, C] out (overwritten)
  Tensor x, w, b;  // [B, T, C], [C, K], [C] or undefined
  bool causal = true;
  Tensor window{};   // optional [B, K-1, C] ring of the previous inputs (causal), advanced in place
  int64_t pos0 = 0;  // position of t = 0 (with a window)
  Tensor lengths{};  // optional [B] i32: the real rows of each sequence (input rows past them are 0)
};
struct DepthwiseConvBwd {
  Tensor dx, dw, db;  // [B, T, C], [C, K], [C]; each may be undefined
  Tensor dy, x, w;    // [B, T, C], [B, T, C], [C, K]
  bool causal = true;
  bool accumulate_dx = false;
  Tensor lengths{};  // optional [B] i32, as in the forward
};

struct DepthwiseConvStep {
  Tensor y;        // [C] out (overwritten)
  Tensor window;   // [K-1, C] ring of the previous inputs, updated in place; undefined when K = 1
  Tensor x, w, b;  // [C], [C, K], [C] or undefined
  int64_t pos;     // position of x in its sequence
};

struct DepthwiseConvWindow {
  Tensor window;     // [B, K-1, C] ring of the inputs before pos0, advanced in place
  Tensor x;          // [B, T, C] the chunk
  int64_t pos0 = 0;  // position of the chunk's t = 0
};

void depthwise_conv_fwd(Ctx& ctx, const DepthwiseConvFwd& a);
void depthwise_conv_bwd(Ctx& ctx, const DepthwiseConvBwd& a);
void depthwise_conv_step(Ctx& ctx, const DepthwiseConvStep& a);
void depthwise_conv_window(Ctx& ctx, const DepthwiseConvWindow& a);

}  // namespace wersa

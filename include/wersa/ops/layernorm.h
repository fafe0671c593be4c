// LayerNorm with weight and bias over the last dimension, per row n (the head LayerNorm of
// WERSA attention runs on rows [B*T*H, d] with weights shared by the heads):
//   mean[n] = mean_c x[n, c],  rstd[n] = 1 / sqrt(mean_c (x[n, c] - mean[n])^2 + eps)
//   xh[n, c] = (x[n, c] - mean[n]) * rstd[n]
//   y[n, c] = xh[n, c] * w[c] + b[c]                  x, y [N, C]; w, b [C]; mean, rstd [N]
// Derivatives (g = dy * w):
//   dx[n, c] = rstd[n] * (g[n, c] - mean_c' g[n, c'] - xh[n, c] * mean_c'(g[n, c'] xh[n, c']))
//              (overwritten)
//   dw[c] += sum_n dy[n, c] xh[n, c],   db[c] += sum_n dy[n, c]   (accumulated, deterministic)
// y is overwritten; mean and rstd are saved for the backward (both may be left undefined to
// skip saving them). The backward needs x, w, mean and rstd from the forward. dx, dw or db may
// be left undefined to skip it. Row statistics and dw/db are reduced in double.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct LayerNormFwd {
  Tensor y, mean, rstd;  // [N, C] out (overwritten), [N], [N] (saved; may be undefined)
  Tensor x, w, b;        // [N, C], [C], [C]
  double eps = 1e-5;
};
struct LayerNormBwd {
  Tensor dx, dw, db;            // [N, C] overwritten, [C] accumulated, [C] accumulated
  Tensor dy, x, w, mean, rstd;  // [N, C], [N, C], [C], [N], [N]
};

void layernorm_fwd(Ctx& ctx, const LayerNormFwd& a);
void layernorm_bwd(Ctx& ctx, const LayerNormBwd& a);

}  // namespace wersa

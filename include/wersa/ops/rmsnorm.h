// RMSNorm over the last dimension, per row n:
//   rstd[n] = 1 / sqrt(mean_c(x[n, c]^2) + eps)
//   y[n, c] = x[n, c] * rstd[n] * w[c]                   x, y [N, C]; w [C]; rstd [N]
// Derivatives (g = dy * w):
//   dx[n, c] = rstd[n] * (g[n, c] - x[n, c] * rstd[n]^2 * mean_c'(g[n, c'] x[n, c']))
//              (overwritten, or added to dx when accumulate_dx)
//   dw[c]   += sum_n dy[n, c] x[n, c] rstd[n]            (parameter gradient: accumulated)
// y is overwritten; rstd is saved for the backward (leave it undefined to skip, e.g. when
// generating). The backward needs x, w and rstd from the forward. dx or dw may be left undefined
// to skip it. dw is reduced over rows in a fixed partition (deterministic), in double.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct RmsNormFwd {
  Tensor y, rstd;  // [N, C] out (overwritten), [N] out (saved for the backward; may be undefined)
  Tensor x, w;     // [N, C], [C]
  double eps = 1e-6;
};
struct RmsNormBwd {
  Tensor dx, dw;          // [N, C] (overwritten or added), [C] (accumulated)
  Tensor dy, x, w, rstd;  // [N, C], [N, C], [C], [N]
  bool accumulate_dx = false;
};

void rmsnorm_fwd(Ctx& ctx, const RmsNormFwd& a);
void rmsnorm_bwd(Ctx& ctx, const RmsNormBwd& a);

}  // namespace wersa

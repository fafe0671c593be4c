// Pooling of each sequence's real rows, for the classifier head (spec: "Classification"). A batch
// holds B sequences padded to T rows; sequence b is real in rows t < n_b = lengths[b].
//   mean: p[b] = (1/n_b) sum_{t < n_b} x[b, t]        last: p[b] = x[b, n_b - 1]
//   x [B, T, D], lengths [B] i32 (1 <= n_b <= T), p [B, D]
// Derivative:
//   mean: dx[b, t] = dp[b] / n_b for t < n_b        last: dx[b, n_b - 1] = dp[b]
//   and dx[b, t] = 0 at every other row, padding included.
// p and dx are overwritten (dx is an activation gradient). The forward never reads a padded row,
// so padding cannot change a sequence's p. Lengths are validated by the kernel where they are: on
// the CPU a length outside [1, T] is a wersa::Error naming b and n_b, raised before anything is
// written; on CUDA (lengths in device memory, not read by the host) such a sequence gets NaN in all
// its outputs instead (p[b, :], or dx[b, :, :]), and the other sequences are unaffected.
// Sums run in double, serially over t for each (b, column): deterministic.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

enum class PoolKind : uint8_t { Mean, Last };

struct PoolFwd {
  Tensor p;           // [B, D] out (overwritten)
  Tensor x, lengths;  // [B, T, D], [B] i32
  PoolKind kind = PoolKind::Mean;
};
struct PoolBwd {
  Tensor dx;           // [B, T, D] out (overwritten)
  Tensor dp, lengths;  // [B, D], [B] i32
  PoolKind kind = PoolKind::Mean;
};

void pool_fwd(Ctx& ctx, const PoolFwd& a);
void pool_bwd(Ctx& ctx, const PoolBwd& a);

}  // namespace wersa

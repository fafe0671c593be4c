// Fused softmax cross-entropy over the vocabulary (one row per token).
//   p[n] = softmax(logits[n])                                        logits: [N, V]
//   losses[n] = logsumexp(logits[n]) - logits[n, t[n]]               targets t: [N] i32, losses: [N]
// computed as max + log(sum exp(logits - max)) so that large logits cannot overflow. A target of -1
// marks an ignored position (padding): its loss is 0 and its gradient row is 0. A target outside
// [-1, V) is a user error (wersa::Error naming the position and the id), raised by the CPU kernel
// before it writes anything (the ids are read where they are; nothing is copied from a device). On
// CUDA (ids on the device) such a row gets a NaN loss and a NaN gradient row instead, and nothing
// is read or written outside the tensors; loss_sum_fwd with weights adds NaN for a target >= V.
// Derivative (for a loss sum_n scale * losses[n]):
//   dlogits[n] = scale * (p[n] - onehot(t[n]))                       (zero row where t[n] = -1)
// dlogits is overwritten. It MAY ALIAS logits: the backward reads and then overwrites one row at a
// time, so the logits buffer can be reused for its gradient. The backward recomputes the softmax
// from logits, so it needs only logits and targets from the forward. With `losses` given, the
// backward also writes the forward's losses (bitwise those of cross_entropy_fwd: one pass over each
// row for both, as the tiled LM head of a training step needs). Float dtypes: f32 or f64
// (losses, logits, dlogits share one dtype); sums of exponentials are accumulated in double.
//
// loss_sum_fwd reduces the per-token losses where the caller can read them back once:
//   out[0] = sum over n with targets[n] >= 0 of losses[n]   (serially in row order, in double)
//   out[1] = the number of such n                            out: f64 [2], overwritten
// Optional class weights w [V] (a weighted loss, e.g. balanced classes): the backward's row scale
// becomes scale * w[t[n]], and loss_sum_fwd gives out[0] = sum w[t[n]] losses[n], out[1] = sum
// w[t[n]]; the per-token losses themselves stay unweighted. Weights must be finite and >= 0.
// No backward (the gradient of the sum is the scale of cross_entropy_bwd).
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct CrossEntropyFwd {
  Tensor losses;           // [N] out (overwritten): per-token negative log-likelihood
  Tensor logits, targets;  // [N, V], [N] i32 (-1 = ignored)
};
struct CrossEntropyBwd {
  Tensor dlogits;          // [N, V] out (overwritten); may be the same memory as logits
  Tensor logits, targets;  // [N, V], [N] i32
  double scale;            // gradient of the total loss with respect to each losses[n]
  Tensor weights{};        // [V] or undefined (every weight 1)
  Tensor losses{};         // [N] out (overwritten) or undefined: the forward's losses as well
};

struct LossSumFwd {
  Tensor out;              // f64 [2] out (overwritten): sum of counted losses, their count
  Tensor losses, targets;  // [N], [N] i32
  Tensor weights{};        // [V] or undefined (every weight 1)
};

void cross_entropy_fwd(Ctx& ctx, const CrossEntropyFwd& a);
void cross_entropy_bwd(Ctx& ctx, const CrossEntropyBwd& a);
void loss_sum_fwd(Ctx& ctx, const LossSumFwd& a);

}  // namespace wersa

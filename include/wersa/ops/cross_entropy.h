// Fused softmax cross-entropy over the vocabulary (one row per token).
//   p[n] = softmax(logits[n])                                        logits: [N, V]
//   losses[n] = logsumexp(logits[n]) - logits[n, t[n]]               targets t: [N] i32, losses: [N]
// computed as max + log(sum exp(logits - max)) so that large logits cannot overflow. A target of -1
// marks an ignored position (padding): its loss is 0 and its gradient row is 0. A target outside
// [-1, V) is a user error (wersa::Error naming the position and the id).
// Derivative (for a loss sum_n scale * losses[n]):
//   dlogits[n] = scale * (p[n] - onehot(t[n]))                       (zero row where t[n] = -1)
// dlogits is overwritten. It MAY ALIAS logits: the backward reads and then overwrites one row at a
// time, so the logits buffer can be reused for its gradient. The backward recomputes the softmax
// from logits, so it needs only logits and targets from the forward. Float dtypes: f32 or f64
// (losses, logits, dlogits share one dtype); sums of exponentials are accumulated in double.
#pragma once
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
};

void cross_entropy_fwd(const CrossEntropyFwd& a);
void cross_entropy_bwd(const CrossEntropyBwd& a);

namespace cpu {
template <class T>
void cross_entropy_fwd(const CrossEntropyFwd& a);
template <class T>
void cross_entropy_bwd(const CrossEntropyBwd& a);
}  // namespace cpu

}  // namespace wersa

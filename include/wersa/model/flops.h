// Model FLOPs: the arithmetic of a forward pass per token, from the config alone, counting a
// multiply-add as 2 FLOPs. Training is counted as 3 x forward (the backward pass costs about two
// forwards: one product for the activation gradients, one for the weight gradients).
//
// Per layer and token, with D = dim, H / Hkv heads, d = D / H, F = ffn_dim, m = features,
// L = levels, K = conv_width, G = gate width (config_gate_dim), n = keys seen by a query
// ((T + 1) / 2 on average when causal, T when bidirectional):
//   projections  2 D (H d) + 2 * 2 D (Hkv d) + 2 (H d) D          q, k, v, o
//   SwiGLU       3 * 2 D F                                        gate, up, down
//   softmax      H (2 d n + 2 d n)                                q.k over n keys, then p.v
//   linear       feature maps (H + Hkv) 2 d m; state update Hkv (2 m d + m) (S += phi(k)^T v,
//                z += phi(k)); readout H (2 m d + 2 m + d) (phi(q) S, phi(q).z, the division)
//   wersa        linear + gate conv 2 D K + gate MLP 2 D G + 2 G (L + 1)
//                + Haar filter of q and k 7 L d (H + Hkv) (analysis: 2 adds, 2 scalings per level;
//                synthesis: a gate product, an add and a scaling per level, and the top gate)
// Head: LM 2 V D per token; classifier 2 C D once per document (2 C D / T per token).
// Linear and wersa attention are counted in their recurrent form (independent of T; the chunked
// parallel form that training runs adds intra-chunk work that is not counted here). Norms, RoPE,
// activations, softmax exponentials and the embedding lookup are elementwise and not counted.
#pragma once
#include <cstdint>

#include "wersa/model/config.h"

namespace wersa {

struct ModelFlops {
  double projections = 0;  // q, k, v, o, all layers
  double ffn = 0;          // SwiGLU, all layers
  double attention = 0;    // the attention kind's own work (see above), all layers
  double head = 0;         // LM head or classifier
  double total() const { return projections + ffn + attention + head; }
};

// Forward FLOPs per token for a sequence of T >= 1 tokens.
ModelFlops model_flops(const ModelConfig& m, int64_t T);
// Training FLOPs of `tokens` tokens in sequences of T: 3 x forward.
double train_flops(const ModelConfig& m, int64_t T, double tokens);

}  // namespace wersa

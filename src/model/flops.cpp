// Model FLOPs per token (see flops.h for the formulas and the conventions).
#include "wersa/model/flops.h"

#include "wersa/common/error.h"

namespace wersa {

ModelFlops model_flops(const ModelConfig& m, int64_t T) {
  WERSA_ASSERT(T >= 1, "T = ", T);
  const double D = m.dim, H = m.heads, Hkv = m.kv_heads, d = double(config_head_dim(m)), F = m.ffn_dim;
  const double M = m.attention.features, L = m.attention.levels, K = m.attention.conv_width;
  const double G = config_gate_dim(m), layers = m.layers;
  ModelFlops f;
  f.projections = layers * (2 * D * H * d + 2 * 2 * D * Hkv * d + 2 * H * d * D);
  f.ffn = layers * 3 * 2 * D * F;
  double attn = 0;
  switch (m.attention.type) {
    case AttentionKind::Softmax: {
      const double keys = m.attention.causal ? (double(T) + 1) / 2 : double(T);
      attn = H * 4 * d * keys;
      break;
    }
    case AttentionKind::Wersa:
      attn += 2 * D * K + 2 * D * G + 2 * G * (L + 1) + 7 * L * d * (H + Hkv);
      [[fallthrough]];
    case AttentionKind::Linear:
      attn += (H + Hkv) * 2 * d * M + Hkv * (2 * M * d + M) + H * (2 * M * d + 2 * M + d);
      break;
  }
  f.attention = layers * attn;
  if (m.task.classify())
    f.head = 2.0 * m.task.num_classes * D / double(T);
  else
    f.head = 2.0 * m.vocab_size * D;
  return f;
}

double train_flops(const ModelConfig& m, int64_t T, double tokens) {
  return 3.0 * model_flops(m, T).total() * tokens;
}

}  // namespace wersa

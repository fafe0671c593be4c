#include "wersa/model/params.h"

#include <cmath>

#include "wersa/common/rng.h"
#include "wersa/ops/feature_map.h"

namespace wersa {

namespace {
bool ends_with(const std::string& s, const char* suf) {
  const std::string t(suf);
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}
}  // namespace

ModelParams plan_params(Arena& a, const ModelConfig& m, DType dt) {
  const int64_t D = m.dim, H = m.heads, Hkv = m.kv_heads, d = config_head_dim(m), V = m.vocab_size;
  const int64_t F = m.ffn_dim, G = config_gate_dim(m), L1 = m.attention.levels + 1,
                K = m.attention.conv_width;
  const bool wersa = m.attention.type == "wersa";
  ModelParams p;
  p.embed = a.add("embed.weight", dt, {V, D});
  for (int i = 0; i < m.layers; ++i) {
    const std::string pre = "layers." + std::to_string(i) + ".";
    LayerParams l;
    l.attn_norm = a.add(pre + "attn_norm.weight", dt, {D});
    l.wq = a.add(pre + "attn.wq.weight", dt, {H * d, D});
    l.wk = a.add(pre + "attn.wk.weight", dt, {Hkv * d, D});
    l.wv = a.add(pre + "attn.wv.weight", dt, {Hkv * d, D});
    if (m.attention.qkv_bias) {
      l.bq = a.add(pre + "attn.wq.bias", dt, {H * d});
      l.bk = a.add(pre + "attn.wk.bias", dt, {Hkv * d});
      l.bv = a.add(pre + "attn.wv.bias", dt, {Hkv * d});
    }
    if (wersa) {
      l.conv_w = a.add(pre + "attn.gate_conv.weight", dt, {D, K});
      l.conv_b = a.add(pre + "attn.gate_conv.bias", dt, {D});
      l.fc1_w = a.add(pre + "attn.gate_fc1.weight", dt, {G, D});
      l.fc1_b = a.add(pre + "attn.gate_fc1.bias", dt, {G});
      l.fc2_w = a.add(pre + "attn.gate_fc2.weight", dt, {L1, G});
      l.fc2_b = a.add(pre + "attn.gate_fc2.bias", dt, {L1});
      l.scale = a.add(pre + "attn.scale_weights", dt, {L1});
      l.hn_w = a.add(pre + "attn.head_norm.weight", dt, {d});
      l.hn_b = a.add(pre + "attn.head_norm.bias", dt, {d});
    }
    l.wo = a.add(pre + "attn.wo.weight", dt, {D, H * d});
    l.ffn_norm = a.add(pre + "ffn_norm.weight", dt, {D});
    l.w_gate = a.add(pre + "ffn.w_gate.weight", dt, {F, D});
    l.w_up = a.add(pre + "ffn.w_up.weight", dt, {F, D});
    l.w_down = a.add(pre + "ffn.w_down.weight", dt, {D, F});
    p.layers.push_back(l);
  }
  p.final_norm = a.add("final_norm.weight", dt, {D});
  if (!m.tie_embeddings) p.lm_head = a.add("lm_head.weight", dt, {V, D});
  return p;
}

ModelBuffers plan_buffers(Arena& a, const ModelConfig& m, DType dt) {
  ModelBuffers b;
  if (m.attention.type != "wersa") return b;
  const int64_t d = config_head_dim(m), M = m.attention.features;
  for (int i = 0; i < m.layers; ++i) {
    const std::string pre = "layers." + std::to_string(i) + ".attn.";
    b.omega_q.push_back(a.add(pre + "omega_q", dt, {d, M}));
    b.omega_k.push_back(m.attention.shared_qk_features ? b.omega_q.back()
                                                       : a.add(pre + "omega_k", dt, {d, M}));
  }
  return b;
}

ParamKind param_kind(const std::string& n) {
  if (ends_with(n, "scale_weights")) return ParamKind::Scale;
  if (ends_with(n, ".bias")) return ParamKind::Bias;
  if (ends_with(n, "norm.weight")) return ParamKind::NormWeight;
  return ParamKind::Matrix;
}

bool param_decays(const std::string& n) { return param_kind(n) == ParamKind::Matrix; }

namespace {
template <class T>
void fill(const Tensor& t, const ModelConfig& m, uint64_t seed) {
  T* p = t.ptr<T>();
  const int64_t n = t.numel();
  const uint64_t stream = hash_name(t.name.c_str());
  switch (param_kind(t.name)) {
    case ParamKind::Scale:
      for (int64_t i = 0; i < n; ++i) p[i] = T(0.5);  // the paper's init of scale_weights
      return;
    case ParamKind::Bias:
      for (int64_t i = 0; i < n; ++i) p[i] = T(0);
      return;
    case ParamKind::NormWeight:
      for (int64_t i = 0; i < n; ++i) p[i] = T(1);
      return;
    case ParamKind::Matrix:
      break;
  }
  double std = m.init_std;
  // Output projections of each residual branch are scaled down with depth (GPT-2 style), so the
  // residual stream's variance does not grow with the number of layers.
  if (ends_with(t.name, "attn.wo.weight") || ends_with(t.name, "ffn.w_down.weight"))
    std /= std::sqrt(2.0 * m.layers);
  // The gate convolution averages K inputs: scale so its output has unit-order variance.
  if (ends_with(t.name, "gate_conv.weight")) std = 1.0 / std::sqrt(double(m.attention.conv_width));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = T(std * rng_normal(seed, stream, uint64_t(i)));
}
}  // namespace

void init_params(Arena& params, const ModelConfig& m, uint64_t seed) {
  for (Tensor& t : params.tensors()) {
    if (t.dtype == DType::F64)
      fill<double>(t, m, seed);
    else
      fill<float>(t, m, seed);
  }
}

void init_buffers(Arena& buffers, const ModelConfig& m, uint64_t seed) {
  // Omega entries N(0, 1/d): the random features of spec step 6, drawn once from the seed.
  for (Tensor& t : buffers.tensors()) init_omega(t, seed, hash_name(t.name.c_str()));
}

}  // namespace wersa

// The one declaration of the model's parameters and buffers, and their initialisation.
#include "wersa/model/params.h"

#include <cmath>

#include "attention.h"
#include "wersa/common/rng.h"
#include "wersa/ops/feature_map.h"

namespace wersa {

Slots Slots::rows(int64_t n) const {
  Slots out;
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i].defined()) out.t[i] = t[i].rows(0, n);
  return out;
}

void visit_params(const ModelConfig& c, ModelParams& p, const ParamFn& f) {
  const detail::Dims s(c);
  const auto attn = detail::make_attention(c);
  const int64_t D = s.D, Hd = s.H * s.d, Kd = s.Hkv * s.d;
  // Output projections of each residual branch are scaled down with depth (GPT-2 style), so the
  // residual stream's variance does not grow with the number of layers.
  const double out_std = c.init_std / std::sqrt(2.0 * c.layers);
  f(p.embed, {"embed.weight", {s.V, D}, ParamKind::Matrix, c.init_std, true});
  p.layers.resize(size_t(c.layers));
  for (int i = 0; i < c.layers; ++i) {
    LayerParams& l = p.layers[size_t(i)];
    const std::string pre = "layers." + std::to_string(i) + ".";
    f(l.attn_norm, {pre + "attn_norm.weight", {D}, ParamKind::NormWeight});
    f(l.wq, {pre + "attn.wq.weight", {Hd, D}, ParamKind::Matrix, c.init_std, true});
    f(l.wk, {pre + "attn.wk.weight", {Kd, D}, ParamKind::Matrix, c.init_std, true});
    f(l.wv, {pre + "attn.wv.weight", {Kd, D}, ParamKind::Matrix, c.init_std, true});
    if (c.attention.qkv_bias) {
      f(l.bq, {pre + "attn.wq.bias", {Hd}, ParamKind::Bias});
      f(l.bk, {pre + "attn.wk.bias", {Kd}, ParamKind::Bias});
      f(l.bv, {pre + "attn.wv.bias", {Kd}, ParamKind::Bias});
    }
    attn->params(pre, l.attn, f);
    f(l.wo, {pre + "attn.wo.weight", {D, Hd}, ParamKind::Matrix, out_std, true});
    f(l.ffn_norm, {pre + "ffn_norm.weight", {D}, ParamKind::NormWeight});
    f(l.w_gate, {pre + "ffn.w_gate.weight", {s.F, D}, ParamKind::Matrix, c.init_std, true});
    f(l.w_up, {pre + "ffn.w_up.weight", {s.F, D}, ParamKind::Matrix, c.init_std, true, true});
    f(l.w_down, {pre + "ffn.w_down.weight", {D, s.F}, ParamKind::Matrix, out_std, true});
  }
  f(p.final_norm, {"final_norm.weight", {D}, ParamKind::NormWeight});
  if (c.task.classify()) {
    WERSA_CHECK(c.task.num_classes >= 2, "task.num_classes: ", c.task.num_classes,
                " (a classifier needs its classes: at least 2, or task.labels, resolved from the data)");
    const int64_t C = c.task.num_classes;
    f(p.cls_weight, {std::string(kClassifierPrefix) + "weight", {C, D}, ParamKind::Matrix, c.init_std, true});
    f(p.cls_bias, {std::string(kClassifierPrefix) + "bias", {C}, ParamKind::Bias});
  } else if (!c.tie_embeddings) {
    f(p.lm_head, {"lm_head.weight", {s.V, D}, ParamKind::Matrix, c.init_std, true});
  }
}

void visit_buffers(const ModelConfig& c, ModelBuffers& b, const ParamFn& f) {
  const auto attn = detail::make_attention(c);
  b.layers.resize(size_t(c.layers));
  for (int i = 0; i < c.layers; ++i)
    attn->buffers("layers." + std::to_string(i) + ".", b.layers[size_t(i)], f);
}

namespace {
ParamFn planner(Arena& a, DType dt, std::vector<ParamDecl>* decls, DType weights) {
  return [&a, dt, decls, weights](Tensor& slot, const ParamDecl& d) {
    slot = a.add(d.name, d.bf16_ok ? weights : dt, d.shape, d.follows);
    if (decls && !a.measuring()) decls->push_back(d);
  };
}
}  // namespace

ModelParams plan_shadow(Arena& a, const ModelConfig& c) {
  ModelParams p;
  visit_params(c, p, [&a](Tensor& slot, const ParamDecl& d) {
    if (d.bf16_ok) slot = a.add(d.name, DType::BF16, d.shape, d.follows);
  });
  return p;
}

ModelParams plan_params(Arena& a, const ModelConfig& c, DType dt, std::vector<ParamDecl>* decls,
                        bool bf16_weights) {
  ModelParams p;
  visit_params(c, p, planner(a, dt, decls, bf16_weights ? DType::BF16 : dt));
  return p;
}

ModelBuffers plan_buffers(Arena& a, const ModelConfig& c, DType dt, std::vector<ParamDecl>* decls) {
  ModelBuffers b;
  visit_buffers(c, b, planner(a, dt, decls, dt));
  return b;
}

namespace {
template <class T>
void fill(const Tensor& t, const ParamDecl& d, uint64_t seed) {
  T* p = t.host<T>();
  const int64_t n = t.numel();
  const uint64_t stream = hash_name(d.name.c_str());
  switch (d.kind) {
    case ParamKind::Scale:
      for (int64_t i = 0; i < n; ++i) p[i] = T(0.5);
      return;
    case ParamKind::Bias:
      for (int64_t i = 0; i < n; ++i) p[i] = T(0);
      return;
    case ParamKind::NormWeight:
      for (int64_t i = 0; i < n; ++i) p[i] = T(1);
      return;
    case ParamKind::Features:
      init_omega(t, seed, stream, FeatureMapKind::Relu);
      return;
    case ParamKind::FeaturesExp:
      init_omega(t, seed, stream, FeatureMapKind::Exp);
      return;
    case ParamKind::Matrix:
      break;
  }
  const double std = d.init_std;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = T(std * rng_normal(seed, stream, uint64_t(i)));
}
}  // namespace

void init_param(const Tensor& t, const ParamDecl& d, uint64_t seed) {
  WERSA_ASSERT(t.shape == d.shape, d.name, ": initialising ", t.describe());
  if (t.dtype == DType::F64)
    fill<double>(t, d, seed);
  else
    fill<float>(t, d, seed);
}

}  // namespace wersa

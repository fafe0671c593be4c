#include "wersa/optim/optimizer.h"

#include <cmath>

#include "wersa/ops/adamw.h"
#include "wersa/ops/elementwise.h"

namespace wersa {

double lr_at(const TrainConfig& t, int64_t step) {
  if (step < t.warmup_steps) return t.lr * double(step + 1) / double(t.warmup_steps);
  const int64_t decay = int64_t(t.steps) - t.warmup_steps - 1;
  if (decay <= 0) return t.lr;
  const double frac = std::min(1.0, double(step - t.warmup_steps) / double(decay));
  return t.min_lr + 0.5 * (t.lr - t.min_lr) * (1.0 + std::cos(M_PI * frac));
}

double grad_global_norm(Model& m) {
  double s = 0;
  for (const Tensor& g : m.grads_arena().tensors()) s += sum_squares(g);
  return std::sqrt(s);
}

double clip_grads(Model& m, double norm, double clip) {
  if (clip <= 0 || !(norm > clip)) return 1.0;
  const double f = clip / norm;
  for (const Tensor& g : m.grads_arena().tensors()) scale_inplace({g, f});
  return f;
}

AdamW::AdamW(Model& m) : model_(m) {
  const ModelConfig& c = m.config();
  m_ = std::make_unique<Arena>("adam m", m.device());
  v_ = std::make_unique<Arena>("adam v", m.device());
  m_->build([&](Arena& a) { return plan_params(a, c, m.dtype()); });
  v_->build([&](Arena& a) { return plan_params(a, c, m.dtype()); });
}

void AdamW::step(const TrainConfig& t, double lr, int64_t step) {
  auto& P = model_.params_arena().tensors();
  auto& G = model_.grads_arena().tensors();
  auto& M = m_->tensors();
  auto& V = v_->tensors();
  WERSA_ASSERT(P.size() == G.size() && P.size() == M.size() && P.size() == V.size());
  for (size_t i = 0; i < P.size(); ++i) {
    const double wd = param_decays(P[i].name) ? t.weight_decay : 0.0;
    adamw_step({P[i], M[i], V[i], G[i], lr, t.beta1, t.beta2, t.adam_eps, wd, step});
  }
}

}  // namespace wersa

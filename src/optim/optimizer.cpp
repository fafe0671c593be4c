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

AdamW::AdamW(Model& m) : model_(m) {
  WERSA_CHECK(m.trainable(), "AdamW needs a model with gradients");
  const ModelConfig& c = m.config();
  m_ = std::make_unique<Arena>("adam m", m.device());
  v_ = std::make_unique<Arena>("adam v", m.device());
  m_->build([&](Arena& a) { return plan_params(a, c, m.dtype()); });
  v_->build([&](Arena& a) { return plan_params(a, c, m.dtype()); });
  scalars_ = std::make_unique<Arena>("optimizer scalars", m.device());
  norm2_ = scalars_->build([&](Arena& a) { return a.add("grad_norm2", DType::F64, {1}); });
}

void AdamW::plan(Ctx& ctx, const TrainConfig& t) {
  ctx.plan([&] {
    grad_norm(ctx);
    clip(ctx, 2.0, 1.0);
    step(ctx, t, t.lr, 1);
  });
}

double AdamW::grad_norm(Ctx& ctx) {
  sum_squares(ctx, {norm2_, model_.grads_arena().flat(model_.dtype())});
  return std::sqrt(read_f64(ctx, norm2_, 0));
}

double AdamW::clip(Ctx& ctx, double norm, double clip) {
  if (clip <= 0 || !(norm > clip)) return 1.0;
  const double f = clip / norm;
  scale_inplace(ctx, {model_.grads_arena().flat(model_.dtype()), f});
  return f;
}

void AdamW::step(Ctx& ctx, const TrainConfig& t, double lr, int64_t step, bool head_only) {
  const auto& P = model_.params_arena().tensors();
  const auto& G = model_.grads_arena().tensors();
  const auto& M = m_->tensors();
  const auto& V = v_->tensors();
  const auto& decl = model_.param_decls();
  WERSA_ASSERT(P.size() == G.size() && P.size() == M.size() && P.size() == V.size() &&
               P.size() == decl.size());
  for (size_t i = 0; i < P.size(); ++i) {
    if (head_only && decl[i].name.rfind(kClassifierPrefix, 0) != 0) continue;
    const double wd = decl[i].decays() ? t.weight_decay : 0.0;
    adamw_step(ctx, {P[i], M[i], V[i], G[i], lr, t.beta1, t.beta2, t.adam_eps, wd, step});
  }
}

}  // namespace wersa

#include "wersa/optim/optimizer.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "wersa/backend/backend.h"
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
  // CUDA: the rows (begin, end, decays) of the flat form, when the four arenas share one layout.
  std::vector<int32_t> all, head;
  if (m.device() == Device::CUDA) {
    const DType dt = m.dtype();
    const size_t esz = dtype_size(dt), n = m.params_arena().bytes() / esz;
    const Arena* arenas[] = {&m.params_arena(), &m.grads_arena(), m_.get(), v_.get()};
    const auto& decl = m.param_decls();
    bool flat = n <= size_t(std::numeric_limits<int32_t>::max());
    for (const Arena* a : arenas)
      flat = flat && a->bytes() == m.params_arena().bytes() && a->tensors().size() == decl.size();
    for (size_t i = 0; flat && i < decl.size(); ++i) {
      // The element offset of tensor i, the same in every arena.
      ptrdiff_t off = -1;
      for (const Arena* a : arenas) {
        const Tensor& t = a->tensors()[i];
        const ptrdiff_t o = static_cast<const char*>(t.data) - static_cast<const char*>(a->flat(dt).data);
        flat = flat && t.dtype == dt && t.numel() == arenas[0]->tensors()[i].numel() &&
               o % ptrdiff_t(esz) == 0 && (off < 0 || o == off);
        off = o;
      }
      const int64_t begin = off / ptrdiff_t(esz), end = begin + arenas[0]->tensors()[i].numel();
      const int32_t row[3] = {int32_t(begin), int32_t(end), decl[i].decays() ? 1 : 0};
      all.insert(all.end(), row, row + 3);
      if (decl[i].name.rfind(kClassifierPrefix, 0) == 0) head.insert(head.end(), row, row + 3);
    }
    if (!flat) all.clear(), head.clear();
  }
  scalars_->build([&](Arena& a) {
    norm2_ = a.add("grad_norm2", DType::F64, {1});
    if (!all.empty()) segments_ = a.add("adam segments", DType::I32, {int64_t(all.size() / 3), 3});
    if (!head.empty())
      head_segments_ = a.add("adam head segments", DType::I32, {int64_t(head.size() / 3), 3});
  });
  if (!DryRun::active()) {  // a dry run's memory must not be touched
    if (!all.empty()) device_copy(Device::CUDA, segments_.data, Device::CPU, all.data(), all.size() * 4);
    if (!head.empty())
      device_copy(Device::CUDA, head_segments_.data, Device::CPU, head.data(), head.size() * 4);
  }
}

void AdamW::plan(Ctx& ctx, const TrainConfig& t) {
  ctx.plan([&] {
    grad_norm2(ctx, norm2_);
    clip(ctx, norm2_, 1.0);
    step(ctx, t, t.lr, 1);
  });
}

void AdamW::grad_norm2(Ctx& ctx, const Tensor& norm2) {
  sum_squares(ctx, {norm2, model_.grads_arena().flat(model_.dtype())});
}

double AdamW::grad_norm(Ctx& ctx) {
  grad_norm2(ctx, norm2_);
  return std::sqrt(read_f64(ctx, norm2_, 0));
}

void AdamW::clip(Ctx& ctx, const Tensor& norm2, double clip) {
  clip_by_norm(ctx, {model_.grads_arena().flat(model_.dtype()), norm2, clip});
}

void AdamW::clip(Ctx& ctx, double clip) { this->clip(ctx, norm2_, clip); }

void AdamW::step(Ctx& ctx, const TrainConfig& t, double lr, int64_t step, bool head_only) {
  const auto& P = model_.params_arena().tensors();
  const auto& G = model_.grads_arena().tensors();
  const auto& M = m_->tensors();
  const auto& V = v_->tensors();
  const auto& decl = model_.param_decls();
  WERSA_ASSERT(P.size() == G.size() && P.size() == M.size() && P.size() == V.size() &&
               P.size() == decl.size());
  if (segments_.defined()) {  // CUDA: the whole model (or its head) in one launch
    if (head_only && !head_segments_.defined()) return;
    const DType dt = model_.dtype();
    adamw_step(ctx,
               {model_.params_arena().flat(dt), m_->flat(dt), v_->flat(dt), model_.grads_arena().flat(dt), lr,
                t.beta1, t.beta2, t.adam_eps, t.weight_decay, step, head_only ? head_segments_ : segments_});
  } else {
    for (size_t i = 0; i < P.size(); ++i) {
      if (head_only && decl[i].name.rfind(kClassifierPrefix, 0) != 0) continue;
      const double wd = decl[i].decays() ? t.weight_decay : 0.0;
      adamw_step(ctx, {P[i], M[i], V[i], G[i], lr, t.beta1, t.beta2, t.adam_eps, wd, step});
    }
  }
  model_.refresh_bf16(ctx);  // mixed precision: the GEMMs' bf16 shadow of the new master weights
}

}  // namespace wersa

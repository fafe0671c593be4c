// Model construction and the activation workspace plan.
#include "wersa/model/model.h"

#include "wersa/backend/backend.h"

namespace wersa {

Model::Model(const ModelConfig& cfg, DType dt, Device dev, bool trainable) : cfg_(cfg), dt_(dt), dev_(dev) {
  params_arena_ = std::make_unique<Arena>("parameters", dev);
  params = params_arena_->build([&](Arena& a) { return plan_params(a, cfg, dt); });
  buffers_arena_ = std::make_unique<Arena>("random features", dev);
  buffers = buffers_arena_->build([&](Arena& a) { return plan_buffers(a, cfg, dt); });
  if (trainable) {
    grads_arena_ = std::make_unique<Arena>("gradients", dev);
    grads = grads_arena_->build([&](Arena& a) { return plan_params(a, cfg, dt); });
  }
}

void Model::init(uint64_t seed) {
  WERSA_CHECK(dev_ == Device::CPU, "model init runs on the CPU; copy to the device afterwards");
  init_params(*params_arena_, cfg_, seed);
  init_buffers(*buffers_arena_, cfg_, seed);
}

void Model::zero_grads() {
  WERSA_ASSERT(grads_arena_, "zero_grads on a model without gradients");
  grads_arena_->zero();
}

int64_t Model::num_params() const {
  int64_t n = 0;
  for (const Tensor& t : params_arena_->tensors()) n += t.numel();
  return n;
}

Workspace::Workspace(const Model& model, int64_t B, int64_t T, bool for_backward) : B_(B), T_(T) {
  const ModelConfig& m = model.config();
  WERSA_CHECK(B >= 1 && T >= 1, "workspace needs batch >= 1 and sequence >= 1, got ", B, " x ", T);
  const DType dt = model.dtype();
  const int64_t N = B * T, D = m.dim, H = m.heads, Hkv = m.kv_heads, d = config_head_dim(m);
  const int64_t V = m.vocab_size, F = m.ffn_dim, G = config_gate_dim(m), L1 = m.attention.levels + 1;
  const int64_t M = m.attention.features;
  const bool wersa = m.attention.type == "wersa";
  arena_ = std::make_unique<Arena>("activations", model.device());
  iarena_ = std::make_unique<Arena>("token ids", model.device());
  iarena_->build([&](Arena& a) {
    tokens = a.add("tokens", DType::I32, {N});
    targets = a.add("targets", DType::I32, {N});
  });
  arena_->build([&](Arena& a) {
    acts.clear();
    for (int i = 0; i < m.layers; ++i) {
      const std::string p = "act." + std::to_string(i) + ".";
      LayerActs l;
      l.x = a.add(p + "x", dt, {N, D});
      l.u = a.add(p + "u", dt, {N, D});
      l.rstd1 = a.add(p + "rstd1", dt, {N});
      l.q = a.add(p + "q", dt, {N, H * d});
      l.k = a.add(p + "k", dt, {N, Hkv * d});
      l.v = a.add(p + "v", dt, {N, Hkv * d});
      l.o = a.add(p + "o", dt, {N, H * d});
      if (wersa) {
        l.c = a.add(p + "c", dt, {N, D});
        l.h1 = a.add(p + "h1", dt, {N, G});
        l.a1 = a.add(p + "a1", dt, {N, G});
        l.z = a.add(p + "z", dt, {N, L1});
        l.g = a.add(p + "g", dt, {N, L1});
        l.gamma = a.add(p + "gamma", dt, {N, L1});
        l.qh = a.add(p + "qh", dt, {N, H * d});
        l.kh = a.add(p + "kh", dt, {N, Hkv * d});
        l.qt = a.add(p + "qt", dt, {N, H * d});
        l.kt = a.add(p + "kt", dt, {N, Hkv * d});
        l.phiq = a.add(p + "phiq", dt, {N, H, M});
        l.phik = a.add(p + "phik", dt, {N, Hkv, M});
        l.den = a.add(p + "den", dt, {B, T, H});
        l.on = a.add(p + "on", dt, {N, H * d});
        l.ln_mean = a.add(p + "ln_mean", dt, {N * H});
        l.ln_rstd = a.add(p + "ln_rstd", dt, {N * H});
      } else {
        l.lse = a.add(p + "lse", dt, {B, T, H});
      }
      l.h = a.add(p + "h", dt, {N, D});
      l.u2 = a.add(p + "u2", dt, {N, D});
      l.rstd2 = a.add(p + "rstd2", dt, {N});
      l.gate = a.add(p + "gate", dt, {N, F});
      l.up = a.add(p + "up", dt, {N, F});
      l.act = a.add(p + "act", dt, {N, F});
      acts.push_back(l);
    }
    x_out = a.add("x_out", dt, {N, D});
    xf = a.add("xf", dt, {N, D});
    rstdf = a.add("rstdf", dt, {N});
    logits = a.add("logits", dt, {N, V});
    losses = a.add("losses", dt, {N});
    if (wersa) coef_scratch = a.add("coef", dt, {L1, B, T, H * d});
    if (for_backward) {
      g.dres = a.add("d.res", dt, {N, D});
      g.du = a.add("d.u", dt, {N, D});
      g.dq = a.add("d.q", dt, {N, H * d});
      g.dk = a.add("d.k", dt, {N, Hkv * d});
      g.dv = a.add("d.v", dt, {N, Hkv * d});
      g.do_ = a.add("d.o", dt, {N, H * d});
      g.dgate = a.add("d.gate", dt, {N, F});
      g.dup = a.add("d.up", dt, {N, F});
      g.dact = a.add("d.act", dt, {N, F});
      if (wersa) {
        g.dqh = a.add("d.qh", dt, {N, H * d});
        g.dkh = a.add("d.kh", dt, {N, Hkv * d});
        g.dqt = a.add("d.qt", dt, {N, H * d});
        g.dkt = a.add("d.kt", dt, {N, Hkv * d});
        g.dphiq = a.add("d.phiq", dt, {N, H, M});
        g.dphik = a.add("d.phik", dt, {N, Hkv, M});
        g.don = a.add("d.on", dt, {N, H * d});
        g.dgamma = a.add("d.gamma", dt, {N, L1});
        g.dz = a.add("d.z", dt, {N, L1});
        g.da1 = a.add("d.a1", dt, {N, G});
        g.dh1 = a.add("d.h1", dt, {N, G});
        g.dc = a.add("d.c", dt, {N, D});
        g.dcoef = a.add("d.coef", dt, {L1, B, T, H * d});
      }
    }
  });
}

size_t Workspace::bytes() const { return arena_->bytes() + iarena_->bytes(); }

}  // namespace wersa

// The model's arenas, the one activation plan, and the forward/backward over a workspace.
#include "wersa/model/model.h"

#include "attention.h"
#include "block.h"
#include "wersa/ops/elementwise.h"

namespace wersa {

// ---- Model -------------------------------------------------------------------------------------

Model::Model(const ModelConfig& cfg, DType dt, Device dev, bool trainable)
    : cfg_(cfg), dt_(dt), wt_(dt), dev_(dev), attn_(detail::make_attention(cfg)) {
  plan();
  if (trainable) {
    grads_arena_ = std::make_unique<Arena>("gradients", dev);
    grads = grads_arena_->build([&](Arena& a) { return plan_params(a, cfg_, dt_); });
  }
}

namespace {
// A model that may move between devices: one dtype for every parameter (no bf16 weights).
const Model& movable(const Model& m) {
  WERSA_CHECK(m.weight_dtype() == m.dtype(), "a model with ", dtype_name(m.weight_dtype()),
              " weights stays on the CPU");
  return m;
}
}  // namespace

Model::Model(const Model& src, Device dev) : Model(src, dev, src.trainable()) {}

Model::Model(const Model& src, Device dev, bool trainable)
    : Model(movable(src).cfg_, src.dt_, dev, trainable) {
  tensor_copy(params_arena_->flat(dt_), src.params_arena_->flat(dt_));
  tensor_copy(buffers_arena_->flat(dt_), src.buffers_arena_->flat(dt_));
}

Model::Model(const Model& src, DType weights)
    : cfg_(src.cfg_), dt_(src.dt_), wt_(weights), dev_(Device::CPU), attn_(detail::make_attention(src.cfg_)) {
  WERSA_CHECK(
      weights == DType::BF16 && src.dt_ == DType::F32 && src.wt_ == DType::F32 && src.dev_ == Device::CPU,
      "an inference copy with ", dtype_name(weights), " weights is made from an f32 CPU model");
  plan();
  const auto& dst = params_arena_->tensors();
  const auto& from = src.params_arena_->tensors();
  WERSA_ASSERT(dst.size() == from.size());
  for (size_t i = 0; i < dst.size(); ++i) tensor_convert(dst[i], from[i]);
  tensor_copy(buffers_arena_->flat(dt_), src.buffers_arena_->flat(dt_));
}

Model::~Model() = default;

void Model::plan() {
  params_arena_ = std::make_unique<Arena>("parameters", dev_);
  params = params_arena_->build(
      [&](Arena& a) { return plan_params(a, cfg_, dt_, &param_decls_, wt_ == DType::BF16); });
  buffers_arena_ = std::make_unique<Arena>("random features", dev_);
  buffers = buffers_arena_->build([&](Arena& a) { return plan_buffers(a, cfg_, dt_, &buffer_decls_); });
  WERSA_ASSERT(param_decls_.size() == params_arena_->tensors().size() &&
               buffer_decls_.size() == buffers_arena_->tensors().size());
}

void Model::init(uint64_t seed) {
  WERSA_CHECK(dev_ == Device::CPU, "model init runs on the CPU; move the model to the device afterwards");
  for (size_t i = 0; i < param_decls_.size(); ++i)
    init_param(params_arena_->tensors()[i], param_decls_[i], seed);
  for (size_t i = 0; i < buffer_decls_.size(); ++i)
    init_param(buffers_arena_->tensors()[i], buffer_decls_[i], seed);
}

void Model::use_bf16_gemms() {
  WERSA_CHECK(dt_ == DType::F32 && wt_ == DType::F32, "bf16 mixed precision needs an f32 model, not ",
              dtype_name(dt_), " with ", dtype_name(wt_), " weights");
  if (shadow_arena_) return;
  shadow_arena_ = std::make_unique<Arena>("bf16 shadow weights", dev_);
  shadow_ = shadow_arena_->build([&](Arena& a) { return plan_shadow(a, cfg_); });
}

void Model::refresh_bf16(Ctx& ctx) const {
  if (!shadow_arena_) return;
  const auto& master = params_arena_->tensors();
  const auto& shadow = shadow_arena_->tensors();
  size_t j = 0;
  for (size_t i = 0; i < master.size(); ++i)
    if (param_decls_[i].bf16_ok) {
      WERSA_ASSERT(j < shadow.size() && shadow[j].shape == master[i].shape, "shadow weights out of step");
      convert_bf16(ctx, {shadow[j++], master[i]});
    }
  WERSA_ASSERT(j == shadow.size(), "shadow weights out of step");
}

size_t Model::shadow_bytes() const { return shadow_arena_ ? shadow_arena_->bytes() : 0; }

bool Model::generation_needs_context() const { return attn_->needs_context(); }

void Model::zero_grads() {
  WERSA_ASSERT(grads_arena_, "zero_grads on a model without gradients");
  grads_arena_->zero();
}

int64_t Model::num_params() const {
  int64_t n = 0;
  for (const Tensor& t : params_arena_->tensors()) n += t.numel();
  return n;
}

// ---- the activation plan -----------------------------------------------------------------------

LayerActs LayerActs::rows(int64_t n) const {
  auto r = [n](const Tensor& t) { return t.defined() ? t.rows(0, n) : t; };
  LayerActs o;
  o.x = r(x), o.u = r(u), o.rstd1 = r(rstd1), o.q = r(q), o.k = r(k), o.v = r(v), o.attn = attn.rows(n);
  o.o = r(this->o), o.h = r(h), o.u2 = r(u2), o.rstd2 = r(rstd2), o.gate_up = r(gate_up), o.act = r(act);
  return o;
}

BlockGrads BlockGrads::rows(int64_t n) const {
  auto r = [n](const Tensor& t) { return t.defined() ? t.rows(0, n) : t; };
  BlockGrads o;
  o.dres = r(dres), o.du = r(du), o.dq = r(dq), o.dk = r(dk), o.dv = r(dv), o.dout = r(dout);
  o.dgate_up = r(dgate_up), o.dact = r(dact), o.attn = attn.rows(n);
  return o;
}

void plan_activations(Arena& arena, const Model& m, int64_t rows, bool backward, bool recompute,
                      std::vector<LayerActs>& acts, std::vector<Tensor>& block_inputs, BlockGrads* g,
                      Tensor* x_out, Tensor* xf, Tensor* rstdf) {
  const ModelConfig& c = m.config();
  const detail::Dims s(c);
  const DType dt = m.dtype();
  const int64_t Hd = s.H * s.d, Kd = s.Hkv * s.d;
  recompute = recompute && backward;
  const bool per_layer = backward && !recompute;
  block_inputs.clear();
  for (int i = 0; recompute && i < c.layers; ++i)
    block_inputs.push_back(
        detail::ActPlan{arena, "act." + std::to_string(i) + ".", dt, rows, true}.add("x", {s.D}));
  acts.assign(per_layer ? size_t(c.layers) : 1, LayerActs{});
  for (size_t i = 0; i < acts.size(); ++i) {
    const detail::ActPlan p{arena, per_layer ? "act." + std::to_string(i) + "." : std::string("act."), dt,
                            rows, backward};
    LayerActs& l = acts[i];
    l.x = recompute ? block_inputs[0] : p.add("x", {s.D});  // recompute: set per layer by the trunk
    l.u = p.add("u", {s.D});
    if (backward) l.rstd1 = p.add("rstd1", {});
    l.q = p.add("q", {Hd});
    l.k = p.add("k", {Kd});
    l.v = p.add("v", {Kd});
    m.attention().acts(p, l.attn);
    l.o = p.add("o", {Hd});
    l.h = p.add("h", {s.D});
    l.u2 = p.add("u2", {s.D});
    if (backward) l.rstd2 = p.add("rstd2", {});
    l.gate_up = p.add("gate_up", {2 * s.F});
    l.act = p.add("act", {s.F});
  }
  const detail::ActPlan p{arena, "", dt, rows, backward};
  *x_out = p.add("x_out", {s.D});
  *xf = p.add("xf", {s.D});
  *rstdf = backward ? p.add("rstdf", {}) : Tensor();
  if (backward) {
    const detail::ActPlan d{arena, "d.", dt, rows, true};
    g->dres = d.add("res", {s.D});
    g->du = d.add("u", {s.D});
    g->dq = d.add("q", {Hd});
    g->dk = d.add("k", {Kd});
    g->dv = d.add("v", {Kd});
    g->dout = d.add("o", {Hd});
    g->dgate_up = d.add("gate_up", {2 * s.F});
    g->dact = d.add("act", {s.F});
    m.attention().backward_buffers(d, g->attn);
  }
}

// ---- Workspace ---------------------------------------------------------------------------------

Workspace::Workspace(const Model& m, int64_t B, int64_t T, bool for_backward)
    : Workspace(m, RunSpec{B, T, for_backward, true}) {}

Workspace::Workspace(const Model& m, const RunSpec& spec) : spec_(spec), ctx_(m.device()) {
  WERSA_CHECK(spec.batch >= 1 && spec.seq >= 1, "workspace needs batch >= 1 and sequence >= 1, got ",
              spec.batch, " x ", spec.seq);
  WERSA_CHECK(!spec.backward || m.trainable(), "a workspace for a backward needs a model with gradients");
  const int64_t N = rows(), B = spec.batch, V = m.config().vocab_size;
  const bool classify = m.config().task.classify();
  iarena_ = std::make_unique<Arena>("token ids", m.device());
  iarena_->build([&](Arena& a) {
    ids_ = a.add("ids", DType::I32, {2, N});
    if (classify) docs_ = a.add("docs", DType::I32, {2, B});
    return 0;
  });
  tokens = ids_.rows(0, 1).view({N});
  targets = ids_.rows(1, 2).view({N});
  if (classify) lengths = docs_.rows(0, 1).view({B}), labels = docs_.rows(1, 2).view({B});
  if (m.device() == Device::CPU) {
    host_ids = ids_, host_docs = docs_;
  } else {
    host_arena_ = std::make_unique<Arena>("token ids (host)", Device::CPU, /*pinned=*/true);
    host_arena_->build([&](Arena& a) {
      host_ids = a.add("ids", DType::I32, {2, N});
      if (classify) host_docs = a.add("docs", DType::I32, {2, B});
      return 0;
    });
  }
  arena_ = std::make_unique<Arena>("activations", m.device());
  arena_->build([&](Arena& a) {
    plan_activations(a, m, N, spec.backward, spec.recompute, acts, block_inputs, &g, &x_out, &xf, &rstdf);
    if (spec.head && classify) {
      const int64_t C = m.config().task.num_classes, D = m.config().dim;
      pooled = a.add("pooled", m.dtype(), {B, D});
      if (spec.backward) dpooled = a.add("d.pooled", m.dtype(), {B, D});
      logits = a.add("class_logits", m.dtype(), {B, C});
      losses = a.add("class_losses", m.dtype(), {B});
    } else if (spec.head) {
      WERSA_CHECK(!(spec.keep_logits && spec.backward),
                  "a workspace keeps all logits only without a backward");
      head_rows_ = spec.keep_logits ? N : detail::head_tile_rows(m, N, spec.head_rows, a.bytes());
      logits = a.add("logits", m.dtype(), {head_rows_, V});
      losses = a.add("losses", m.dtype(), {N});
      if (spec.backward) dhead = a.add("d.head", m.dtype(), {V, m.config().dim});
    }
    loss_stats = a.add("loss_stats", DType::F64, {2});
    return 0;
  });
  // The run this workspace is for, planned once: its ops validate their arguments and record the
  // scratch they need.
  ctx_.plan([&] {
    // A classifier's lengths reach the attention too (its padding masks when bidirectional).
    const detail::Pass pass{spec.batch, spec.seq, 0, nullptr, lengths};
    detail::trunk_fwd(ctx_, m, *this, pass);
    if (spec.head && classify) {
      // Planning runs no kernel that reads the (still unset) lengths, here or in the trunk.
      detail::class_head_fwd(ctx_, m, *this, spec.batch, spec.seq, loss_stats);
      if (spec.backward) detail::class_head_bwd(ctx_, m, *this, spec.batch, spec.seq, 1.0);
    } else if (spec.head) {
      detail::lm_head_fwd(ctx_, m, *this, N, loss_stats);
      if (spec.backward) detail::lm_head_bwd(ctx_, m, *this, N, 1.0);
    }
    if (spec.backward) detail::trunk_bwd(ctx_, m, *this, pass);
  });
}

Workspace::~Workspace() = default;

size_t Workspace::bytes() const {
  return arena_->bytes() + iarena_->bytes() + (host_arena_ ? host_arena_->bytes() : 0);
}

size_t Workspace::scratch_bytes() const { return ctx_.scratch_bytes(); }

void Workspace::upload_ids() {
  if (host_ids.data != ids_.data) tensor_copy(ctx_, ids_, host_ids);
  if (docs_.defined() && host_docs.data != docs_.data) tensor_copy(ctx_, docs_, host_docs);
}

// ---- forward and backward ----------------------------------------------------------------------

namespace {
// B documents padded to T rows, with their lengths (the attention masks the padding when it is
// bidirectional; the pooling reads the lengths itself).
detail::Pass classify_pass(const Workspace& ws, int64_t B, int64_t T) {
  return detail::Pass{B, T, 0, nullptr, ws.lengths.rows(0, B)};
}
}  // namespace

void model_forward_device(Model& m, Workspace& ws, const Tensor& stats) {
  WERSA_ASSERT(ws.spec().head && !m.config().task.classify(),
               "a forward with token losses needs a language model and a workspace with its head");
  const detail::Pass pass{ws.batch(), ws.seq()};
  detail::trunk_fwd(ws.ctx(), m, ws, pass);
  detail::lm_head_fwd(ws.ctx(), m, ws, ws.rows(), stats.defined() ? stats : ws.loss_stats);
}

double model_forward(Model& m, Workspace& ws, int64_t* count) {
  model_forward_device(m, ws);
  double stats[2];
  tensor_copy(ws.ctx(), Tensor(stats, DType::F64, Device::CPU, Shape{2}), ws.loss_stats);
  if (count) *count = int64_t(stats[1]);
  return stats[0];
}

void model_backward(Model& m, Workspace& ws, double loss_scale) {
  const detail::Pass pass{ws.batch(), ws.seq()};
  detail::lm_head_bwd(ws.ctx(), m, ws, ws.rows(), loss_scale);
  detail::trunk_bwd(ws.ctx(), m, ws, pass);
}

void classify_forward_device(Model& m, Workspace& ws, int64_t B, int64_t T, const Tensor& stats) {
  WERSA_ASSERT(ws.spec().head && m.config().task.classify(),
               "a classifier forward needs a classifier and a workspace with its head");
  WERSA_ASSERT(B >= 1 && B <= ws.batch() && T >= 1 && T <= ws.seq(), "a classifier pass of ", B, " x ", T,
               " over a workspace of ", ws.batch(), " x ", ws.seq());
  detail::trunk_fwd(ws.ctx(), m, ws, classify_pass(ws, B, T));
  detail::class_head_fwd(ws.ctx(), m, ws, B, T, stats.defined() ? stats : ws.loss_stats);
}

double classify_forward(Model& m, Workspace& ws, int64_t B, int64_t T, int64_t* count) {
  classify_forward_device(m, ws, B, T);
  double stats[2];
  tensor_copy(ws.ctx(), Tensor(stats, DType::F64, Device::CPU, Shape{2}), ws.loss_stats);
  if (count) *count = int64_t(stats[1]);
  return stats[0];
}

void classify_backward(Model& m, Workspace& ws, int64_t B, int64_t T, double loss_scale, bool trunk) {
  detail::class_head_bwd(ws.ctx(), m, ws, B, T, loss_scale);
  if (trunk) detail::trunk_bwd(ws.ctx(), m, ws, classify_pass(ws, B, T));
}

double read_f64(const Ctx& ctx, const Tensor& t, int64_t i) {
  if (ctx.planning()) return 0.0;
  WERSA_ASSERT(t.dtype == DType::F64 && i >= 0 && i < t.numel(), "read_f64 of ", t.describe());
  double v = 0;
  // On the context's stream, which a copy to the host waits for.
  device_copy(Device::CPU, &v, t.device, static_cast<const double*>(t.data) + i, sizeof v, ctx.stream());
  return v;
}

}  // namespace wersa

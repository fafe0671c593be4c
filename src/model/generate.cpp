// Generation over the one trunk: the decode state (the attention kind's state per layer, planned
// once), decode_step (the trunk over one row with the state), chunked prefill (the trunk over
// chunks of rows with the state), the generation loop, and the model's fingerprint.
#include "wersa/model/generate.h"

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "attention.h"
#include "block.h"
#include "wersa/common/rng.h"
#include "wersa/common/timer.h"
#include "wersa/model/sampler.h"

namespace wersa {

// ---- the state ---------------------------------------------------------------------------------

DecodeState::DecodeState(const Model& m, const DecodeOptions& opt) : model_(&m), opt_(opt) {
  const ModelConfig& c = m.config();
  WERSA_CHECK(c.attention.causal, "generation needs a causal model (attention.causal = true)");
  WERSA_CHECK(opt.context >= 0, "context = ", opt.context, ", expected >= 0 (0 = unlimited for WERSA)");
  WERSA_CHECK(!m.generation_needs_context() || opt.context > 0, "a ", attention_kind_name(c.attention.type),
              " model needs a context length (-c) for its KV cache");
  WERSA_CHECK(!c.task.classify(),
              "this model is a classifier (task.type = \"classify\"): it has no LM head to "
              "generate with; evaluate it with wersa-eval");
  WERSA_CHECK(opt.prefill_chunk >= 1, "prefill chunk = ", opt.prefill_chunk, ", expected >= 1");
  state_ = std::make_unique<Arena>("decode state", m.device());
  layers_ = state_->build([&](Arena& a) {
    std::vector<Slots> out(size_t(c.layers));
    for (int i = 0; i < c.layers; ++i)
      m.attention().state(
          detail::StatePlan{a, "layers." + std::to_string(i) + ".", m.dtype(), opt.context, &per_position_},
          out[size_t(i)]);
    return out;
  });
  step_ = std::make_unique<Workspace>(m, RunSpec{1, 1, false, true});
  plan(*step_, 1);
  dev_logits_ = step_->logits.view({c.vocab_size});
  logits_ = dev_logits_;
  if (m.device() != Device::CPU) {
    host_logits_ = std::make_unique<Arena>("decode logits (host)", Device::CPU);
    logits_ = host_logits_->build([&](Arena& a) { return a.add("logits", m.dtype(), {c.vocab_size}); });
  }
  tokens_.reserve(size_t(std::min<int64_t>(opt.context > 0 ? opt.context : 4096, 1 << 20)));
}

DecodeState::~DecodeState() = default;

// Plans `ws` for a pass of `rows` rows with the state, at the last positions the context allows
// (the scratch of a KV-cache kernel grows with the position).
void DecodeState::plan(Workspace& ws, int64_t rows) {
  const int64_t n = opt_.context > 0 ? std::min(rows, opt_.context) : rows;
  const int64_t pos0 = opt_.context > 0 ? opt_.context - n : 0;
  ws.ctx().plan([&] {
    detail::trunk_fwd(ws.ctx(), *model_, ws, detail::Pass{1, n, pos0, &layers_});
    // The LM head over every row (prefill's all_logits; its scratch with bf16 weights). Planning
    // touches no data, so the logits' view only needs a shape: it borrows xf's address.
    const Tensor logits(ws.xf.data, model_->dtype(), ws.xf.device, Shape{n, model_->config().vocab_size},
                        "planned logits");
    detail::lm_head_logits(ws.ctx(), *model_, ws.xf.rows(0, n), logits);
  });
}

Workspace& DecodeState::chunk() {
  if (!chunk_) {
    chunk_ = std::make_unique<Workspace>(*model_, RunSpec{1, opt_.prefill_chunk, false, false});
    plan(*chunk_, opt_.prefill_chunk);
  }
  return *chunk_;
}

void DecodeState::reset() {
  state_->zero();
  tokens_.clear();
  tensor_zero(logits_);
}

// After the work queued on ctx's stream (which wrote the logits).
void DecodeState::read_back_logits(Ctx& ctx) {
  if (logits_.data != dev_logits_.data) tensor_copy(ctx, logits_, dev_logits_);
}

int64_t DecodeState::room() const {
  return opt_.context > 0 ? opt_.context - pos() : std::numeric_limits<int64_t>::max();
}

size_t DecodeState::state_bytes() const { return state_->bytes(); }

void DecodeState::set_op_times(OpTimes* t) { step_->ctx().set_op_times(t); }

const std::deque<Tensor>& DecodeState::state_tensors() const { return state_->tensors(); }

void DecodeState::copy_from(const DecodeState& o) {
  WERSA_CHECK(o.model_ == model_ && o.opt_.context == opt_.context && o.state_->bytes() == state_->bytes(),
              "copy of a decode state made for another model or context");
  tensor_copy(state_->flat(DType::U32), o.state_->flat(DType::U32));  // raw bytes, whatever the dtype
  tokens_ = o.tokens_;
  tensor_copy(logits_, o.logits_);
}

void check_decode_state(const Model& m, const DecodeState& s, int64_t n, const char* what) {
  WERSA_CHECK(&s.model() == &m, what, ": the decode state was made for another model");
  if (n > s.room()) {
    const bool cache = m.generation_needs_context();
    WERSA_FAIL(what, ": ", n, " more token", n == 1 ? "" : "s", " do not fit: the state holds ", s.pos(),
               " of its context of ", s.context(), " tokens",
               cache ? " (a softmax model attends over a KV cache of that many rows; raise it with -c)" : "");
  }
}

// ---- decoding and prefill ----------------------------------------------------------------------

const Tensor& decode_step(const Model& m, DecodeState& st, int32_t token) {
  check_decode_state(m, st, 1, "decode");
  const int64_t V = m.config().vocab_size;
  WERSA_CHECK(token >= 0 && token < V, "decode: token id ", token, " is outside the vocabulary [0, ", V, ")");
  Workspace& w = *st.step_;
  w.host_ids.host<int32_t>()[0] = token;
  w.upload_ids();
  detail::trunk_fwd(w.ctx(), m, w, detail::Pass{1, 1, st.pos(), &st.layers_});
  detail::lm_head_logits(w.ctx(), m, w.xf.rows(0, 1), w.logits);
  st.tokens_.push_back(token);
  st.read_back_logits(w.ctx());
  return st.logits();
}

const Tensor& prefill(const Model& m, DecodeState& st, const std::vector<int32_t>& tokens,
                      const Tensor& all_logits) {
  const int64_t n = int64_t(tokens.size()), V = m.config().vocab_size;
  check_decode_state(m, st, n, "prefill");
  if (n == 0) return st.logits();
  if (all_logits.defined()) {
    check_shape("prefill", all_logits, Shape{n, V});
    check_dtype("prefill", all_logits, m.dtype());
  }
  for (int64_t i = 0; i < n; ++i)
    WERSA_CHECK(tokens[size_t(i)] >= 0 && tokens[size_t(i)] < V, "prefill: token ", i,
                " of the prompt has id ", tokens[size_t(i)], ", outside the vocabulary [0, ", V, ")");
  Workspace& w = st.chunk();
  for (int64_t c0 = 0; c0 < n; c0 += w.rows()) {
    const int64_t rows = std::min(w.rows(), n - c0);
    std::copy(tokens.begin() + c0, tokens.begin() + c0 + rows, w.host_ids.host<int32_t>());
    w.upload_ids();
    detail::trunk_fwd(w.ctx(), m, w, detail::Pass{1, rows, st.pos(), &st.layers_});
    if (all_logits.defined())
      detail::lm_head_logits(w.ctx(), m, w.xf.rows(0, rows), all_logits.rows(c0, c0 + rows));
    else if (c0 + rows == n)
      detail::lm_head_logits(w.ctx(), m, w.xf.rows(rows - 1, rows), st.step_->logits);
    st.tokens_.insert(st.tokens_.end(), tokens.begin() + c0, tokens.begin() + c0 + rows);
  }
  if (all_logits.defined())
    tensor_copy(w.ctx(), st.logits_, all_logits.rows(n - 1, n).view({V}));
  else
    st.read_back_logits(w.ctx());
  return st.logits();
}

GenerateStats generate(const Model& m, DecodeState& s, Sampler& sampler, const std::vector<int32_t>& prompt,
                       const GenerateOptions& opt, const std::function<void(int32_t)>& on_token) {
  GenerateStats r;
  if (!prompt.empty()) {
    const Timer t;
    prefill(m, s, prompt);
    r.prompt_ms = t.ms();
    r.prompt_tokens = int64_t(prompt.size());
  }
  WERSA_CHECK(s.pos() > 0, "nothing to continue: give a prompt (or load a state that holds tokens)");
  const int32_t banned = opt.ignore_eos ? opt.eos_id : -1;
  for (int64_t i = 0; opt.n_predict < 0 || i < opt.n_predict; ++i) {
    if (s.room() < 1) {
      r.context_full = true;
      break;
    }
    const Timer t;
    const int32_t tok = sampler.sample(s.logits(), s.tokens(), banned);
    r.generate_ms += t.ms();
    if (on_token) on_token(tok);
    const Timer t2;
    decode_step(m, s, tok);
    r.generate_ms += t2.ms();
    ++r.generated;
    if (!opt.ignore_eos && opt.eos_id >= 0 && tok == opt.eos_id) {
      r.hit_eos = true;
      break;
    }
  }
  return r;
}

// ---- the model's identity ----------------------------------------------------------------------

size_t decode_weight_bytes(const Model& m) {
  size_t n = m.params_arena().bytes() + m.buffers_arena().bytes();
  if (!m.config().tie_embeddings)  // the table is looked up, one row per token
    n -= m.params.embed.bytes() - size_t(m.config().dim) * dtype_size(m.params.embed.dtype);
  return n;
}

std::string model_fingerprint(const Model& m) {
  Config full;
  full.model = m.config();
  nlohmann::json model = config_to_json(full)["model"];
  // Settings added after the first state files: hashed only when not at their default, so that a
  // state saved before a setting existed still matches its model.
  const Config defaults;
  if (model["attention"]["feature_map"] == defaults.model.attention.feature_map)
    model["attention"].erase("feature_map");
  const std::string cfg = model.dump();
  uint64_t h = hash_name(cfg.c_str()) ^ uint64_t(m.dtype());
  for (const Arena* a : {&m.params_arena(), &m.buffers_arena()})
    for (const Tensor& t : a->tensors()) {
      h = mix64(h ^ hash_name(std::string(t.name).c_str()));
      std::vector<unsigned char> staged;  // a tensor on a device: hashed from a host copy
      if (t.device != Device::CPU && t.bytes() > 0) {
        staged.resize(t.bytes());
        tensor_copy(Tensor(staged.data(), t.dtype, Device::CPU, t.shape, t.name), t);
      }
      const unsigned char* p = staged.empty() ? static_cast<const unsigned char*>(t.data) : staged.data();
      const size_t n = t.bytes(), words = n / 8;
      for (size_t i = 0; i < words; ++i) {
        uint64_t w;
        std::memcpy(&w, p + 8 * i, 8);
        h = mix64(h ^ w);
      }
      for (size_t i = words * 8; i < n; ++i) h = mix64(h ^ p[i]);
    }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace wersa

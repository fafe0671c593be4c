// The generation state: planning (state, step and prefill arenas), copies, the model
// fingerprint and state files.
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "decode_impl.h"
#include "wersa/backend/backend.h"
#include "wersa/common/rng.h"
#include "wersa/io/safetensors.h"

namespace wersa {
namespace detail {

GenDims::GenDims(const ModelConfig& c)
    : D(c.dim),
      H(c.heads),
      Hkv(c.kv_heads),
      d(config_head_dim(c)),
      M(c.attention.features),
      L(c.attention.levels),
      K(c.attention.conv_width),
      W(c.attention.conv_width - 1),
      P((int64_t(1) << c.attention.levels) - 1),
      V(c.vocab_size),
      F(c.ffn_dim),
      G(config_gate_dim(c)),
      L1(c.attention.levels + 1),
      wersa(c.attention.type == "wersa") {}

Tensor anon(const Tensor& t) { return Tensor(t.data, t.dtype, t.device, t.shape); }

AnonModel::AnonModel(const Model& m) {
  for (const LayerParams& p : m.params.layers) {
    LayerParams a;
    for (auto [dst, src] : {std::pair{&a.attn_norm, &p.attn_norm},
                            {&a.wq, &p.wq},
                            {&a.bq, &p.bq},
                            {&a.wk, &p.wk},
                            {&a.bk, &p.bk},
                            {&a.wv, &p.wv},
                            {&a.bv, &p.bv},
                            {&a.conv_w, &p.conv_w},
                            {&a.conv_b, &p.conv_b},
                            {&a.fc1_w, &p.fc1_w},
                            {&a.fc1_b, &p.fc1_b},
                            {&a.fc2_w, &p.fc2_w},
                            {&a.fc2_b, &p.fc2_b},
                            {&a.scale, &p.scale},
                            {&a.hn_w, &p.hn_w},
                            {&a.hn_b, &p.hn_b},
                            {&a.wo, &p.wo},
                            {&a.ffn_norm, &p.ffn_norm},
                            {&a.w_gate, &p.w_gate},
                            {&a.w_up, &p.w_up},
                            {&a.w_down, &p.w_down}})
      *dst = anon(*src);
    layers.push_back(a);
  }
  for (const Tensor& t : m.buffers.omega_q) omega_q.push_back(anon(t));
  for (const Tensor& t : m.buffers.omega_k) omega_k.push_back(anon(t));
  embed = anon(m.params.embed);
  final_norm = anon(m.params.final_norm);
  head = anon(m.config().tie_embeddings ? m.params.embed : m.params.lm_head);
}

DecodeStep::DecodeStep(const Model& m) : w(m) {
  const GenDims s(m.config());
  const DType dt = m.dtype();
  arena = std::make_unique<Arena>("decode step", m.device());
  arena->build([&](Arena& a) {
    x = a.add("x", dt, {1, s.D});
    u = a.add("u", dt, {1, s.D});
    q = a.add("q", dt, {1, s.H * s.d});
    k = a.add("k", dt, {1, s.Hkv * s.d});
    v = a.add("v", dt, {1, s.Hkv * s.d});
    o = a.add("o", dt, {1, s.H * s.d});
    if (s.wersa) {
      c = a.add("c", dt, {1, s.D});
      h1 = a.add("h1", dt, {1, s.G});
      a1 = a.add("a1", dt, {1, s.G});
      zg = a.add("zg", dt, {1, s.L1});
      g = a.add("g", dt, {1, s.L1});
      gamma = a.add("gamma", dt, {1, s.L1});
      qh = a.add("qh", dt, {1, s.H * s.d});
      kh = a.add("kh", dt, {1, s.Hkv * s.d});
      qt = a.add("qt", dt, {1, s.H * s.d});
      kt = a.add("kt", dt, {1, s.Hkv * s.d});
      phiq = a.add("phiq", dt, {s.H, s.M});
      phik = a.add("phik", dt, {s.Hkv, s.M});
      on = a.add("on", dt, {1, s.H * s.d});
    }
    h = a.add("h", dt, {1, s.D});
    u2 = a.add("u2", dt, {1, s.D});
    gate = a.add("gate", dt, {1, s.F});
    up = a.add("up", dt, {1, s.F});
    act = a.add("act", dt, {1, s.F});
    xf = a.add("xf", dt, {1, s.D});
    logits = a.add("logits", dt, {1, s.V});
    return 0;
  });
  for (Tensor* t : {&x,  &u,  &q,  &k,    &v,    &o,  &c, &h1, &a1,   &zg, &g,   &gamma, &qh,
                    &kh, &qt, &kt, &phiq, &phik, &on, &h, &u2, &gate, &up, &act, &xf,    &logits})
    if (t->defined()) *t = anon(*t);
  x1 = x.view({s.D});
  u1 = u.view({s.D});
  q4 = q.view({1, 1, s.H, s.d});
  k4 = k.view({1, 1, s.Hkv, s.d});
  qHd = q.view({s.H, s.d});
  kHd = k.view({s.Hkv, s.d});
  vHd = v.view({s.Hkv, s.d});
  oHd = o.view({s.H, s.d});
  if (s.wersa) {
    c1 = c.view({s.D});
    qh1 = qh.view({s.H * s.d});
    kh1 = kh.view({s.Hkv * s.d});
    qt1 = qt.view({s.H * s.d});
    kt1 = kt.view({s.Hkv * s.d});
    gamma1 = gamma.view({s.L1});
    onHd = on.view({s.H, s.d});
    qtHd = qt.view({s.H, s.d});
    ktHd = kt.view({s.Hkv, s.d});
  }
}

DecodePrefill::DecodePrefill(const Model& m, int64_t R) : rows(R) {
  const GenDims s(m.config());
  const DType dt = m.dtype();
  iarena = std::make_unique<Arena>("prefill tokens", m.device());
  iarena->build([&](Arena& a) { return tokens = a.add("tokens", DType::I32, {R}); });
  arena = std::make_unique<Arena>("prefill chunk", m.device());
  arena->build([&](Arena& a) {
    x = a.add("x", dt, {R, s.D});
    uext = a.add("uext", dt, {(s.wersa ? s.W : 0) + R, s.D});  // conv window rows, then the chunk's u
    q = a.add("q", dt, {R, s.H * s.d});
    k = a.add("k", dt, {R, s.Hkv * s.d});
    v = a.add("v", dt, {R, s.Hkv * s.d});
    o = a.add("o", dt, {R, s.H * s.d});
    if (s.wersa) {
      cext = a.add("cext", dt, {s.W + R, s.D});
      h1 = a.add("h1", dt, {R, s.G});
      a1 = a.add("a1", dt, {R, s.G});
      zg = a.add("zg", dt, {R, s.L1});
      g = a.add("g", dt, {R, s.L1});
      gamma = a.add("gamma", dt, {R, s.L1});
      qh = a.add("qh", dt, {R, s.H * s.d});
      kh = a.add("kh", dt, {R, s.Hkv * s.d});
      coef = a.add("coef", dt, {s.L1 * R * s.H * s.d});  // shared by q and k
      qt = a.add("qt", dt, {R, s.H * s.d});
      kt = a.add("kt", dt, {R, s.Hkv * s.d});
      phiq = a.add("phiq", dt, {R, s.H, s.M});
      phik = a.add("phik", dt, {R, s.Hkv, s.M});
      den = a.add("den", dt, {R * s.H});
      on = a.add("on", dt, {R, s.H * s.d});
    }
    h = a.add("h", dt, {R, s.D});
    u2 = a.add("u2", dt, {R, s.D});
    gate = a.add("gate", dt, {R, s.F});
    up = a.add("up", dt, {R, s.F});
    act = a.add("act", dt, {R, s.F});
    xf = a.add("xf", dt, {R, s.D});
    return 0;
  });
}

DecodePrefill& DecodeAccess::prefill(DecodeState& s) {
  if (!s.pre_) s.pre_ = std::make_unique<DecodePrefill>(*s.model_, s.opt_.prefill_chunk);
  return *s.pre_;
}

void check_state(const Model& m, const DecodeState& s, int64_t n, const char* what) {
  WERSA_CHECK(DecodeAccess::model(s) == &m, what, ": the decode state was made for another model");
  if (n > s.room()) {
    const bool soft = m.config().attention.type == "softmax";
    WERSA_FAIL(what, ": ", n, " more token", n == 1 ? "" : "s", " do not fit: the state holds ", s.pos(),
               " of its context of ", s.context(), " tokens",
               soft ? " (a softmax model attends over a KV cache of that many rows; raise it with -c)" : "");
  }
}

}  // namespace detail

DecodeState::DecodeState(const Model& m, const DecodeOptions& opt) : model_(&m), opt_(opt) {
  const ModelConfig& c = m.config();
  const detail::GenDims s(c);
  WERSA_CHECK(c.attention.causal, "generation needs a causal model (attention.causal = true)");
  WERSA_CHECK(m.device() == Device::CPU, "generation runs on the CPU");
  WERSA_CHECK(opt.context >= 0, "context = ", opt.context, ", expected >= 0 (0 = unlimited for WERSA)");
  WERSA_CHECK(s.wersa || opt.context > 0, "a softmax model needs a context length (-c) for its KV cache");
  WERSA_CHECK(opt.prefill_chunk >= 1, "prefill chunk = ", opt.prefill_chunk, ", expected >= 1");
  const DType dt = m.dtype();
  state_ = std::make_unique<Arena>("decode state", m.device());
  layers = state_->build([&](Arena& a) {
    std::vector<LayerState> out;
    for (int i = 0; i < c.layers; ++i) {
      const std::string p = "layers." + std::to_string(i) + ".";
      LayerState l;
      if (s.wersa) {
        if (s.W > 0) l.conv = a.add(p + "conv", dt, {s.W, s.D});
        l.haar_q = a.add(p + "haar_q", dt, {s.P, s.H * s.d});
        l.haar_k = a.add(p + "haar_k", dt, {s.P, s.Hkv * s.d});
        l.S = a.add(p + "S", dt, {s.Hkv, s.M, s.d});
        l.z = a.add(p + "z", dt, {s.Hkv, s.M});
      } else {
        l.kcache = a.add(p + "kcache", dt, {opt.context, s.Hkv, s.d});
        l.vcache = a.add(p + "vcache", dt, {opt.context, s.Hkv, s.d});
      }
      out.push_back(l);
    }
    return out;
  });
  for (LayerState& l : layers)
    for (Tensor* t : {&l.conv, &l.haar_q, &l.haar_k, &l.S, &l.z, &l.kcache, &l.vcache})
      if (t->defined()) *t = detail::anon(*t);
  step_ = std::make_unique<detail::DecodeStep>(m);
  logits_ = step_->logits.view({s.V});
  tokens_.reserve(size_t(std::min<int64_t>(opt.context > 0 ? opt.context : 4096, 1 << 20)));
}

DecodeState::~DecodeState() = default;

void DecodeState::reset() {
  state_->zero();
  tokens_.clear();
  device_memset0(logits_);
}

int64_t DecodeState::room() const {
  return opt_.context > 0 ? opt_.context - pos() : std::numeric_limits<int64_t>::max();
}

size_t DecodeState::state_bytes() const { return state_->bytes(); }

const std::deque<Tensor>& DecodeState::state_tensors() const { return state_->tensors(); }

void DecodeState::copy_from(const DecodeState& o) {
  WERSA_CHECK(o.model_ == model_ && o.opt_.context == opt_.context && o.state_->bytes() == state_->bytes(),
              "copy of a decode state made for another model or context");
  const auto& src = o.state_->tensors();
  const auto& dst = state_->tensors();
  for (size_t i = 0; i < src.size(); ++i) tensor_copy(dst[i], src[i]);
  tokens_ = o.tokens_;
  tensor_copy(logits_, o.logits_);
}

size_t decode_weight_bytes(const Model& m) {
  Model& mm = const_cast<Model&>(m);
  size_t n = 0;
  for (const Tensor& t : mm.params_arena().tensors()) n += t.bytes();
  for (const Tensor& t : mm.buffers_arena().tensors()) n += t.bytes();
  if (!m.config().tie_embeddings)  // the table is looked up, one row per token
    n -= m.params.embed.bytes() - size_t(m.config().dim) * dtype_size(m.dtype());
  return n;
}

std::string model_fingerprint(const Model& m) {
  Config full;
  full.model = m.config();
  const std::string cfg = config_to_json(full)["model"].dump();
  uint64_t h = hash_name(cfg.c_str()) ^ uint64_t(m.dtype());
  for (const Arena* a : {&const_cast<Model&>(m).params_arena(), &const_cast<Model&>(m).buffers_arena()})
    for (const Tensor& t : a->tensors()) {
      h = mix64(h ^ hash_name(t.name.c_str()));
      const unsigned char* p = static_cast<const unsigned char*>(t.data);
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

void save_decode_state(const Model& m, const DecodeState& s, const std::string& path,
                       const std::map<std::string, std::string>& extra) {
  detail::check_state(m, s, 0, "save state");
  const int64_t pos = s.pos();
  std::vector<Tensor> out;
  auto named = [](const Tensor& t, const std::string& name) {
    return Tensor(t.data, t.dtype, t.device, t.shape, name);
  };
  for (const Tensor& t : s.state_tensors()) {
    if (t.name.find("cache") != std::string::npos) {  // only the rows in use
      if (pos > 0) out.push_back(named(t.rows(0, pos), t.name));
    } else {
      out.push_back(t);
    }
  }
  if (pos > 0) {
    out.push_back(
        Tensor(const_cast<int32_t*>(s.tokens().data()), DType::I32, Device::CPU, Shape{pos}, "tokens"));
    out.push_back(named(s.logits(), "logits"));
  }
  std::map<std::string, std::string> meta = extra;
  meta["format"] = "wersa-state";
  meta["version"] = "1";
  meta["model_fingerprint"] = model_fingerprint(m);
  meta["position"] = std::to_string(pos);
  meta["attention"] = m.config().attention.type;
  meta["dtype"] = dtype_name(m.dtype());
  io::save_safetensors(path, out, meta);
}

void load_decode_state(const Model& m, DecodeState& s, const std::string& path) {
  detail::check_state(m, s, 0, "load state");
  const io::SafeTensorsFile f(path);
  const auto& meta = f.metadata();
  auto get = [&](const char* key) {
    const auto it = meta.find(key);
    WERSA_CHECK(it != meta.end(), path, ": not a wersa state file (no '", key, "' in its metadata)");
    return it->second;
  };
  WERSA_CHECK(get("format") == "wersa-state", path, ": not a wersa state file (format '", get("format"),
              "')");
  WERSA_CHECK(get("version") == "1", path, ": state file version ", get("version"),
              " is not supported (expected 1)");
  const std::string fp = model_fingerprint(m);
  WERSA_CHECK(get("model_fingerprint") == fp, path, ": the state was made by another model (fingerprint ",
              get("model_fingerprint"), ", this model's is ", fp, ")");
  int64_t pos = -1;
  try {
    pos = std::stoll(get("position"));
  } catch (const std::exception&) {
  }
  WERSA_CHECK(pos >= 0, path, ": bad position '", get("position"), "' in the metadata");
  WERSA_CHECK(s.context() == 0 || pos <= s.context(), path, ": the state holds ", pos,
              " tokens, more than the context of ", s.context());
  s.reset();
  for (const Tensor& t : s.state_tensors()) {
    if (t.name.find("cache") != std::string::npos) {
      if (pos > 0) f.read_into(t.name, t.rows(0, pos));
    } else {
      f.read_into(t.name, t);
    }
  }
  std::vector<int32_t>& toks = detail::DecodeAccess::tokens(s);
  toks.assign(size_t(pos), 0);
  if (pos > 0) {
    f.read_into("tokens", Tensor(toks.data(), DType::I32, Device::CPU, Shape{pos}, "tokens"));
    f.read_into("logits", s.logits());
  }
}

}  // namespace wersa

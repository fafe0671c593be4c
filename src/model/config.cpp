#include "wersa/model/config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <vector>

#include "wersa/common/error.h"
#include "wersa/common/json.h"
#include "wersa/common/version.h"

namespace wersa {

using json = nlohmann::json;

namespace {

// ---- limits: what a field accepts --------------------------------------------------------------

struct Int {  // an integer in [lo, hi]
  int64_t lo, hi;
};
struct U64 {};  // any integer in [0, 2^64 - 1]
struct Real {   // a number in [lo, hi] (or open at either end), or exactly 0 when zero_ok
  double lo, hi;
  bool lo_open = false, hi_open = false, zero_ok = false;
};
struct OneOf {  // one of a fixed set of strings
  std::vector<std::string> values;
};
struct Kinds {};  // an attention kind, by name (attention_kinds())
struct Text {};   // any string
struct Flag {};   // true or false
struct Names {};  // a list of distinct, non-empty strings

Real closed(double lo, double hi) { return {lo, hi, false, false, false}; }
Real open_closed(double lo, double hi) { return {lo, hi, true, false, false}; }
Real closed_open(double lo, double hi) { return {lo, hi, false, true, false}; }
Real zero_or(double lo, double hi) { return {lo, hi, false, false, true}; }

constexpr int kBig = 1000000000;  // step counts

// ---- THE declaration: every field, once ------------------------------------------------------

template <class C, class V>
void visit_fields(C& c, V& v) {
  auto& m = c.model;
  auto& a = c.model.attention;
  auto& t = c.train;
  auto& d = c.data;
  auto& k = c.model.task;
  v.field("model.vocab_size", m.vocab_size, Int{2, 16777216},
          "vocabulary size (259 for the byte-level tokenizer)");
  v.field("model.dim", m.dim, Int{1, 65536}, "model width D");
  v.field("model.layers", m.layers, Int{1, 1024}, "number of blocks");
  v.field("model.heads", m.heads, Int{1, 1024}, "query heads H (model.dim must be a multiple of it)");
  v.field("model.kv_heads", m.kv_heads, Int{1, 1024}, "key/value heads Hkv (must divide model.heads)");
  v.field("model.ffn_dim", m.ffn_dim, Int{1, 262144}, "hidden width of the SwiGLU feed-forward");
  v.field("model.tie_embeddings", m.tie_embeddings, Flag{}, "the LM head reuses the embedding matrix");
  v.field("model.rope_theta", m.rope_theta, zero_or(1, 1e12), "RoPE base (0 = no RoPE)");
  v.field("model.norm_eps", m.norm_eps, open_closed(0, 1), "RMSNorm epsilon");
  v.field("model.init_std", m.init_std, open_closed(0, 1), "standard deviation of the initial weights");
  v.field("model.attention.type", a.type, Kinds{},
          "wersa (linear, wavelet-gated), softmax (exact baseline) or linear (wersa without the wavelets)");
  v.field("model.attention.features", a.features, Int{1, 65536}, "random features m per head");
  v.field("model.attention.levels", a.levels, Int{1, 12}, "Haar levels L");
  v.field("model.attention.conv_width", a.conv_width, Int{1, 1025}, "width K of the gate convolution");
  v.field("model.attention.shared_qk_features", a.shared_qk_features, Flag{},
          "one random projection for q and k (false: two independent ones)");
  v.field("model.attention.feature_map", a.feature_map, OneOf{{"relu", "exp"}},
          "random-feature map: relu (arc-cosine kernel) or exp (positive features of the softmax kernel)");
  v.field("model.attention.causal", a.causal, Flag{}, "causal (language model) or bidirectional attention");
  v.field("model.attention.chunk", a.chunk, Int{1, 4096}, "chunk size C of the parallel linear attention");
  v.field("model.attention.eps", a.eps, open_closed(0, 1), "epsilon of the linear-attention denominator");
  v.field("model.attention.qkv_bias", a.qkv_bias, Flag{}, "biases on the q, k and v projections");
  v.field("model.attention.gate_dim", a.gate_dim, Int{0, 65536},
          "hidden width F of the gate MLP (0 = model.dim / 4)");
  v.field("model.attention.head_norm_eps", a.head_norm_eps, open_closed(0, 1),
          "epsilon of the LayerNorm on each head's output");
  v.field("task.type", k.type, OneOf{{"lm", "classify"}},
          "lm (next-token language model) or classify (documents to classes, pooled head)");
  v.field("task.num_classes", k.num_classes, Int{0, 65536},
          "classify: number of classes C (0 = the classes of the training data)");
  v.field("task.pooling", k.pooling, OneOf{{"mean", "last"}},
          "classify: mean of the document's positions, or its last position");
  v.field("task.labels", k.labels, Names{}, "classify: class names in id order ([] = sorted from the data)");
  v.field("train.steps", t.steps, Int{1, kBig}, "optimizer steps");
  v.field("train.batch_size", t.batch_size, Int{1, 65536}, "sequences per micro-batch");
  v.field("train.seq_len", t.seq_len, Int{1, 1048576}, "tokens per sequence");
  v.field("train.lr", t.lr, open_closed(0, 10), "peak learning rate");
  v.field("train.min_lr", t.min_lr, closed(0, 10), "learning rate at the end of the decay (<= train.lr)");
  v.field("train.warmup_steps", t.warmup_steps, Int{0, kBig}, "linear warm-up steps (<= train.steps)");
  v.field("train.weight_decay", t.weight_decay, closed(0, 10), "AdamW decoupled weight decay");
  v.field("train.grad_clip", t.grad_clip, closed(0, 1e6), "clip the global gradient norm to this (0 = off)");
  v.field("train.grad_accum", t.grad_accum, Int{1, 65536}, "micro-batches accumulated per step");
  v.field("train.seed", t.seed, U64{}, "seed of every random draw (weights, random features, data order)");
  v.field("train.eval_every", t.eval_every, Int{0, kBig}, "steps between evaluations on data.val (0 = none)");
  v.field("train.eval_batches", t.eval_batches, Int{1, 1000000}, "batches per evaluation");
  v.field("train.checkpoint_every", t.checkpoint_every, Int{0, kBig},
          "steps between checkpoints (0 = no periodic checkpoints)");
  v.field("train.keep_last", t.keep_last, Int{0, kBig},
          "checkpoints kept in --out: older ones are deleted after each save (0 = keep all)");
  v.field("train.log_every", t.log_every, Int{1, kBig}, "steps between log lines");
  v.field("train.beta1", t.beta1, closed_open(0, 1), "AdamW beta1");
  v.field("train.beta2", t.beta2, closed_open(0, 1), "AdamW beta2");
  v.field("train.adam_eps", t.adam_eps, open_closed(0, 1), "AdamW epsilon");
  v.field("train.device", t.device, OneOf{{"cpu", "cuda"}}, "where to run");
  v.field("train.threads", t.threads, Int{0, 4096}, "CPU threads (0 = all cores)");
  v.field("train.recompute", t.recompute, Flag{},
          "keep only each block's input and recompute its activations in the backward (less memory, "
          "about one more forward; the same gradients bit for bit)");
  v.field("train.precision", t.precision, OneOf{{"fp32", "bf16"}},
          "fp32, or bf16 mixed precision: the GEMMs take bf16 operands (a bf16 copy of the weights, "
          "activations rounded) and accumulate in fp32; master weights, Adam moments, norm statistics "
          "and linear-attention states stay fp32");
  v.field("train.class_weights", t.class_weights, OneOf{{"none", "balanced"}},
          "classify: loss weight per class (balanced: n / (C n_c) over the training split)");
  v.field("train.init_from", t.init_from, Text{},
          "classify: checkpoint directory whose trunk initialises the model (\"\" = none)");
  v.field("train.freeze_trunk_steps", t.freeze_trunk_steps, Int{0, kBig},
          "classify: first steps that train the head only (the trunk frozen)");
  v.field("data.train", d.train, Text{},
          "training data: a UTF-8 .txt file, or a token shard file, glob or directory (required)");
  v.field("data.val", d.val, Text{}, "validation data, same forms as data.train (\"\" = none)");
  v.field("data.tokenizer", d.tokenizer, Text{},
          "SentencePiece model file (\"\" = the tokenizer.model beside the shards, else byte-level)");
  v.field("data.truncate", d.truncate, OneOf{{"head", "head_tail"}},
          "classify: documents longer than train.seq_len keep their head, or head and tail (1/4 + 3/4)");
  v.field("data.val_fraction", d.val_fraction, closed_open(0, 1),
          "classify: validation share of each class when the records carry no split");
  v.field("data.test_fraction", d.test_fraction, closed_open(0, 1),
          "classify: test share of each class when the records carry no split");
}

// ---- describing limits and values ------------------------------------------------------------

// The shortest text that reads back as x: 1e-06, 0.001, 10000, 1e+12.
std::string num(double x) {
  char buf[40];
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  if (std::strchr(buf, 'e') && std::fabs(x) < 1e7 && x == std::floor(x))
    std::snprintf(buf, sizeof buf, "%.0f", x);
  return buf;
}

std::string clean(const std::string& s) { return printable(s); }
std::string brief(const json& j) { return json_brief(j); }

std::string range_text(const Int& r) { return detail::cat("[", r.lo, ", ", r.hi, "]"); }
std::string range_text(const U64&) { return "[0, 18446744073709551615]"; }
std::string range_text(const Real& r) {
  return detail::cat(r.zero_ok ? "0 or " : "", r.lo_open ? "(" : "[", num(r.lo), ", ", num(r.hi),
                     r.hi_open ? ")" : "]");
}
std::string range_text(const OneOf& c) {
  std::string s;
  for (const std::string& v : c.values) s += (s.empty() ? "" : "|") + v;
  return s;
}
std::string range_text(const Kinds&) {
  std::string s;
  for (AttentionKind k : attention_kinds()) s += (s.empty() ? "" : "|") + std::string(attention_kind_name(k));
  return s;
}
std::string range_text(const Text&) { return "any"; }
std::string range_text(const Flag&) { return "true|false"; }
std::string range_text(const Names&) { return "distinct names"; }

std::string expected(const Int& r) { return "an integer in " + range_text(r); }
std::string expected(const U64& r) { return "an integer in " + range_text(r); }
std::string expected(const Real& r) {
  return (r.zero_ok ? "0 or a number in " : "a number in ") + range_text(r).substr(r.zero_ok ? 5 : 0);
}
std::string expected(const OneOf& c) {
  std::string s;
  for (size_t i = 0; i < c.values.size(); ++i) s += (i ? ", " : "") + c.values[i];
  return "one of: " + s;
}
std::string expected(const Kinds&) {
  std::vector<std::string> names;
  for (AttentionKind k : attention_kinds()) names.push_back(attention_kind_name(k));
  return expected(OneOf{names});
}

const char* type_name(const Int&) { return "int"; }
const char* type_name(const U64&) { return "uint64"; }
const char* type_name(const Real&) { return "number"; }
const char* type_name(const OneOf&) { return "string"; }
const char* type_name(const Kinds&) { return "string"; }
const char* type_name(const Text&) { return "string"; }
const char* type_name(const Flag&) { return "bool"; }
const char* type_name(const Names&) { return "strings"; }

std::string show(int v) { return std::to_string(v); }
std::string show(uint64_t v) { return std::to_string(v); }
std::string show(double v) { return num(v); }
std::string show(bool v) { return v ? "true" : "false"; }
std::string show(const std::string& v) { return brief(json(v)); }
std::string show(AttentionKind v) { return attention_kind_name(v); }  // valid kinds only
std::string show(const std::vector<std::string>& v) { return brief(json(v)); }

// ---- range checks: "" when fine, else the problem ----------------------------------------------

std::string out_of_range(const std::string& shown, const std::string& exp) {
  return shown + " is out of range (expected " + exp + ")";
}
std::string check(const Int& r, int v) {
  return v >= r.lo && v <= r.hi ? "" : out_of_range(show(v), expected(r));
}
std::string check(const U64&, uint64_t) { return ""; }
std::string check(const Real& r, double v) {
  if (r.zero_ok && v == 0) return "";
  const bool ok =
      std::isfinite(v) && (r.lo_open ? v > r.lo : v >= r.lo) && (r.hi_open ? v < r.hi : v <= r.hi);
  return ok ? "" : out_of_range(show(v), expected(r));
}
std::string check(const OneOf& c, const std::string& v) {
  if (std::find(c.values.begin(), c.values.end(), v) != c.values.end()) return "";
  return show(v) + " is not a valid choice (expected " + expected(c) + ")";
}
std::string check(const Kinds& k, AttentionKind v) {  // a value cast from outside the table
  for (AttentionKind kind : attention_kinds())
    if (kind == v) return "";
  return std::to_string(int(v)) + " is not a valid choice (expected " + expected(k) + ")";
}
std::string check(const Text&, const std::string&) { return ""; }
std::string check(const Flag&, bool) { return ""; }
std::string check(const Names&, const std::vector<std::string>& v) {
  std::set<std::string> seen;
  for (const std::string& s : v) {
    if (s.empty()) return "an empty name (expected distinct, non-empty names)";
    if (!seen.insert(s).second) return show(s) + " appears twice (expected distinct names)";
  }
  return "";
}

// ---- conversion from JSON: writes `out` and returns "" on success, else the problem ------------

// An integral JSON number as long double (exact for every int64/uint64 and every integral double
// up to 2^64); false when j is not an integral number.
bool integral(const json& j, long double& v) {
  if (j.is_number_unsigned()) return v = (long double)j.get<uint64_t>(), true;
  if (j.is_number_integer()) return v = (long double)j.get<int64_t>(), true;
  if (j.is_number_float()) {
    const double d = j.get<double>();
    if (!std::isfinite(d) || std::floor(d) != d) return false;
    return v = d, true;
  }
  return false;
}

std::string convert(const json& j, const Int& r, int& out) {
  long double v;
  if (!integral(j, v)) return "expected an integer, got " + brief(j);
  if (v < r.lo || v > r.hi) return out_of_range(brief(j), expected(r));
  out = int(v);
  return "";
}
std::string convert(const json& j, const U64& r, uint64_t& out) {
  long double v;
  if (!integral(j, v)) return "expected an integer, got " + brief(j);
  if (j.is_number_unsigned()) return out = j.get<uint64_t>(), "";
  if (v < 0 || v >= 18446744073709551616.0L) return out_of_range(brief(j), expected(r));
  out = uint64_t(v);
  return "";
}
std::string convert(const json& j, const Real& r, double& out) {
  if (!j.is_number()) return "expected a number, got " + brief(j);
  const double v = j.get<double>();
  std::string problem = check(r, v);
  if (problem.empty()) out = v;
  return problem;
}
template <class L>
std::string convert_string(const json& j, const L& lim, std::string& out) {
  if (!j.is_string()) return "expected a string, got " + brief(j);
  std::string problem = check(lim, j.get<std::string>());
  if (problem.empty()) out = j.get<std::string>();
  return problem;
}
std::string convert(const json& j, const OneOf& c, std::string& out) { return convert_string(j, c, out); }
std::string convert(const json& j, const Text& t, std::string& out) { return convert_string(j, t, out); }
std::string convert(const json& j, const Kinds& k, AttentionKind& out) {
  if (!j.is_string()) return "expected a string, got " + brief(j);
  for (AttentionKind kind : attention_kinds())
    if (j.get_ref<const std::string&>() == attention_kind_name(kind)) return out = kind, "";
  return brief(j) + " is not a valid choice (expected " + expected(k) + ")";
}
std::string convert(const json& j, const Names& n, std::vector<std::string>& out) {
  if (!j.is_array()) return "expected a list of strings, got " + brief(j);
  std::vector<std::string> v;
  for (const json& e : j) {
    if (!e.is_string()) return "expected a list of strings, got an element " + brief(e);
    v.push_back(e.get<std::string>());
  }
  std::string problem = check(n, v);
  if (problem.empty()) out = std::move(v);
  return problem;
}
std::string convert(const json& j, const Flag&, bool& out) {
  if (!j.is_boolean()) return "expected true or false, got " + brief(j);
  out = j.get<bool>();
  return "";
}

// ---- visitors ---------------------------------------------------------------------------------

struct KeyLister {
  std::vector<std::string> keys;
  template <class T, class L>
  void field(const char* path, const T&, const L&, const char*) {
    keys.push_back(path);
  }
};

const json* find_path(const json& root, const std::string& path) {
  const json* node = &root;
  std::istringstream parts(path);
  std::string part;
  while (std::getline(parts, part, '.')) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

struct JsonReader {
  const json& root;
  const std::string& source;
  template <class T, class L>
  void field(const char* path, T& ref, const L& lim, const char*) {
    if (const json* node = find_path(root, path)) {
      const std::string problem = convert(*node, lim, ref);
      WERSA_CHECK(problem.empty(), source, ": ", path, ": ", problem);
    }
  }
};

struct Setter {
  const std::string& key;
  const json& value;  // the text parsed as JSON, or the text as a JSON string
  const std::string& raw;
  const std::string& source;
  bool found = false;
  template <class T, class L>
  void field(const char* path, T& ref, const L& lim, const char*) {
    if (key != path) return;
    found = true;
    std::string problem;
    if constexpr (std::is_same_v<T, std::string> || std::is_enum_v<T>) {
      problem = convert(value.is_string() ? value : json(raw), lim, ref);
    } else {
      problem = convert(value, lim, ref);
    }
    WERSA_CHECK(problem.empty(), source, ": ", path, ": ", problem);
  }
};

struct Validator {
  const std::string& source;
  template <class T, class L>
  void field(const char* path, const T& ref, const L& lim, const char*) {
    const std::string problem = check(lim, ref);
    WERSA_CHECK(problem.empty(), source, ": ", path, ": ", problem);
  }
};

struct JsonWriter {
  json& out;
  template <class T, class L>
  void field(const char* path, const T& ref, const L&, const char*) {
    std::string ptr = std::string("/") + path;
    std::replace(ptr.begin(), ptr.end(), '.', '/');
    if constexpr (std::is_enum_v<T>)
      out[json::json_pointer(ptr)] = show(ref);
    else
      out[json::json_pointer(ptr)] = ref;
  }
};

struct HelpWriter {
  std::vector<std::vector<std::string>> rows;
  template <class T, class L>
  void field(const char* path, const T& ref, const L& lim, const char* help) {
    rows.push_back({path, type_name(lim), show(ref), range_text(lim), help});
  }
};

// ---- key checking -----------------------------------------------------------------------------

struct KeySets {
  std::vector<std::string> leaves;
  std::set<std::string> leaf_set, sections;
  KeySets() {
    Config c;
    KeyLister l;
    visit_fields(c, l);
    leaves = l.keys;
    for (const std::string& k : leaves) {
      leaf_set.insert(k);
      for (size_t dot = k.find('.'); dot != std::string::npos; dot = k.find('.', dot + 1))
        sections.insert(k.substr(0, dot));
    }
  }
};

const KeySets& key_sets() {
  static const KeySets ks;
  return ks;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

[[noreturn]] void unknown_key(const std::string& source, const std::string& path) {
  std::string best;
  size_t best_d = 3;  // suggest only close matches
  for (const std::string& k : key_sets().leaves) {
    const size_t dist = edit_distance(path, k);
    if (dist < best_d) best_d = dist, best = k;
  }
  WERSA_FAIL(source, ": unknown key '", clean(path), "'",
             best.empty() ? "" : " (did you mean '" + best + "'?)");
}

void check_keys(const json& obj, const std::string& prefix, const std::string& source) {
  const KeySets& ks = key_sets();
  for (const auto& item : obj.items()) {
    // A saved config.json names the engine that wrote it (version.h); not a setting.
    if (prefix.empty() && item.key() == kWrittenByKey) {
      WERSA_CHECK(item.value().is_string(), source, ": ", kWrittenByKey, ": expected a string, got ",
                  brief(item.value()));
      continue;
    }
    const std::string path = prefix.empty() ? item.key() : prefix + "." + item.key();
    WERSA_CHECK(item.key().find('.') == std::string::npos, source, ": unknown key '", clean(path),
                "' (keys are nested objects: {\"model\": {\"dim\": ...}})");
    if (ks.leaf_set.count(path)) continue;
    if (!ks.sections.count(path)) unknown_key(source, path);
    WERSA_CHECK(item.value().is_object(), source, ": ", path,
                ": expected an object (a section of settings), got ", brief(item.value()));
    check_keys(item.value(), path, source);
  }
}

}  // namespace

// ---- public API -------------------------------------------------------------------------------

Config config_from_json(const json& j, const std::string& source) {
  WERSA_CHECK(j.is_object(), source, ": expected a JSON object at the top level, got ", brief(j));
  check_keys(j, "", source);
  Config c;
  JsonReader r{j, source};
  visit_fields(c, r);
  config_validate(c, source);
  return c;
}

Config config_from_file(const std::string& path) {
  return config_from_json(read_json_file(path, kJsonMaxDepth, size_t(16) << 20), path);
}

namespace {
// Applies one KEY=VALUE (type-checked) to a copy of c and returns it; no cross-field validation.
Config apply_assignment(const Config& c, const std::string& assignment, const std::string& source) {
  const size_t eq = assignment.find('=');
  WERSA_CHECK(eq != std::string::npos, source, ": '", clean(assignment),
              "': expected KEY=VALUE (e.g. model.dim=128); see the settings list for keys");
  const std::string key = assignment.substr(0, eq), raw = assignment.substr(eq + 1);
  const KeySets& ks = key_sets();
  if (ks.sections.count(key)) {
    const auto first = std::find_if(ks.leaves.begin(), ks.leaves.end(),
                                    [&](const std::string& k) { return k.rfind(key + ".", 0) == 0; });
    WERSA_FAIL(source, ": '", key, "' is a section, not a setting (expected a key such as ", *first, ")");
  }
  if (!ks.leaf_set.count(key)) unknown_key(source, key);
  // The value as JSON when it is JSON (within the nesting limit), else as a string.
  json value;
  try {
    value = parse_json(raw, source + ": " + key);
  } catch (const Error&) {
    if (json::accept(raw)) throw;  // valid JSON, but too deep or with duplicate keys
    value = json(raw);
  }
  Config next = c;
  Setter s{key, value, raw, source};
  visit_fields(next, s);
  WERSA_ASSERT(s.found, "key ", key, " listed but not visited");
  return next;
}
}  // namespace

void config_set(Config& c, const std::string& assignment, const std::string& source) {
  Config next = apply_assignment(c, assignment, source);
  config_validate(next, source);
  c = next;
}

void config_set_all(Config& c, const std::vector<std::string>& assignments, const std::string& source) {
  Config next = c;
  for (const std::string& a : assignments) next = apply_assignment(next, a, source);
  config_validate(next, source);
  c = next;
}

void config_validate(const Config& c, const std::string& source) {
  Validator v{source};
  visit_fields(c, v);
  const ModelConfig& m = c.model;
  const TrainConfig& t = c.train;
  WERSA_CHECK(m.dim % m.heads == 0, source, ": model.dim: ", m.dim,
              " is not a multiple of model.heads = ", m.heads, " (expected model.dim % model.heads == 0)");
  WERSA_CHECK(m.kv_heads <= m.heads, source, ": model.kv_heads: ", m.kv_heads,
              " is more than model.heads = ", m.heads, " (expected model.kv_heads <= model.heads)");
  WERSA_CHECK(m.heads % m.kv_heads == 0, source, ": model.heads: ", m.heads,
              " is not a multiple of model.kv_heads = ", m.kv_heads,
              " (expected model.heads % model.kv_heads == 0)");
  WERSA_CHECK(m.rope_theta == 0 || config_head_dim(m) % 2 == 0, source,
              ": model.rope_theta: RoPE needs an even head width, but model.dim / model.heads = ", m.dim,
              " / ", m.heads, " = ", config_head_dim(m),
              " (expected an even head width, or model.rope_theta = 0)");
  WERSA_CHECK(t.min_lr <= t.lr, source, ": train.min_lr: ", num(t.min_lr),
              " is larger than train.lr = ", num(t.lr), " (expected train.min_lr <= train.lr)");
  WERSA_CHECK(t.warmup_steps <= t.steps, source, ": train.warmup_steps: ", t.warmup_steps,
              " is more than train.steps = ", t.steps, " (expected train.warmup_steps <= train.steps)");
  const TaskConfig& k = m.task;
  WERSA_CHECK(k.num_classes != 1, source,
              ": task.num_classes: 1 class cannot be classified (expected 0 = from the data, or at least 2)");
  WERSA_CHECK(k.labels.empty() || k.labels.size() >= 2, source, ": task.labels: ", show(k.labels),
              " names one class (expected at least 2, or [] = from the data)");
  WERSA_CHECK(k.labels.empty() || k.num_classes == 0 || size_t(k.num_classes) == k.labels.size(), source,
              ": task.num_classes: ", k.num_classes, " but task.labels names ", k.labels.size(),
              " classes (expected them to agree, or task.num_classes = 0)");
  if (!k.classify()) {
    const char* what = !k.labels.empty()           ? "task.labels"
                       : k.num_classes != 0        ? "task.num_classes"
                       : t.freeze_trunk_steps != 0 ? "train.freeze_trunk_steps"
                       : t.class_weights != "none" ? "train.class_weights"
                                                   : nullptr;
    WERSA_CHECK(!what, source, ": ", what, ": is a classification setting, but task.type = \"", k.type,
                "\" (expected task.type = \"classify\", or leave it at its default)");
  }
  WERSA_CHECK(t.freeze_trunk_steps <= t.steps, source, ": train.freeze_trunk_steps: ", t.freeze_trunk_steps,
              " is more than train.steps = ", t.steps, " (expected at most train.steps)");
  WERSA_CHECK(c.data.val_fraction + c.data.test_fraction < 1, source,
              ": data.test_fraction: ", num(c.data.val_fraction), " + ", num(c.data.test_fraction),
              " leaves nothing to train on (expected data.val_fraction + data.test_fraction < 1)");
}

void require_training_data(const Config& c, const std::string& source) {
  WERSA_CHECK(!c.data.train.empty(), source,
              ": data.train: is empty (expected the training data file, e.g. --set data.train=FILE)");
}

json config_to_json(const Config& c) {
  json out = json::object();
  JsonWriter w{out};
  visit_fields(c, w);
  return out;
}

json model_identity(const ModelConfig& m) {
  Config c;
  c.model = m;
  json all = config_to_json(c);
  return json{{"model", all["model"]}, {"task", all["task"]}};
}

std::string config_help() {
  Config defaults;
  HelpWriter h;
  visit_fields(defaults, h);
  std::vector<size_t> width(4, 0);
  for (const auto& row : h.rows)
    for (size_t i = 0; i < 4; ++i) width[i] = std::max(width[i], row[i].size());
  std::string out;
  for (const auto& row : h.rows) {
    for (size_t i = 0; i < 4; ++i) out += row[i] + std::string(width[i] - row[i].size() + 2, ' ');
    out += row[4] + "\n";
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, AttentionKind k) { return os << attention_kind_name(k); }

AttentionKind attention_kind_from_name(const std::string& name) {
  AttentionKind k{};
  const std::string problem = convert(json(name), Kinds{}, k);
  WERSA_CHECK(problem.empty(), "attention type: ", problem);
  return k;
}

int config_head_dim(const ModelConfig& m) { return m.dim / m.heads; }

int config_gate_dim(const ModelConfig& m) {
  return m.attention.gate_dim > 0 ? m.attention.gate_dim : std::max(1, m.dim / 4);
}

}  // namespace wersa

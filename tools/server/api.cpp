// Parsing and checking of wersa-server's request bodies and the JSON of its answers (api.h).
#include "api.h"

#include <algorithm>
#include <cmath>

#include "wersa/common/error.h"
#include "wersa/common/json.h"

namespace wersa::server {

using nlohmann::json;

namespace {

ApiError bad(const std::string& param, const std::string& what) {
  return ApiError(400, param + ": " + what, param);
}

json parse_body(std::string_view body) {
  json j;
  try {
    j = parse_json(body, "request body");
  } catch (const Error& e) {
    throw ApiError(400, std::string("the body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, "the body must be a JSON object, got " + json_brief(j));
  return j;
}

// j[key] when present and not null.
const json* field(const json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

int64_t get_int(const json& v, const char* key, int64_t lo, int64_t hi) {
  if (!v.is_number_integer() &&
      !(v.is_number_float() && std::isfinite(v.get<double>()) &&
        v.get<double>() == std::floor(v.get<double>()) && std::fabs(v.get<double>()) < 9e15))
    throw bad(key, "expected an integer, got " + json_brief(v));
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
    throw bad(key, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                       json_brief(v));
  const int64_t x = v.is_number_float() ? int64_t(v.get<double>()) : v.get<int64_t>();
  if (x < lo || x > hi)
    throw bad(key, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                       std::to_string(x));
  return x;
}

double get_number(const json& v, const char* key, double lo, double hi, bool lo_open) {
  if (!v.is_number()) throw bad(key, "expected a number, got " + json_brief(v));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi || (lo_open && x == lo))
    throw bad(key, std::string("expected a number in ") + (lo_open ? "(" : "[") + json(lo).dump() + ", " +
                       json(hi).dump() + "], got " + json_brief(v));
  return x;
}

bool get_bool(const json& v, const char* key) {
  if (!v.is_boolean()) throw bad(key, "expected true or false, got " + json_brief(v));
  return v.get<bool>();
}

std::vector<int32_t> get_ids(const json& v, const char* key, const Limits& lim) {
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const json& t = v[i];
    if (!t.is_number_integer())
      throw bad(key, "element " + std::to_string(i) + " is not a token id: " + json_brief(t));
    if (t.is_number_unsigned() ? t.get<uint64_t>() >= uint64_t(lim.vocab)
                               : (t.get<int64_t>() < 0 || t.get<int64_t>() >= lim.vocab))
      throw bad(key, "token id " + json_brief(t) + " (element " + std::to_string(i) +
                         ") is outside the vocabulary [0, " + std::to_string(lim.vocab) + ")");
    ids.push_back(int32_t(t.get<int64_t>()));
  }
  return ids;
}

}  // namespace

std::string error_body(const ApiError& e) {
  json err = {{"message", e.what()}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return dump(json{{"error", err}});
}

CompletionRequest parse_completion(std::string_view body, const Limits& lim) {
  const json j = parse_body(body);
  CompletionRequest r;
  const json* p = field(j, "prompt");
  if (!p) throw bad("prompt", "missing: give a string or an array of token ids");
  if (p->is_string()) {
    r.prompt_text = p->get<std::string>();
  } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
    r.prompt_text = (*p)[0].get<std::string>();  // a batch of one prompt
  } else if (p->is_array()) {
    if (p->empty()) throw bad("prompt", "an empty array: give at least one token id");
    if ((*p)[0].is_string() || (*p)[0].is_array())
      throw bad("prompt", "a batch of several prompts is not supported: send one request per prompt");
    r.prompt_is_text = false;
    r.prompt_ids = get_ids(*p, "prompt", lim);
  } else {
    throw bad("prompt", "expected a string or an array of token ids, got " + json_brief(*p));
  }
  if (!r.prompt_is_text && int64_t(r.prompt_ids.size()) > lim.max_prompt)
    throw bad("prompt", std::to_string(r.prompt_ids.size()) + " tokens, more than the server's limit of " +
                            std::to_string(lim.max_prompt) + " (--max-prompt)");
  if (const json* v = field(j, "max_tokens")) r.max_tokens = get_int(*v, "max_tokens", 1, lim.max_tokens);
  r.max_tokens = std::min(r.max_tokens, lim.max_tokens);
  if (const json* v = field(j, "temperature")) r.temperature = get_number(*v, "temperature", 0, 2, false);
  if (const json* v = field(j, "top_p")) r.top_p = get_number(*v, "top_p", 0, 1, true);
  if (const json* v = field(j, "top_k")) r.top_k = int(get_int(*v, "top_k", 0, 1 << 30));
  if (const json* v = field(j, "seed")) {
    r.has_seed = true;
    r.seed = uint64_t(get_int(*v, "seed", INT64_MIN, INT64_MAX));
  }
  if (const json* v = field(j, "stop")) {
    if (v->is_string()) {
      r.stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      if (v->size() > 4) throw bad("stop", "at most 4 stop strings, got " + std::to_string(v->size()));
      for (const json& s : *v) {
        if (!s.is_string()) throw bad("stop", "expected strings, got " + json_brief(s));
        r.stop.push_back(s.get<std::string>());
      }
    } else {
      throw bad("stop", "expected a string or an array of strings, got " + json_brief(*v));
    }
    for (const std::string& s : r.stop)
      if (s.empty()) throw bad("stop", "a stop string is empty");
  }
  if (const json* v = field(j, "stream")) r.stream = get_bool(*v, "stream");
  if (const json* v = field(j, "echo")) r.echo = get_bool(*v, "echo");
  if (const json* v = field(j, "return_tokens")) r.return_tokens = get_bool(*v, "return_tokens");
  if (const json* v = field(j, "ignore_eos")) r.ignore_eos = get_bool(*v, "ignore_eos");
  if (const json* v = field(j, "n"))
    if (get_int(*v, "n", 1, 1 << 30) != 1) throw bad("n", "only n = 1 is supported");
  if (const json* v = field(j, "best_of"))
    if (get_int(*v, "best_of", 1, 1 << 30) != 1) throw bad("best_of", "only best_of = 1 is supported");
  if (const json* v = field(j, "logprobs")) r.logprobs = int(get_int(*v, "logprobs", 0, 20));
  if (r.logprobs >= 0 && r.echo && r.stream)
    throw bad("echo", "with logprobs (the prompt's log-probabilities) only without stream");
  if (r.echo && !r.prompt_is_text) throw bad("echo", "only supported with a text prompt");
  return r;
}

TokenizeRequest parse_tokenize(std::string_view body) {
  const json j = parse_body(body);
  TokenizeRequest r;
  const json* c = field(j, "content");
  const char* key = "content";
  if (!c) c = field(j, "text"), key = "text";
  if (!c) throw bad("content", "missing: give the text to tokenize");
  if (!c->is_string()) throw bad(key, "expected a string, got " + json_brief(*c));
  r.text = c->get<std::string>();
  if (const json* v = field(j, "add_special")) r.add_special = get_bool(*v, "add_special");
  return r;
}

std::vector<int32_t> parse_detokenize(std::string_view body, const Limits& lim) {
  const json j = parse_body(body);
  const json* t = field(j, "tokens");
  if (!t) throw bad("tokens", "missing: give an array of token ids");
  if (!t->is_array()) throw bad("tokens", "expected an array of token ids, got " + json_brief(*t));
  return get_ids(*t, "tokens", lim);
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

size_t utf8_complete_prefix(std::string_view s) {
  // Look back at most 3 bytes for the lead byte of an unfinished character.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const unsigned char c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: keep looking for its lead
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

StopScan scan_stops(const std::string& text, size_t old, const std::vector<std::string>& stops) {
  StopScan r;
  for (const std::string& stop : stops) {
    const size_t from = old >= stop.size() ? old - stop.size() + 1 : 0;
    r.cut = std::min(r.cut, text.find(stop, from));
  }
  if (r.cut != std::string::npos) {
    r.stable = r.cut;
    return r;
  }
  size_t hold = 0;
  for (const std::string& stop : stops)
    for (size_t k = std::min(stop.size() - 1, text.size()); k > hold; --k)
      if (text.compare(text.size() - k, k, stop, 0, k) == 0) {
        hold = k;
        break;
      }
  r.stable = utf8_complete_prefix(std::string_view(text).substr(0, text.size() - hold));
  return r;
}

TokenLogprobs token_logprobs(const float* logits, int64_t n, int32_t token, int k) {
  double mx = -HUGE_VAL;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, double(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(double(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  TokenLogprobs r;
  r.logprob = token >= 0 && token < n ? float(double(logits[token]) - lse) : -INFINITY;
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t(i);
  const size_t kk = std::min(size_t(std::max(k, 0)), size_t(n));
  std::partial_sort(ids.begin(), ids.begin() + long(kk), ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (size_t i = 0; i < kk; ++i) r.top.emplace_back(ids[i], float(double(logits[ids[i]]) - lse));
  return r;
}

json logprobs_json(const std::vector<LogprobEntry>& e, size_t from, size_t to) {
  json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (size_t i = from; i < to && i < e.size(); ++i) {
    tokens.push_back(e[i].token);
    lps.push_back(e[i].logprob);
    json top = json::object();
    for (const auto& [text, lp] : e[i].top) {
      // Keys as sent (invalid UTF-8 as U+FFFD); two tokens of one key: the likelier (the first).
      const std::string key = json::parse(dump(json(text))).get<std::string>();
      if (!top.contains(key)) top[key] = lp;
    }
    tops.push_back(top);
    offsets.push_back(e[i].offset);
  }
  return json{{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json completion_json(const std::string& id, int64_t created, const std::string& model,
                     const std::string& text, const std::string& finish_reason, const Usage* usage,
                     const std::vector<int32_t>* tokens, const json* logprobs) {
  json choice = {{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
  if (logprobs) choice["logprobs"] = *logprobs;
  if (!finish_reason.empty()) choice["finish_reason"] = finish_reason;
  if (tokens) choice["tokens"] = *tokens;
  json j = {{"id", id},
            {"object", "text_completion"},
            {"created", created},
            {"model", model},
            {"choices", json::array({choice})}};
  if (usage)
    j["usage"] = {{"prompt_tokens", usage->prompt_tokens},
                  {"completion_tokens", usage->completion_tokens},
                  {"total_tokens", usage->prompt_tokens + usage->completion_tokens},
                  {"prompt_tokens_details", {{"cached_tokens", usage->cached_tokens}}}};
  return j;
}

}  // namespace wersa::server

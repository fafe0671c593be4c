// wersa-server's HTTP API without HTTP: the request bodies of POST /v1/completions, /tokenize and
// /detokenize parsed and checked into structs, OpenAI's error object, and the JSON of responses
// and stream chunks. Nothing here touches the model or a socket, so a fuzz target or a unit test
// can call it with any bytes: every problem with a request is an ApiError (status, one-line
// message naming the parameter), nothing else is thrown for any input.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace wersa::server {

// A request the server refuses: HTTP status, OpenAI error type ("invalid_request_error", ...),
// the parameter at fault ("" = none) and a machine-readable code ("" = none).
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = "",
           std::string type = "invalid_request_error", std::string code = "")
      : std::runtime_error(message),
        status(status),
        param(std::move(param)),
        type(std::move(type)),
        code(std::move(code)) {}
  int status;
  std::string param, type, code;
};

// {"error": {"message", "type", "param", "code"}} (param and code null when empty).
std::string error_body(const ApiError& e);

// The server's per-request limits (its flags).
struct Limits {
  int64_t max_tokens = 512;   // ceiling of max_tokens
  int64_t max_prompt = 8192;  // prompt tokens at most
  int64_t vocab = 0;          // token ids must be in [0, vocab)
};

struct CompletionRequest {
  bool prompt_is_text = true;
  std::string prompt_text;          // prompt_is_text
  std::vector<int32_t> prompt_ids;  // otherwise: the ids as given (no EOS prefix)
  int64_t max_tokens = 16;          // OpenAI's default
  double temperature = 1.0, top_p = 1.0;
  int top_k = 0;  // 0 = off
  bool has_seed = false;
  uint64_t seed = 0;
  std::vector<std::string> stop;  // up to 4 non-empty strings
  bool stream = false, echo = false;
  bool return_tokens = false;  // an extension (as llama-server's): the generated ids in "tokens"
  bool ignore_eos = false;     // an extension (llama-server's, vLLM's): EOS does not end it (benchmarks)
  int logprobs = -1;           // -1: off; k >= 0: each token's log-probability and the k likeliest
};

// Parses and checks a /v1/completions body (ApiError 400 naming the parameter; unknown keys are
// ignored as OpenAI's server ignores what it does not know).
CompletionRequest parse_completion(std::string_view body, const Limits& lim);

// /tokenize: {"content": TEXT} (llama-server's field; "text" also accepted) and whether EOS is
// prepended ("add_special", default false). /detokenize: {"tokens": [ids]}.
struct TokenizeRequest {
  std::string text;
  bool add_special = false;
};
TokenizeRequest parse_tokenize(std::string_view body);
std::vector<int32_t> parse_detokenize(std::string_view body, const Limits& lim);

// A JSON document as text; invalid UTF-8 (a byte token's half of a character) is replaced by
// U+FFFD instead of failing.
std::string dump(const nlohmann::json& j);

// The number of leading bytes of s that end on a UTF-8 character boundary: a stream sends those
// and keeps the rest until the character is complete.
size_t utf8_complete_prefix(std::string_view s);

// Stop strings over a growing text: after `text` grew from `old` bytes, where the earliest stop
// string now starts (cut; npos: none) and how many leading bytes a stream may send (stable: all
// of them up to a cut; otherwise none of a tail that could still become a stop string, nor an
// unfinished UTF-8 character).
struct StopScan {
  size_t cut = std::string::npos;
  size_t stable = 0;
};
StopScan scan_stops(const std::string& text, size_t old, const std::vector<std::string>& stops);

// The body (whole or one stream chunk) of a completion: {"id", "object": "text_completion",
// "created", "model", "choices": [{"text", "index": 0, "logprobs", "finish_reason"}]} with
// "usage" when given (finish_reason null when empty; logprobs null unless given).
// logprobs: a generated token's log-probability under the model (log-softmax of its logits, before
// temperature and truncation) and the k likeliest tokens' (ids, descending; ties: lower id first).
struct TokenLogprobs {
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;
};
TokenLogprobs token_logprobs(const float* logits, int64_t n, int32_t token, int k);

// One generated token's entry of OpenAI's completions "logprobs" object: its text, where that
// text starts in the completion (bytes), its log-probability and the top alternatives by text.
struct LogprobEntry {
  std::string token;
  size_t offset = 0;
  float logprob = 0;
  std::vector<std::pair<std::string, float>> top;
};
// {"tokens", "token_logprobs", "top_logprobs", "text_offset"} of entries [from, to).
nlohmann::json logprobs_json(const std::vector<LogprobEntry>& e, size_t from, size_t to);

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
};
nlohmann::json completion_json(const std::string& id, int64_t created, const std::string& model,
                               const std::string& text, const std::string& finish_reason, const Usage* usage,
                               const std::vector<int32_t>* tokens = nullptr,
                               const nlohmann::json* logprobs = nullptr);

}  // namespace wersa::server

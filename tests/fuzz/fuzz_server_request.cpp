// Fuzz target: wersa-server's request bodies (tools/server/api.h). The first byte picks the
// endpoint (/v1/completions, /tokenize, /detokenize), the rest is the body.
// Expected: a request within its documented ranges, or an ApiError with status 400, a one-line
// message and an error object that is valid JSON. A finding: any other exception, a crash, a
// sanitizer report, an accepted value outside its range, a response body that is not JSON.
// libfuzzer-options: -max_len=4096
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "server/api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wersa::server;
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  Limits lim;
  lim.max_tokens = 100;
  lim.max_prompt = 50;
  lim.vocab = 259;
  try {
    switch (data[0] % 3) {
      case 0: {
        const CompletionRequest r = parse_completion(body, lim);
        bool ok =
            r.max_tokens >= 1 && r.max_tokens <= lim.max_tokens && r.temperature >= 0 && r.temperature <= 2 &&
            r.top_p > 0 && r.top_p <= 1 && r.top_k >= 0 && r.stop.size() <= 4 &&
            (r.prompt_is_text || (!r.prompt_ids.empty() && int64_t(r.prompt_ids.size()) <= lim.max_prompt));
        for (const std::string& s : r.stop) ok = ok && !s.empty();
        for (int32_t t : r.prompt_ids) ok = ok && t >= 0 && t < lim.vocab;
        if (!ok) wersa::fuzz::property_failed("accepted a completion request outside its ranges");
        // Whatever bytes the prompt holds, the answer is JSON.
        const Usage u{1, 2, 0};
        const std::string out = dump(completion_json("cmpl-1", 0, "m", r.prompt_text, "stop", &u));
        if (!nlohmann::json::parse(out).is_object())
          wersa::fuzz::property_failed("a response that is not an object");
        (void)scan_stops(r.prompt_text, r.prompt_text.size() / 2, r.stop);
        break;
      }
      case 1:
        (void)parse_tokenize(body);
        break;
      default:
        for (int32_t t : parse_detokenize(body, lim))
          if (t < 0 || t >= lim.vocab)
            wersa::fuzz::property_failed("accepted a token id outside the vocabulary");
    }
  } catch (const ApiError& e) {
    if (e.status != 400) wersa::fuzz::property_failed("a request error with a status other than 400");
    if (std::string(e.what()).find('\n') != std::string::npos)
      wersa::fuzz::property_failed("multi-line error");
    const nlohmann::json j = nlohmann::json::parse(error_body(e));
    if (!j["error"]["message"].is_string()) wersa::fuzz::property_failed("an error object without a message");
  }
  return 0;
}

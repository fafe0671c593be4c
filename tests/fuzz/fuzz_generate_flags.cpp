// Fuzz target: the command line of wersa-generate. The input is split at NUL bytes and newlines
// into at most 32 arguments after the program name and parsed by parse_generate_flags (CLI11,
// the range checks, the file checks), without loading a model.
// Expected: flags or a wersa::Error (a one-line UsageError). A finding: any other exception, a
// crash, an assert, a sanitizer report, a message of more than one line, or accepted flags
// outside their documented ranges.
// libfuzzer-options: -max_len=512
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "generate_flags.h"
#include "wersa/common/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args{"wersa-generate"};
  std::string cur;
  for (size_t i = 0; i < size && args.size() <= 32; ++i) {
    const char c = char(data[i]);
    if (c == '\0' || c == '\n') {
      args.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (args.size() <= 32) args.push_back(cur);
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  wersa::GenerateFlags f;
  try {
    f = wersa::parse_generate_flags(int(argv.size()), argv.data());
  } catch (const wersa::Error& e) {
    if (std::string(e.what()).find('\n') != std::string::npos)
      wersa::fuzz::property_failed("multi-line error");
    return 0;
  }
  if (!f.help.empty()) return 0;
  const wersa::SamplerOptions& s = f.sampler;
  const bool ok = f.n_predict >= -1 && f.ctx >= 0 && f.batch >= 1 && f.seed >= -1 && f.threads >= 0 &&
                  s.temp >= 0 && s.top_k >= 0 && s.top_p > 0 && s.top_p <= 1 && s.min_p >= 0 &&
                  s.min_p <= 1 && s.repeat_penalty > 0 && s.repeat_last_n >= -1 && !f.model_dir.empty();
  if (!ok) wersa::fuzz::property_failed("accepted flags outside their ranges");
  return 0;
}

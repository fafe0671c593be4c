// The command line of wersa-generate, parsed and checked without loading a model: every flag's
// value is range-checked here, so the tool's body only sees valid settings.
//
//   const wersa::GenerateFlags f = wersa::parse_generate_flags(argc, argv);
//   if (!f.help.empty()) { print f.help; exit 0; }
//
// A bad command line throws wersa::UsageError (a wersa::Error) with a one-line message
// "wersa-generate: FLAG: ... (see --help)"; nothing else is thrown for any argv (a fuzz target
// can treat every other exception as a bug). argv[0] is the program name and is not read.
#pragma once
#include <cstdint>
#include <string>

#include "wersa/model/sampler.h"

namespace wersa {

struct GenerateFlags {
  std::string help;  // non-empty: --help was given; print it and exit 0 (the rest is unset)
  std::string model_dir, prompt, prompt_file, save_state, load_state;
  std::string weights = "f32";  // --weights: f32 | bf16
  std::string device = "cpu";   // --device: cpu | cuda
  bool have_prompt = false;     // -p or -f was given (an empty -p '' counts)
  int64_t n_predict = 128, ctx = 0, batch = 512, seed = -1;
  int threads = 0;
  bool interactive = false, ignore_eos = false, no_display_prompt = false, no_eos_prefix = false;
  SamplerOptions sampler;  // seed unset: -s (or a random one) is applied by the tool
};

GenerateFlags parse_generate_flags(int argc, const char* const* argv);

}  // namespace wersa

// Fuzz target: the run-config parser. Feeds the input as a config file to config_from_file (JSON
// parsing, the duplicate-key check, key checks, per-field ranges, cross-field rules).
// Expected: a valid Config or a wersa::Error. A finding: any other exception, a crash, an
// assert, a sanitizer report, or an accepted config whose saved form (config_to_json) does not
// load back to the same config.
// libfuzzer-options: -max_len=4096
#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "wersa/common/error.h"
#include "wersa/model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = wersa::fuzz::write_temp("config.json", data, size);
  wersa::Config c;
  try {
    c = wersa::config_from_file(path);
  } catch (const wersa::Error&) {
    return 0;  // rejected with a message: the expected outcome for bad input
  }
  const nlohmann::json saved = wersa::config_to_json(c);
  wersa::Config again;
  try {
    again = wersa::config_from_json(saved, "saved config");
  } catch (const wersa::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    wersa::fuzz::property_failed("an accepted config's saved form is rejected");
  }
  if (wersa::config_to_json(again) != saved) wersa::fuzz::property_failed("saved config does not round-trip");
  return 0;
}

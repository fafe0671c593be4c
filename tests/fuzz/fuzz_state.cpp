// Fuzz target: a checkpoint's state.json. Feeds the input as a file to the JSON reader of the
// engine (nesting limit, duplicate keys, NUL and trailing bytes) and then to state_from_json
// (types, ranges, unknown and missing keys), as --resume does.
// Expected: a valid state or a wersa::Error. A finding: any other exception, a crash, an assert,
// a sanitizer report, or an accepted state whose saved form does not load back to the same state.
// libfuzzer-options: -max_len=2048
#include "fuzz_util.h"
#include "wersa/common/error.h"
#include "wersa/common/json.h"
#include "wersa/io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = wersa::fuzz::write_temp("state.json", data, size);
  wersa::io::CheckpointState s;
  try {
    s = wersa::io::state_from_json(wersa::read_json_file(path), path);
  } catch (const wersa::Error&) {
    return 0;  // rejected with a message
  }
  if (s.step < 0 || s.train_pos < 0 || s.tokens_seen < 0)
    wersa::fuzz::property_failed("negative field accepted");
  const wersa::io::CheckpointState again = wersa::io::state_from_json(wersa::io::state_to_json(s), "saved");
  if (again.step != s.step || again.train_pos != s.train_pos || again.seed != s.seed ||
      again.tokens_seen != s.tokens_seen)
    wersa::fuzz::property_failed("saved state does not round-trip");
  return 0;
}

// Fuzz target: the tokenizer loader. Feeds the input as a SentencePiece model file to
// load_tokenizer (our protobuf check of the model, then libsentencepiece), and uses an accepted
// model: encodes a fixed text (spaces, newlines, non-ASCII), decodes the ids, and asks for every
// piece's bytes.
// Expected: a wersa::Error for a bad model. A finding: any other exception, a crash, an assert
// (e.g. an encode that fails on a model the loader accepted), a sanitizer report, or encoded
// ids outside the vocabulary.
// libfuzzer-options: -max_len=16384
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "wersa/common/error.h"
#include "wersa/data/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = wersa::fuzz::write_temp("tokenizer.model", data, size);
  std::unique_ptr<wersa::data::Tokenizer> tok;
  try {
    tok = wersa::data::load_tokenizer(path);
  } catch (const wersa::Error&) {
    return 0;
  }
  static const std::string text =
      "The cat  sat\non the mat.\n\n  Caf\xc3\xa9 \xe2\x96\x81 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 1234 \t "
      "end";
  const std::vector<int32_t> ids = tok->encode(text);
  for (int32_t id : ids)
    if (id < 0 || id >= tok->vocab_size()) wersa::fuzz::property_failed("encoded id outside the vocabulary");
  try {
    (void)tok->decode(ids);
  } catch (const wersa::Error&) {
  }
  for (int64_t id = 0; id < tok->vocab_size(); ++id) (void)tok->piece_bytes(static_cast<int32_t>(id));
  (void)tok->fingerprint();
  return 0;
}

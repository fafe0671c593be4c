// Fuzz target: the token-shard reader. Feeds the input as a shard file (llm.c format) to
// read_shard_header, to ShardDataset with a vocabulary that every uint16 id fits and with a small
// one (the per-token check), and to open_dataset; an accepted dataset is read whole and compared
// with the tokens decoded here from the raw bytes.
// Expected: a wersa::Error for a bad shard. A finding: any other exception, a crash, an assert,
// a sanitizer report, tokens that differ from the file's, or a dataset that accepts an id not
// below its vocabulary.
// libfuzzer-options: -max_len=4096
#include <memory>
#include <vector>

#include "fuzz_util.h"
#include "wersa/common/error.h"
#include "wersa/data/shard.h"
#include "wersa/data/tokenizer.h"

namespace {

uint32_t le(const uint8_t* p, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint32_t(p[i]) << (8 * i);
  return v;
}

void check_dataset(const wersa::data::TokenDataset& ds, const wersa::data::ShardInfo& info,
                   const uint8_t* data, int64_t vocab) {
  if (ds.size() != info.tokens) wersa::fuzz::property_failed("dataset size differs from the header");
  std::vector<int32_t> got(static_cast<size_t>(ds.size()));
  ds.read(0, ds.size(), got.data());
  const uint8_t* tokens = data + wersa::data::kShardHeaderBytes;
  for (int64_t i = 0; i < ds.size(); ++i) {
    const uint32_t want = le(tokens + i * info.token_bytes, info.token_bytes);
    if (static_cast<uint32_t>(got[i]) != want) wersa::fuzz::property_failed("token differs from the file");
    if (want >= static_cast<uint64_t>(vocab)) wersa::fuzz::property_failed("token id not below vocab_size");
  }
  (void)ds.describe();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = wersa::fuzz::write_temp("input.bin", data, size);
  (void)wersa::data::looks_like_shard(path);
  wersa::data::ShardInfo info;
  try {
    info = wersa::data::read_shard_header(path);
  } catch (const wersa::Error&) {
    return 0;
  }
  for (const int64_t vocab : {int64_t(65536), int64_t(300)}) {
    try {
      const wersa::data::ShardDataset ds(path, vocab);
      check_dataset(ds, info, data, vocab);
    } catch (const wersa::Error&) {
    }
  }
  try {
    const auto tok = wersa::data::make_byte_tokenizer();
    const auto ds = wersa::data::open_dataset(path, *tok, 259);
    check_dataset(*ds, info, data, 259);
  } catch (const wersa::Error&) {
  }
  return 0;
}

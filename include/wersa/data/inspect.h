// Looking at tokenizers and token data: streaming decode of a token range, tokenizer statistics
// on sample text, and shard statistics (what `wersa-tokenize decode` and `stats` print).
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "wersa/data/corpus.h"
#include "wersa/data/shard.h"
#include "wersa/data/tokenizer.h"

namespace wersa::data {

// Writes the bytes of tokens [start, start+count) of `data` to `out` (count < 0: to the end),
// piece by piece: EOS becomes `eos_text`, UNK becomes " \u2047 " (as SentencePiece decodes it),
// other specials nothing. Returns the number of tokens written.
int64_t decode_to(const TokenDataset& data, const Tokenizer& tok, int64_t start, int64_t count,
                  const std::string& eos_text, FILE* out);

struct TextTokenStats {
  int64_t documents = 0, bytes = 0, chars = 0, words = 0, tokens = 0;
  int64_t byte_fallback_tokens =
      0;  // tokens that are a lone non-ASCII byte (characters outside the vocabulary)
  int64_t unk_tokens = 0;
  double tokens_per_word() const { return words ? double(tokens) / double(words) : 0; }
  double bytes_per_token() const { return tokens ? double(bytes) / double(tokens) : 0; }
};
// Encodes up to max_bytes of text from the corpus (whole documents, the last one cut at a
// newline) and counts. Words are runs of non-whitespace.
TextTokenStats measure_text(const Tokenizer& tok, const std::vector<std::string>& inputs, int64_t max_bytes,
                            const CorpusOptions& opt = {});

struct ShardStats {
  std::vector<ShardInfo> shards;
  int64_t tokens = 0, bytes = 0;                 // bytes on disk
  int64_t eos = 0;                               // EOS tokens = documents (0 without an EOS id)
  int64_t distinct_ids = 0;                      // vocabulary ids that occur
  int32_t min_id = 0, max_id = 0;                // smallest and largest id that occurs
  std::vector<std::pair<int32_t, int64_t>> top;  // most frequent ids (up to 10) with counts
};
// Counts, id range and the most frequent ids of shards of any vocabulary (no tokenizer needed:
// foreign llm.c shards, e.g. GPT-2's, work too); tokens equal to eos_id (when >= 0) are counted
// as EOS. The ids were checked against a vocabulary size when `data` was opened.
ShardStats shard_stats(const ShardDataset& data, int32_t eos_id = -1);
// The same, with the tokenizer's EOS id; every id must be in the tokenizer's vocabulary (error
// otherwise).
ShardStats shard_stats(const ShardDataset& data, const Tokenizer& tok);

}  // namespace wersa::data

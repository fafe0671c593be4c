// Corpus -> token shards, in one streaming pass (what `wersa-tokenize encode` runs).
//
// Documents are read by one thread, encoded by `threads` workers and written in corpus order by
// the calling thread, so the output does not depend on the thread count or on scheduling:
// encoding the same input twice gives identical shards. Memory is bounded by a fixed number
// of batches in flight (each ~1 MB of text) plus one segment per document (see corpus.h).
//
// Output in out_dir: train_000000.bin, ... and val_000000.bin, ... (llm.c shards, uint16 when the
// vocabulary fits, else uint32; each shard holds shard_tokens tokens except the last of a split;
// documents may continue into the next shard), tokenizer.model (a copy of the model, so the
// directory is self-contained; absent for the byte tokenizer) and dataset.json (sources,
// tokenizer fingerprint, counts, split), written last.
//
// Every document is followed by EOS. The validation split takes whole documents: a document goes
// to validation when that brings the validation share of tokens closer to val_fraction, i.e.
// when val + n/2 < val_fraction * (total + n) for a document of n tokens (deterministic,
// streaming, spread over the corpus). Documents long enough to be read in several segments
// always go to train.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "wersa/data/corpus.h"
#include "wersa/data/shard.h"
#include "wersa/data/tokenizer.h"

namespace wersa::data {

struct EncodeProgress {
  int64_t input_bytes = 0, input_total = 0;  // on-disk bytes of the corpus files read / in all
  int64_t text_bytes = 0, tokens = 0, documents = 0;
  double seconds = 0;
};

struct EncodeOptions {
  double val_fraction = 0.01;
  int64_t shard_tokens = 100000000;
  int threads = 0;         // encoding workers; 0 = all cores
  bool overwrite = false;  // replace shards / dataset.json already in out_dir
  CorpusOptions corpus;
  std::function<void(const EncodeProgress&)> progress;  // called from the calling thread
};

struct SplitSummary {
  int64_t documents = 0, tokens = 0;
  std::vector<ShardInfo> shards;
};

struct EncodeSummary {
  SplitSummary train, val;
  CorpusStats corpus;
  int64_t input_bytes = 0;
  double seconds = 0;
  std::string dataset_json;
};

// tokenizer_path: the SentencePiece model file `tok` was loaded from ("" for the byte tokenizer);
// it is copied to out_dir/tokenizer.model after checking that its hash is tok.fingerprint().
EncodeSummary encode_corpus(const std::vector<std::string>& inputs, const Tokenizer& tok,
                            const std::string& tokenizer_path, const std::string& out_dir,
                            const EncodeOptions& opt);

}  // namespace wersa::data

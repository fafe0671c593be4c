// Training a SentencePiece tokenizer in process (libsentencepiece_train) from a corpus.
//
// The model is made for exact round trips and fixed special ids:
//   UNK 0 "<unk>", BOS 1 "<s>", EOS 2 "</s>", PAD 3 "<pad>", then "\n" as an atomic
//   user-defined piece (id 4), then (byte fallback) the 256 byte pieces <0x00>..<0xFF>, then the
//   learned pieces. Normalisation is the identity, spaces are kept as they are (no dummy prefix,
//   no collapsing), and characters outside the vocabulary fall back to bytes, so
//   decode(encode(text)) == text for any valid UTF-8 text without U+2581 (SentencePiece's own
//   space marker, which decodes as a space).
// Training sentences are the lines of the corpus documents (blank lines dropped, lines longer
// than max_sentence_bytes cut at a space); when sample_sentences > 0 a seeded uniform sample of
// that many lines is drawn from the whole corpus (reservoir sampling, seeded: the model depends
// only on the corpus, the options and the seed).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "wersa/data/corpus.h"

namespace wersa::data {

struct SentencePieceTrainOptions {
  int64_t vocab_size = 8000;
  std::string model_type = "bpe";      // "bpe" or "unigram"
  int64_t sample_sentences = 1000000;  // 0 = every line
  double character_coverage = 0.9995;
  bool byte_fallback = true;
  uint32_t seed = 1;
  int threads = 0;  // 0 = all cores
  int64_t max_sentence_bytes = 4096;
  bool verbose = false;  // SentencePiece's own log lines on stderr
  CorpusOptions corpus;
  // Called while the corpus is read: (on-disk bytes read, on-disk bytes total, lines so far).
  std::function<void(int64_t, int64_t, int64_t)> progress;
  // Called once the corpus is read, before SentencePiece trains (which reports no progress).
  std::function<void(const std::string&)> on_training;
};

struct SentencePieceTrainResult {
  std::string model_path, meta_path;
  std::string fingerprint;
  int64_t vocab_size = 0;
  int64_t lines_read = 0;  // lines in the corpus
  int64_t lines_used = 0;  // lines the model was trained on (the sample)
  CorpusStats corpus;
  double seconds = 0;
};

// Trains on `inputs` (files / directories, as CorpusReader reads them) and writes the model
// atomically to out_path; beside it, <out_path without .model>.json records the options, the
// special ids, the sources and the fingerprint. Parent directories are created.
SentencePieceTrainResult train_sentencepiece(const std::vector<std::string>& inputs,
                                             const SentencePieceTrainOptions& opt,
                                             const std::string& out_path);

// Writes bytes to path atomically (path.tmp, fsync, rename), creating parent directories.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace wersa::data

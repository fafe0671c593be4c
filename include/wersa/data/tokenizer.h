// Tokenizers: text <-> token ids. Two kinds:
//  - "byte": zero setup. ids 0..255 are the bytes, 256 = BOS, 257 = EOS, 258 = PAD, no UNK;
//    vocab_size 259. Every byte string round-trips.
//  - "sentencepiece": a SentencePiece model file (BPE or unigram), e.g. one trained by
//    `wersa-tokenize train` (see sentencepiece_train.h), whose special ids are fixed at
//    UNK 0, BOS 1, EOS 2, PAD 3 and whose text round-trips exactly (identity normalisation,
//    no dummy prefix, byte fallback). Models from elsewhere load too, with their own ids.
// encode() never adds BOS/EOS; callers place them. All methods are const and thread-safe.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace wersa::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;  // no BOS/EOS added
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // The raw bytes this id stands for ("" for specials), for streaming output. For byte-fallback
  // pieces this is a single byte, so a stream of pieces may split a UTF-8 character.
  virtual std::string piece_bytes(int32_t id) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual int32_t pad_id() const = 0;
  virtual int32_t unk_id() const = 0;    // -1 if none
  virtual std::string kind() const = 0;  // "byte" or "sentencepiece"
  // Stable hash of the model (hex): the SHA-256 of the model file's bytes (what `sha256sum`
  // prints), or "byte-v1" for the byte tokenizer.
  virtual std::string fingerprint() const = 0;
};

// Byte level: ids 0..255 = bytes, 256 = BOS, 257 = EOS, 258 = PAD, no UNK; vocab_size 259.
std::unique_ptr<Tokenizer> make_byte_tokenizer();
// wersa::Error naming the file when it is missing, unreadable, or not a valid SentencePiece model.
std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& model_path);
// Same, from the bytes of a model file; `name` is used in error messages.
std::unique_ptr<Tokenizer> load_sentencepiece_from_bytes(const std::string& bytes, const std::string& name);
// "" or "byte" -> bytes, else a SentencePiece model path. A directory (of shards from
// `wersa-tokenize encode`) means its tokenizer.model, or bytes when its dataset.json says so.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec);

}  // namespace wersa::data

// Token shards, in llm.c's format: a header of 256 little-endian int32, then the tokens.
//   header[0] = magic, header[1] = version, header[2] = number of tokens, the rest 0.
//   magic 20240520 version 1: uint16 tokens (llm.c GPT-2 shards);
//   magic 20240801 version 7: uint32 tokens (llm.c Llama-3 shards).
// Writers pick uint16 when every id fits (vocabularies up to 65536), else uint32.
// Datasets address all the shards of a glob, in sorted order, as one concatenated token stream.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "wersa/data/tokenizer.h"

namespace wersa::data {

constexpr int kShardHeaderInts = 256;
constexpr int64_t kShardHeaderBytes = kShardHeaderInts * 4;
constexpr int32_t kShardMagicU16 = 20240520, kShardVersionU16 = 1;
constexpr int32_t kShardMagicU32 = 20240801, kShardVersionU32 = 7;

struct ShardInfo {
  std::string path;
  int64_t tokens = 0;
  int token_bytes = 2;
};

// Bytes per token for a vocabulary: 2 when every id fits in uint16, else 4.
int shard_token_bytes(int64_t vocab_size);

// Validates magic/version and that the file size equals 1024 + tokens*token_bytes (truncated ->
// error naming the file, the expected and the actual sizes).
ShardInfo read_shard_header(const std::string& path);
// True when the file starts with a shard magic (no further validation).
bool looks_like_shard(const std::string& path);

// Writes a whole shard atomically (tmp + rename); token_bytes 2 requires every id < 65536.
void write_shard(const std::string& path, const std::vector<uint32_t>& tokens, int token_bytes);

// Streams a shard of unknown length to disk: tokens are appended, finish() writes the header and
// renames PATH.tmp to PATH. A writer destroyed before finish() removes its temporary file.
class ShardWriter {
 public:
  ShardWriter(const std::string& path, int token_bytes);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;
  void append(const int32_t* ids, int64_t n);  // error for an id that does not fit token_bytes
  int64_t tokens() const { return tokens_; }
  ShardInfo finish();

 private:
  std::string path_, tmp_;
  int token_bytes_;
  FILE* f_ = nullptr;
  int64_t tokens_ = 0;
  std::vector<unsigned char> buf_;
};

// Sorted paths matching a glob pattern; a plain path works too; error "no files match
// 'PATTERN'" when empty.
std::vector<std::string> expand_glob(const std::string& pattern);

// Sequential token access, whatever the storage.
class TokenDataset {
 public:
  virtual ~TokenDataset() = default;
  virtual int64_t size() const = 0;                                   // total tokens
  virtual void read(int64_t pos, int64_t n, int32_t* out) const = 0;  // tokens [pos, pos+n)
  virtual std::string describe() const = 0;                           // one line for logs
};

// All shards of a glob (or DIR/*.bin for a directory), memory-mapped, addressed as one
// concatenated token stream. The constructor validates every header, and every token
// < vocab_size (one parallel pass; the error names the file, the token index and the id).
class ShardDataset : public TokenDataset {
 public:
  ShardDataset(const std::string& glob, int64_t vocab_size);
  ~ShardDataset() override;
  ShardDataset(const ShardDataset&) = delete;
  ShardDataset& operator=(const ShardDataset&) = delete;
  int64_t size() const override { return total_; }
  void read(int64_t pos, int64_t n, int32_t* out) const override;  // asserts bounds
  std::string describe() const override;
  const std::vector<ShardInfo>& shards() const { return shards_; }

 private:
  struct Map {
    const unsigned char* data = nullptr;  // first token
    size_t map_bytes = 0;
    void* base = nullptr;
  };
  std::string spec_;
  std::vector<ShardInfo> shards_;
  std::vector<Map> maps_;
  std::vector<int64_t> starts_;  // first global position of each shard, plus the total
  int64_t total_ = 0;
};

// A whole UTF-8 text file through a tokenizer, as one token stream in memory (for `.txt` training
// data). Invalid UTF-8 is an error naming the file and byte offset. Encoded in parallel in
// pieces cut after newlines; for tokenizers whose pieces never span a newline (the byte
// tokenizer, models from `wersa-tokenize train`) the result equals encoding the file at once.
class TextDataset : public TokenDataset {
 public:
  TextDataset(const std::string& path, const Tokenizer& tok);
  int64_t size() const override { return static_cast<int64_t>(tokens_.size()); }
  void read(int64_t pos, int64_t n, int32_t* out) const override;
  std::string describe() const override;

 private:
  std::string path_, tok_kind_;
  std::vector<int32_t> tokens_;
};

// Opens a data spec: a path ending in .txt (or any existing regular file that is not a shard)
// -> TextDataset through `tok`; otherwise a shard glob or a directory (DIR/*.bin) ->
// ShardDataset. A directory holding both train_*.bin and val_*.bin is refused (ambiguous: name
// the split, e.g. DIR/train_*.bin).
std::unique_ptr<TokenDataset> open_dataset(const std::string& spec, const Tokenizer& tok, int64_t vocab_size);

}  // namespace wersa::data

// Token datasets: memory-mapped shards, tokenized text files, and the spec that picks one.
#include <fcntl.h>
#include <omp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "wersa/common/error.h"
#include "wersa/common/json.h"
#include "wersa/data/corpus.h"
#include "wersa/data/shard.h"

namespace wersa::data {
namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A directory stands for DIR/*.bin, unless it mixes the train and val splits of `encode`.
std::string shard_pattern(const std::string& spec) {
  if (!is_dir(spec)) return spec;
  bool train = false, val = false;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(spec, ec)) {
    const std::string name = e.path().filename().string();
    if (!ends_with(name, ".bin")) continue;
    train |= name.rfind("train_", 0) == 0;
    val |= name.rfind("val_", 0) == 0;
  }
  WERSA_CHECK(!(train && val), "'", spec,
              "' holds both train_*.bin and val_*.bin shards; name one split, e.g. '", spec, "/train_*.bin'");
  return spec + "/*.bin";
}

constexpr int64_t kCheckChunk = int64_t(1) << 20;

}  // namespace

// ---- ShardDataset -------------------------------------------------------------------------------

ShardDataset::ShardDataset(const std::string& glob, int64_t vocab_size) : spec_(glob) {
  WERSA_CHECK(vocab_size > 0 && vocab_size <= (int64_t(1) << 31), "vocab_size ", vocab_size,
              " is out of range for token shards");
  for (const std::string& p : expand_glob(shard_pattern(glob))) shards_.push_back(read_shard_header(p));
  maps_.resize(shards_.size());
  starts_.push_back(0);
  for (size_t i = 0; i < shards_.size(); ++i) {
    const ShardInfo& s = shards_[i];
    if (s.tokens > 0) {
      const int fd = ::open(s.path.c_str(), O_RDONLY);
      WERSA_CHECK(fd >= 0, "cannot open shard '", s.path, "': ", std::strerror(errno));
      const size_t bytes = static_cast<size_t>(kShardHeaderBytes + s.tokens * s.token_bytes);
      void* base = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
      const int err = errno;
      ::close(fd);
      WERSA_CHECK(base != MAP_FAILED, "cannot map shard '", s.path, "': ", std::strerror(err));
      maps_[i] = Map{static_cast<const unsigned char*>(base) + kShardHeaderBytes, bytes, base};
    }
    starts_.push_back(starts_.back() + s.tokens);
  }
  total_ = starts_.back();
  WERSA_CHECK(total_ > 0, "'", glob, "': the shards hold no tokens");

  // Every token < vocab_size: chunks of all shards in parallel; the first bad token (in stream
  // order) is reported, whatever the scheduling.
  struct Chunk {
    size_t shard;
    int64_t begin, end;
  };
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < shards_.size(); ++i) {
    const bool all_fit = shards_[i].token_bytes == 2 && vocab_size >= 65536;
    if (all_fit) continue;
    for (int64_t b = 0; b < shards_[i].tokens; b += kCheckChunk)
      chunks.push_back({i, b, std::min(shards_[i].tokens, b + kCheckChunk)});
  }
  std::vector<int64_t> first_bad(chunks.size(), -1);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < static_cast<int64_t>(chunks.size()); ++c) {
    const Chunk& ch = chunks[c];
    const unsigned char* d = maps_[ch.shard].data;
    if (shards_[ch.shard].token_bytes == 2) {
      const auto lim = static_cast<uint32_t>(vocab_size);
      for (int64_t t = ch.begin; t < ch.end; ++t) {
        const uint32_t v = uint32_t(d[2 * t]) | uint32_t(d[2 * t + 1]) << 8;
        if (v >= lim) {
          first_bad[c] = t;
          break;
        }
      }
    } else {
      for (int64_t t = ch.begin; t < ch.end; ++t) {
        const uint32_t v = uint32_t(d[4 * t]) | uint32_t(d[4 * t + 1]) << 8 | uint32_t(d[4 * t + 2]) << 16 |
                           uint32_t(d[4 * t + 3]) << 24;
        if (v >= static_cast<uint64_t>(vocab_size)) {
          first_bad[c] = t;
          break;
        }
      }
    }
  }
  for (size_t c = 0; c < chunks.size(); ++c) {
    if (first_bad[c] < 0) continue;
    const ShardInfo& s = shards_[chunks[c].shard];
    const int64_t t = first_bad[c];
    int32_t v = 0;
    read(starts_[chunks[c].shard] + t, 1, &v);
    WERSA_FAIL(s.path, ": token ", t, " has id ", static_cast<uint32_t>(v),
               ", not below the vocabulary size ", vocab_size, " (shards made with another tokenizer?)");
  }
}

ShardDataset::~ShardDataset() {
  for (const Map& m : maps_)
    if (m.base) ::munmap(m.base, m.map_bytes);
}

void ShardDataset::read(int64_t pos, int64_t n, int32_t* out) const {
  WERSA_ASSERT(pos >= 0 && n >= 0 && pos + n <= total_, "read [", pos, ", ", pos + n, ") of ", total_,
               " tokens");
  size_t s = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), pos) - starts_.begin()) - 1;
  while (n > 0) {
    while (starts_[s + 1] <= pos) ++s;  // skips empty shards
    const int64_t off = pos - starts_[s];
    const int64_t k = std::min(n, starts_[s + 1] - pos);
    const unsigned char* d = maps_[s].data;
    if (shards_[s].token_bytes == 2) {
      for (int64_t i = 0; i < k; ++i) {
        const int64_t t = off + i;
        out[i] = static_cast<int32_t>(uint32_t(d[2 * t]) | uint32_t(d[2 * t + 1]) << 8);
      }
    } else {
      for (int64_t i = 0; i < k; ++i) {
        const int64_t t = off + i;
        out[i] = static_cast<int32_t>(uint32_t(d[4 * t]) | uint32_t(d[4 * t + 1]) << 8 |
                                      uint32_t(d[4 * t + 2]) << 16 | uint32_t(d[4 * t + 3]) << 24);
      }
    }
    out += k, pos += k, n -= k;
  }
}

std::string ShardDataset::describe() const {
  return detail::cat("'", spec_, "': ", shards_.size(), " shard", shards_.size() == 1 ? "" : "s", ", ",
                     total_, " tokens (", shards_.front().token_bytes == 2 ? "uint16" : "uint32", ")");
}

// ---- TextDataset --------------------------------------------------------------------------------

TextDataset::TextDataset(const std::string& path, const Tokenizer& tok) : path_(path), tok_kind_(tok.kind()) {
  struct stat st {};
  WERSA_CHECK(::stat(path.c_str(), &st) == 0, "text data '", path, "' does not exist");
  WERSA_CHECK(S_ISREG(st.st_mode), "text data '", path, "' is not a regular file");
  std::ifstream f(path, std::ios::binary);
  WERSA_CHECK(f.good(), "cannot read text data '", path, "'");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  f.read(text.data(), static_cast<std::streamsize>(text.size()));
  WERSA_CHECK(f.gcount() == static_cast<std::streamsize>(text.size()), "cannot read text data '", path, "'");
  WERSA_CHECK(!text.empty(), "text data '", path, "' is empty");
  const size_t bad = find_invalid_utf8(text);
  WERSA_CHECK(bad == std::string::npos, path, ": invalid UTF-8 at byte offset ", bad, " (line ",
              1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n'), ")");

  // Pieces of ~1 MB, each ending after a newline, encoded in parallel and joined in order.
  std::vector<size_t> cuts{0};
  while (cuts.back() < text.size()) {
    const size_t target = cuts.back() + (size_t(1) << 20);
    const size_t nl = target >= text.size() ? std::string::npos : text.find('\n', target);
    cuts.push_back(nl == std::string::npos ? text.size() : nl + 1);
  }
  const int64_t pieces = static_cast<int64_t>(cuts.size()) - 1;
  std::vector<std::vector<int32_t>> ids(pieces);
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < pieces; ++i) {
    try {
      ids[i] = tok.encode(std::string_view(text).substr(cuts[i], cuts[i + 1] - cuts[i]));
    } catch (...) {
#pragma omp critical
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  size_t total = 0;
  for (const auto& v : ids) total += v.size();
  tokens_.reserve(total);
  for (auto& v : ids) tokens_.insert(tokens_.end(), v.begin(), v.end()), std::vector<int32_t>().swap(v);
}

void TextDataset::read(int64_t pos, int64_t n, int32_t* out) const {
  WERSA_ASSERT(pos >= 0 && n >= 0 && pos + n <= size(), "read [", pos, ", ", pos + n, ") of ", size(),
               " tokens");
  std::copy(tokens_.begin() + pos, tokens_.begin() + pos + n, out);
}

std::string TextDataset::describe() const {
  return detail::cat("text '", path_, "': ", tokens_.size(), " tokens (", tok_kind_, " tokenizer)");
}

// ---- open_dataset -------------------------------------------------------------------------------

namespace {

// Shards written by `wersa-tokenize encode` sit beside a dataset.json naming their tokenizer;
// training them through another tokenizer is refused.
void check_dataset_tokenizer(const std::string& first_shard, const Tokenizer& tok) {
  const fs::path meta = fs::path(first_shard).parent_path() / "dataset.json";
  std::error_code ec;
  if (!fs::exists(meta, ec)) return;
  const nlohmann::json j = read_json_file(meta.string());
  WERSA_CHECK(j.is_object(), meta.string(), ": expected a JSON object, got ", json_brief(j));
  if (!j.contains("tokenizer") || !j["tokenizer"].is_object() || !j["tokenizer"].contains("fingerprint"))
    return;
  WERSA_CHECK(j["tokenizer"]["fingerprint"].is_string(), meta.string(),
              ": tokenizer.fingerprint must be a string");
  const std::string want = j["tokenizer"]["fingerprint"].get<std::string>();
  const auto kind_it = j["tokenizer"].find("kind");
  const std::string kind =
      kind_it != j["tokenizer"].end() && kind_it->is_string() ? kind_it->get<std::string>() : "?";
  WERSA_CHECK(want == tok.fingerprint(), "the shards in '", fs::path(first_shard).parent_path().string(),
              "' were encoded with tokenizer ", want.substr(0, 16), " (", printable(kind),
              ", dataset.json) but the tokenizer in use is ", tok.fingerprint().substr(0, 16), " (",
              tok.kind(), ")");
}

}  // namespace

std::unique_ptr<TokenDataset> open_dataset(const std::string& spec, const Tokenizer& tok,
                                           int64_t vocab_size) {
  WERSA_CHECK(!spec.empty(), "empty data path");
  struct stat st {};
  const bool exists = ::stat(spec.c_str(), &st) == 0;
  bool text = ends_with(spec, ".txt");
  if (exists && S_ISREG(st.st_mode) && !ends_with(spec, ".bin") && !looks_like_shard(spec)) text = true;
  if (text) {
    WERSA_CHECK(tok.vocab_size() <= vocab_size, "text data '", spec, "': the ", tok.kind(),
                " tokenizer has a vocabulary of ", tok.vocab_size(), ", more than the model's vocab_size ",
                vocab_size);
    return std::make_unique<TextDataset>(spec, tok);
  }
  check_dataset_tokenizer(expand_glob(shard_pattern(spec)).front(), tok);  // before the token check
  return std::make_unique<ShardDataset>(spec, vocab_size);
}

}  // namespace wersa::data

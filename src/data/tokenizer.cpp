// Byte and SentencePiece tokenizers.
//
// SentencePiece encoding fast path: libsentencepiece encodes a whole string at a time and runs
// at ~1-2 MB/s on prose for BPE models. For models whose normalisation is the identity and whose
// pieces never straddle a word boundary, the text can instead be cut into "units" (a run of
// spaces with the non-space run that follows it, and each newline when "\n" is an atomic
// user-defined piece), encoded unit by unit through a per-thread cache: no piece can cross a
// cut, so the result is identical to encoding the whole string (test_tokenizer checks this on
// real text), and repeated words cost one hash lookup. Models that do not meet the conditions
// (dummy prefix, NFKC normalisation, whitespace as suffix, ...) are encoded whole, and so are
// unigram models: their Viterbi search sums piece scores in float along the whole string, so a
// near-tie between two segmentations can resolve differently with a different prefix.
#include "wersa/data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "spm_model_proto.h"
#include "wersa/common/error.h"
#include "wersa/common/json.h"
#include "wersa/common/rng.h"
#include "wersa/common/sha256.h"

namespace wersa::data {
namespace {

constexpr std::string_view kSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's escaped space

class ByteTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    out.reserve(ids.size());
    for (int32_t id : ids) {
      WERSA_CHECK(id >= 0 && id < 259, "decode: token id ", id,
                  " is out of range for the byte tokenizer (vocab 259)");
      if (id < 256) out += static_cast<char>(id);
    }
    return out;
  }
  std::string piece_bytes(int32_t id) const override {
    WERSA_CHECK(id >= 0 && id < 259, "token id ", id, " is out of range for the byte tokenizer (vocab 259)");
    return id < 256 ? std::string(1, static_cast<char>(id)) : std::string();
  }
  int64_t vocab_size() const override { return 259; }
  int32_t bos_id() const override { return 256; }
  int32_t eos_id() const override { return 257; }
  int32_t pad_id() const override { return 258; }
  int32_t unk_id() const override { return -1; }
  std::string kind() const override { return "byte"; }
  std::string fingerprint() const override { return "byte-v1"; }
};

// Per-thread cache of unit encodings, owned by one tokenizer instance at a time: an
// open-addressing table over string keys kept in one byte arena (no allocation per entry).
class UnitCache {
 public:
  uint64_t owner = 0;

  void reset(uint64_t new_owner) {
    owner = new_owner;
    keys_.clear(), ids_.clear(), used_ = 0;
    slots_.assign(size_t(1) << 16, Slot{});
  }
  bool full() const { return used_ >= kMaxEntries; }

  // The cached ids of `unit`, or nullptr. *count receives their number.
  const int32_t* find(std::string_view unit, uint64_t h, uint32_t* count) const {
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      const Slot& s = slots_[i];
      if (s.hash == 0) return nullptr;
      if (s.hash == h && s.key_len == unit.size() &&
          std::memcmp(keys_.data() + s.key_off, unit.data(), unit.size()) == 0) {
        *count = s.ids_len;
        return ids_.data() + s.ids_off;
      }
    }
  }
  void insert(std::string_view unit, uint64_t h, const std::vector<int>& ids) {
    if (2 * (used_ + 1) > slots_.size()) grow();
    Slot s{h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(unit.size()),
           static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(ids.size())};
    keys_.insert(keys_.end(), unit.begin(), unit.end());
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    place(s);
    ++used_;
  }

  static uint64_t hash(std::string_view s) {
    uint64_t h = 0x243F6A8885A308D3ull ^ s.size();
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      h = (h ^ w) * 0x9E3779B97F4A7C15ull;
      h ^= h >> 29;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, s.data() + i, s.size() - i);
    h = mix64(h ^ tail);
    return h ? h : 1;  // 0 marks an empty slot
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_off = 0, key_len = 0, ids_off = 0, ids_len = 0;
  };
  static constexpr size_t kMaxEntries = size_t(1) << 18;  // then cleared: bounded memory
  void place(const Slot& s) {
    size_t i = s.hash & (slots_.size() - 1);
    while (slots_[i].hash != 0) i = (i + 1) & (slots_.size() - 1);
    slots_[i] = s;
  }
  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const Slot& s : old)
      if (s.hash) place(s);
  }
  std::vector<char> keys_;
  std::vector<int32_t> ids_;
  std::vector<Slot> slots_;
  size_t used_ = 0;
};
thread_local UnitCache tl_cache;
std::atomic<uint64_t> g_next_serial{1};
constexpr size_t kMaxCachedUnit = 64;  // longer units are encoded directly

bool is_space_at(std::string_view s, size_t i) {
  return s[i] == ' ' || (i + 3 <= s.size() && s.compare(i, 3, kSpace) == 0);
}
// True when s[0..i) ends in a space or an escaped space.
bool space_before(std::string_view s, size_t i) {
  if (i == 0) return false;
  if (s[i - 1] == ' ') return true;
  return i >= 3 && s.compare(i - 3, 3, kSpace) == 0;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(const std::string& bytes, const std::string& name) : serial_(g_next_serial++) {
    const spm::ModelInfo info = spm::parse_model(bytes, name);
    const auto st = sp_.LoadFromSerializedProto(bytes);
    WERSA_CHECK(st.ok(), name, ": not a valid SentencePiece model (", st.ToString(), ")");
    const int n = sp_.GetPieceSize();
    WERSA_CHECK(n == static_cast<int>(info.pieces.size()), name, ": inconsistent SentencePiece model (", n,
                " pieces loaded, ", info.pieces.size(), " in the file)");
    fingerprint_ = sha256_hex(bytes);
    unk_ = sp_.unk_id(), bos_ = sp_.bos_id(), eos_ = sp_.eos_id(), pad_ = sp_.pad_id();
    pieces_.resize(n);
    bool piece_crosses_word = false, newline_elsewhere = false;
    for (int id = 0; id < n; ++id) {
      const spm::Piece& p = info.pieces[id];
      if (p.type == spm::kByte) {
        unsigned v = 0;
        WERSA_CHECK(p.piece.size() == 6 && std::sscanf(p.piece.c_str(), "<0x%2X>", &v) == 1, name,
                    ": malformed byte piece '", p.piece, "' (id ", id, ")");
        pieces_[id] = std::string(1, static_cast<char>(v));
      } else if (p.type == spm::kNormal || p.type == spm::kUserDefined) {
        std::string s;
        bool seen_other = false;
        for (size_t i = 0; i < p.piece.size();) {
          if (p.piece.compare(i, 3, kSpace) == 0) {
            if (seen_other) piece_crosses_word = true;
            s += ' ', i += 3;
          } else {
            seen_other = true;
            s += p.piece[i++];
          }
        }
        if (p.piece.find('\n') != std::string::npos && !(p.type == spm::kUserDefined && p.piece == "\n"))
          newline_elsewhere = true;
        pieces_[id] = info.escape_whitespaces ? s : p.piece;
      }
    }
    fast_ = info.model_type == 2 && info.normalizer_name == "identity" && !info.has_precompiled_charmap &&
            !info.has_rule_tsv && !info.add_dummy_prefix && !info.remove_extra_whitespaces &&
            info.escape_whitespaces && !info.treat_whitespace_as_suffix && !piece_crosses_word;
    const int nl = sp_.PieceToId("\n");
    cut_newlines_ = fast_ && nl >= 0 && nl < n && nl != unk_ && info.pieces[nl].type == spm::kUserDefined &&
                    !newline_elsewhere;
  }

  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> out;
    if (!fast_) {
      append_direct(text, out);
      return out;
    }
    UnitCache& cache = tl_cache;
    if (cache.owner != serial_ || cache.full()) cache.reset(serial_);
    out.reserve(text.size() / 3);
    std::vector<int> fresh;
    size_t start = 0;
    const size_t n = text.size();
    for (size_t i = 1; i <= n; ++i) {
      // A unit ends before a space that starts a run of spaces, and around newlines.
      bool cut = i == n;
      if (!cut) {
        const char c = text[i];
        if (cut_newlines_ && (c == '\n' || text[i - 1] == '\n'))
          cut = true;
        else if ((c == ' ' || c == '\xe2') && is_space_at(text, i) && !space_before(text, i))
          cut = true;
      }
      if (!cut) continue;
      const std::string_view unit = text.substr(start, i - start);
      start = i;
      if (unit.size() > kMaxCachedUnit) {
        append_direct(unit, out);
        continue;
      }
      const uint64_t h = UnitCache::hash(unit);
      uint32_t count = 0;
      const int32_t* p = cache.find(unit, h, &count);
      if (!p) {
        const auto st = sp_.Encode(unit, &fresh);
        WERSA_ASSERT(st.ok(), st.ToString());
        cache.insert(unit, h, fresh);
        p = cache.find(unit, h, &count);
      }
      out.insert(out.end(), p, p + count);
    }
    return out;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::vector<int> v(ids.begin(), ids.end());
    for (int32_t id : ids) check_id(id, "decode");
    std::string out;
    const auto st = sp_.Decode(v, &out);
    WERSA_CHECK(st.ok(), "decode: ", st.ToString());
    return out;
  }
  std::string piece_bytes(int32_t id) const override {
    check_id(id, "piece_bytes");
    return pieces_[id];
  }
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  int32_t bos_id() const override { return bos_; }
  int32_t eos_id() const override { return eos_; }
  int32_t pad_id() const override { return pad_; }
  int32_t unk_id() const override { return unk_; }
  std::string kind() const override { return "sentencepiece"; }
  std::string fingerprint() const override { return fingerprint_; }

 private:
  void check_id(int32_t id, const char* what) const {
    WERSA_CHECK(id >= 0 && id < static_cast<int32_t>(pieces_.size()), what, ": token id ", id,
                " is out of range for the SentencePiece vocabulary of ", pieces_.size());
  }
  void append_direct(std::string_view text, std::vector<int32_t>& out) const {
    std::vector<int> ids;
    const auto st = sp_.Encode(text, &ids);
    WERSA_ASSERT(st.ok(), st.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }

  sentencepiece::SentencePieceProcessor sp_;
  uint64_t serial_;
  std::vector<std::string> pieces_;
  std::string fingerprint_;
  int32_t unk_ = -1, bos_ = -1, eos_ = -1, pad_ = -1;
  bool fast_ = false, cut_newlines_ = false;
};

std::string read_model_file(const std::string& path) {
  struct stat st {};
  WERSA_CHECK(::stat(path.c_str(), &st) == 0, "tokenizer model '", path, "' does not exist");
  WERSA_CHECK(S_ISREG(st.st_mode), "tokenizer model '", path, "' is not a regular file");
  std::ifstream f(path, std::ios::binary);
  WERSA_CHECK(f.good(), "tokenizer model '", path, "' cannot be read");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

std::unique_ptr<Tokenizer> load_sentencepiece_from_bytes(const std::string& bytes, const std::string& name) {
  return std::make_unique<SentencePieceTokenizer>(bytes, name);
}

std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& model_path) {
  return load_sentencepiece_from_bytes(read_model_file(model_path), model_path);
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec) {
  if (spec.empty() || spec == "byte") return make_byte_tokenizer();
  struct stat st {};
  if (::stat(spec.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    // A shard directory written by `wersa-tokenize encode` carries its tokenizer.model, or says
    // in dataset.json that it was encoded with bytes.
    const std::string model = spec + "/tokenizer.model";
    if (::stat(model.c_str(), &st) == 0) return load_sentencepiece(model);
    const std::string meta = spec + "/dataset.json";
    if (::stat(meta.c_str(), &st) == 0) {
      const nlohmann::json j = read_json_file(meta);
      const auto tk = j.is_object() ? j.find("tokenizer") : j.end();
      const bool ok = tk != j.end() && tk->is_object() && tk->contains("kind") && (*tk)["kind"].is_string();
      WERSA_CHECK(ok, meta, ": cannot read the tokenizer kind (expected {\"tokenizer\": {\"kind\": ...}})");
      if ((*tk)["kind"] == "byte") return make_byte_tokenizer();
    }
    WERSA_FAIL("directory '", spec,
               "' holds no tokenizer.model (nor a dataset.json naming the byte tokenizer)");
  }
  return load_sentencepiece(spec);
}

}  // namespace wersa::data

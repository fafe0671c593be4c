#include "wersa/data/inspect.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "wersa/common/error.h"

namespace wersa::data {

int64_t decode_to(const TokenDataset& data, const Tokenizer& tok, int64_t start, int64_t count,
                  const std::string& eos_text, FILE* out) {
  WERSA_CHECK(start >= 0 && start <= data.size(), "start ", start, " is outside the data (", data.size(),
              " tokens)");
  const int64_t end = count < 0 ? data.size() : std::min(data.size(), start + count);
  // Bytes of every id, computed once.
  std::vector<std::string> bytes(static_cast<size_t>(tok.vocab_size()));
  for (int32_t id = 0; id < static_cast<int32_t>(bytes.size()); ++id) bytes[id] = tok.piece_bytes(id);
  if (tok.eos_id() >= 0) bytes[tok.eos_id()] = eos_text;
  if (tok.unk_id() >= 0) bytes[tok.unk_id()] = " \xe2\x81\x87 ";
  std::vector<int32_t> ids;
  std::string buf;
  for (int64_t pos = start; pos < end;) {
    const int64_t n = std::min<int64_t>(end - pos, 1 << 20);
    ids.resize(static_cast<size_t>(n));
    data.read(pos, n, ids.data());
    buf.clear();
    for (int32_t id : ids) {
      WERSA_CHECK(id >= 0 && id < static_cast<int32_t>(bytes.size()), "token id ", id,
                  " is outside the tokenizer's vocabulary of ", bytes.size());
      buf += bytes[id];
    }
    WERSA_CHECK(std::fwrite(buf.data(), 1, buf.size(), out) == buf.size(),
                "cannot write the decoded text: ", std::strerror(errno));
    pos += n;
  }
  return end - start;
}

TextTokenStats measure_text(const Tokenizer& tok, const std::vector<std::string>& inputs, int64_t max_bytes,
                            const CorpusOptions& opt) {
  TextTokenStats s;
  CorpusReader reader(inputs, opt);
  std::vector<int32_t> single_byte(static_cast<size_t>(tok.vocab_size()), 0);
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string b = tok.piece_bytes(id);
    single_byte[id] = b.size() == 1 && (static_cast<unsigned char>(b[0]) & 0x80);
  }
  Document d;
  while (s.bytes < max_bytes && reader.next(d)) {
    std::string_view text = d.text;
    if (s.bytes + static_cast<int64_t>(text.size()) > max_bytes) {
      const size_t nl = text.rfind('\n', static_cast<size_t>(max_bytes - s.bytes));
      text = text.substr(0, nl == std::string_view::npos ? static_cast<size_t>(max_bytes - s.bytes) : nl + 1);
      if (text.empty()) break;
    }
    if (d.first) ++s.documents;
    s.bytes += static_cast<int64_t>(text.size());
    bool in_word = false;
    for (char c : text) {
      const auto u = static_cast<unsigned char>(c);
      if ((u & 0xC0) != 0x80) ++s.chars;
      const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
      if (!space && !in_word) ++s.words;
      in_word = !space;
    }
    for (int32_t id : tok.encode(text)) {
      ++s.tokens;
      s.byte_fallback_tokens += single_byte[id];
      s.unk_tokens += id == tok.unk_id();
    }
  }
  WERSA_CHECK(s.bytes > 0, "the inputs hold no text to measure");
  return s;
}

ShardStats shard_stats(const ShardDataset& data, int32_t eos_id) {
  ShardStats s;
  s.shards = data.shards();
  s.tokens = data.size();
  for (const ShardInfo& sh : s.shards) s.bytes += kShardHeaderBytes + sh.tokens * sh.token_bytes;
  // Counts of small ids in a vector that grows with the largest id seen (at most 2^24 entries:
  // uint16 shards and Llama-3-size vocabularies); larger ids in a map.
  constexpr int32_t kDense = 1 << 24;
  std::vector<int64_t> hist;
  std::unordered_map<int32_t, int64_t> sparse;
  std::vector<int32_t> ids;
  s.min_id = std::numeric_limits<int32_t>::max();
  s.max_id = -1;
  for (int64_t pos = 0; pos < data.size();) {
    const int64_t n = std::min<int64_t>(data.size() - pos, 1 << 22);
    ids.resize(static_cast<size_t>(n));
    data.read(pos, n, ids.data());
    for (int32_t id : ids) {
      WERSA_CHECK(id >= 0, data.describe(), ": token ", pos, " has a negative id ", id);
      s.min_id = std::min(s.min_id, id);
      s.max_id = std::max(s.max_id, id);
      if (id < kDense) {
        if (static_cast<size_t>(id) >= hist.size())
          hist.resize(std::min<size_t>(kDense, std::max<size_t>(size_t(id) + 1, 2 * hist.size())), 0);
        ++hist[static_cast<size_t>(id)];
      } else {
        ++sparse[id];
      }
    }
    pos += n;
  }
  if (s.max_id < 0) s.min_id = 0, s.max_id = 0;  // no tokens (a ShardDataset always has some)
  std::vector<std::pair<int32_t, int64_t>> all;
  for (size_t id = 0; id < hist.size(); ++id)
    if (hist[id] > 0) all.emplace_back(static_cast<int32_t>(id), hist[id]);
  for (const auto& kv : sparse) all.push_back(kv);
  for (const auto& [id, n] : all)
    if (id == eos_id) s.eos = n;
  s.distinct_ids = static_cast<int64_t>(all.size());
  const size_t k = std::min<size_t>(10, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(),
                    [](const auto& a, const auto& b) {
                      return a.second != b.second ? a.second > b.second : a.first < b.first;
                    });
  s.top.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k));
  return s;
}

ShardStats shard_stats(const ShardDataset& data, const Tokenizer& tok) {
  ShardStats s = shard_stats(data, tok.eos_id());
  WERSA_CHECK(s.max_id < tok.vocab_size(), data.describe(), ": token id ", s.max_id,
              " is outside the tokenizer's vocabulary of ", tok.vocab_size());
  return s;
}

}  // namespace wersa::data

// Shard files: header validation, atomic writing, globbing.
#include "wersa/data/shard.h"

#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "wersa/common/error.h"

namespace wersa::data {
namespace {

void put_le32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
int32_t get_le32(const unsigned char* p) {
  return static_cast<int32_t>(uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
                              uint32_t(p[3]) << 24);
}

}  // namespace

int shard_token_bytes(int64_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

ShardInfo read_shard_header(const std::string& path) {
  struct stat st {};
  WERSA_CHECK(::stat(path.c_str(), &st) == 0, "shard '", path, "' does not exist");
  WERSA_CHECK(S_ISREG(st.st_mode), "shard '", path, "' is not a regular file");
  const int64_t actual = st.st_size;
  WERSA_CHECK(actual >= kShardHeaderBytes, path, ": too small to be a token shard (", actual,
              " bytes; the header alone is ", kShardHeaderBytes, ")");
  FILE* f = std::fopen(path.c_str(), "rb");
  WERSA_CHECK(f, "cannot open shard '", path, "': ", std::strerror(errno));
  unsigned char h[kShardHeaderBytes];
  const size_t k = std::fread(h, 1, sizeof h, f);
  std::fclose(f);
  WERSA_CHECK(k == sizeof h, path, ": cannot read the shard header");
  const int32_t magic = get_le32(h), version = get_le32(h + 4), tokens = get_le32(h + 8);
  ShardInfo info;
  info.path = path;
  if (magic == kShardMagicU16) {
    WERSA_CHECK(version == kShardVersionU16, path, ": unsupported shard version ", version, " for magic ",
                magic, " (expected ", kShardVersionU16, ")");
    info.token_bytes = 2;
  } else if (magic == kShardMagicU32) {
    WERSA_CHECK(version == kShardVersionU32, path, ": unsupported shard version ", version, " for magic ",
                magic, " (expected ", kShardVersionU32, ")");
    info.token_bytes = 4;
  } else {
    WERSA_FAIL(path, ": not a token shard (magic ", magic, "; expected ", kShardMagicU16, " for uint16 or ",
               kShardMagicU32, " for uint32 tokens)");
  }
  WERSA_CHECK(tokens >= 0, path, ": negative token count ", tokens, " in the shard header");
  info.tokens = tokens;
  const int64_t expected = kShardHeaderBytes + info.tokens * info.token_bytes;
  WERSA_CHECK(actual == expected, path, ": size is ", actual, " bytes, expected ", expected, " (",
              kShardHeaderBytes, "-byte header + ", info.tokens, " tokens x ", info.token_bytes, " bytes)",
              actual < expected ? ": truncated" : ": trailing bytes");
  return info;
}

bool looks_like_shard(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  unsigned char h[4];
  const bool ok = std::fread(h, 1, 4, f) == 4;
  std::fclose(f);
  return ok && (get_le32(h) == kShardMagicU16 || get_le32(h) == kShardMagicU32);
}

// ---- writing ------------------------------------------------------------------------------------

ShardWriter::ShardWriter(const std::string& path, int token_bytes)
    : path_(path), tmp_(path + ".tmp"), token_bytes_(token_bytes) {
  WERSA_CHECK(token_bytes == 2 || token_bytes == 4, path, ": token_bytes must be 2 or 4, got ", token_bytes);
  f_ = std::fopen(tmp_.c_str(), "wb");
  WERSA_CHECK(f_, "cannot create '", tmp_, "': ", std::strerror(errno));
  const unsigned char zero[kShardHeaderBytes] = {};
  WERSA_CHECK(std::fwrite(zero, 1, sizeof zero, f_) == sizeof zero, "cannot write '", tmp_,
              "': ", std::strerror(errno));
}

ShardWriter::~ShardWriter() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void ShardWriter::append(const int32_t* ids, int64_t n) {
  WERSA_CHECK(f_, path_, ": append after finish");
  const int64_t limit = token_bytes_ == 2 ? 65536 : (int64_t(1) << 32);
  buf_.resize(static_cast<size_t>(n) * token_bytes_);
  unsigned char* p = buf_.data();
  for (int64_t i = 0; i < n; ++i, p += token_bytes_) {
    const int64_t v = ids[i];
    WERSA_CHECK(v >= 0 && v < limit, path_, ": token id ", v, " at index ", tokens_ + i, " does not fit in ",
                token_bytes_, "-byte tokens");
    p[0] = static_cast<unsigned char>(v), p[1] = static_cast<unsigned char>(v >> 8);
    if (token_bytes_ == 4)
      p[2] = static_cast<unsigned char>(v >> 16), p[3] = static_cast<unsigned char>(v >> 24);
  }
  WERSA_CHECK(tokens_ + n <= std::numeric_limits<int32_t>::max(), path_,
              ": more than 2^31-1 tokens in one shard (the header holds an int32 count)");
  WERSA_CHECK(std::fwrite(buf_.data(), 1, buf_.size(), f_) == buf_.size(), "cannot write '", tmp_,
              "': ", std::strerror(errno));
  tokens_ += n;
}

ShardInfo ShardWriter::finish() {
  WERSA_CHECK(f_, path_, ": finish called twice");
  unsigned char h[kShardHeaderBytes] = {};
  put_le32(h, token_bytes_ == 2 ? kShardMagicU16 : kShardMagicU32);
  put_le32(h + 4, token_bytes_ == 2 ? kShardVersionU16 : kShardVersionU32);
  put_le32(h + 8, static_cast<uint32_t>(tokens_));
  bool ok = std::fflush(f_) == 0 && std::fseek(f_, 0, SEEK_SET) == 0 &&
            std::fwrite(h, 1, sizeof h, f_) == sizeof h && std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
  const int err = errno;
  ok = (std::fclose(f_) == 0) && ok;
  f_ = nullptr;
  if (!ok) {
    std::remove(tmp_.c_str());
    WERSA_FAIL("cannot write '", tmp_, "': ", std::strerror(err));
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp_.c_str());
    WERSA_FAIL("cannot rename '", tmp_, "' to '", path_, "': ", std::strerror(e));
  }
  return ShardInfo{path_, tokens_, token_bytes_};
}

void write_shard(const std::string& path, const std::vector<uint32_t>& tokens, int token_bytes) {
  WERSA_CHECK(token_bytes == 2 || token_bytes == 4, path, ": token_bytes must be 2 or 4, got ", token_bytes);
  for (size_t i = 0; i < tokens.size(); ++i)
    WERSA_CHECK(token_bytes == 4 || tokens[i] < 65536, path, ": token id ", tokens[i], " at index ", i,
                " does not fit in 2-byte tokens (use 4)");
  ShardWriter w(path, token_bytes);
  std::vector<int32_t> chunk;
  for (size_t i = 0; i < tokens.size(); i += 1 << 20) {
    const size_t n = std::min<size_t>(1 << 20, tokens.size() - i);
    chunk.resize(n);
    // ids >= 2^31 are stored bit-exact in 4 bytes; append() range-checks the signed view, so
    // split the two cases.
    for (size_t k = 0; k < n; ++k) chunk[k] = static_cast<int32_t>(tokens[i + k]);
    if (token_bytes == 4 && std::any_of(chunk.begin(), chunk.end(), [](int32_t v) { return v < 0; }))
      WERSA_FAIL(path, ": token ids >= 2^31 are not supported");
    w.append(chunk.data(), static_cast<int64_t>(n));
  }
  w.finish();
}

// ---- globbing -----------------------------------------------------------------------------------

std::vector<std::string> expand_glob(const std::string& pattern) {
  WERSA_CHECK(!pattern.empty(), "empty file pattern");
  std::vector<std::string> out;
  if (pattern.find_first_of("*?[") == std::string::npos) {
    struct stat st {};
    WERSA_CHECK(::stat(pattern.c_str(), &st) == 0, "no files match '", pattern, "'");
    return {pattern};
  }
  glob_t g{};
  const int r = ::glob(pattern.c_str(), 0, nullptr, &g);
  if (r == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  WERSA_CHECK(r == 0 || r == GLOB_NOMATCH, "cannot expand '", pattern, "' (glob error ", r, ")");
  WERSA_CHECK(!out.empty(), "no files match '", pattern, "'");
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace wersa::data

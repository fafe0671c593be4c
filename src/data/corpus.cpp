#include "wersa/data/corpus.h"

#include <lzma.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "wersa/common/error.h"
#include "wersa/common/json.h"
#include "wersa/common/log.h"

namespace wersa::data {
namespace fs = std::filesystem;

// ---- UTF-8 ------------------------------------------------------------------------------------

size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // Lead byte -> sequence length and the allowed range of the second byte (RFC 3629 table).
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c == 0xE0)
      len = 3, lo = 0xA0;  // no overlongs
    else if (c >= 0xE1 && c <= 0xEC)
      len = 3;
    else if (c == 0xED)
      len = 3, hi = 0x9F;  // no surrogates
    else if (c == 0xEE || c == 0xEF)
      len = 3;
    else if (c == 0xF0)
      len = 4, lo = 0x90;  // no overlongs
    else if (c >= 0xF1 && c <= 0xF3)
      len = 4;
    else if (c == 0xF4)
      len = 4, hi = 0x8F;  // nothing above U+10FFFF
    else
      return i;
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return i;
    i += len;
  }
  return std::string_view::npos;
}

// ---- files --------------------------------------------------------------------------------------

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The name without a compression suffix, lower case.
std::string base_name(const std::string& path, Compression* c) {
  std::string name = lower(fs::path(path).filename().string());
  *c = Compression::None;
  if (ends_with(name, ".xz"))
    *c = Compression::Xz, name.resize(name.size() - 3);
  else if (ends_with(name, ".gz"))
    *c = Compression::Gzip, name.resize(name.size() - 3);
  return name;
}

bool is_corpus_name(const std::string& path) {
  Compression c;
  const std::string name = base_name(path, &c);
  if (!name.empty() && name[0] == '.') return false;
  for (const char* ext : {".txt", ".text", ".jsonl", ".ndjson"})
    if (ends_with(name, ext)) return true;
  return false;
}

}  // namespace

CorpusFile corpus_file(const std::string& path) {
  CorpusFile f;
  f.path = path;
  const std::string name = base_name(path, &f.compression);
  f.format =
      (ends_with(name, ".jsonl") || ends_with(name, ".ndjson")) ? InputFormat::Jsonl : InputFormat::Text;
  struct stat st {};
  WERSA_CHECK(::stat(path.c_str(), &st) == 0, "input '", path, "' does not exist");
  WERSA_CHECK(S_ISREG(st.st_mode), "input '", path, "' is not a regular file");
  f.size = st.st_size;
  return f;
}

std::vector<CorpusFile> list_corpus_files(const std::vector<std::string>& inputs) {
  WERSA_CHECK(!inputs.empty(), "no input files given");
  std::vector<CorpusFile> out;
  for (const std::string& in : inputs) {
    struct stat st {};
    WERSA_CHECK(::stat(in.c_str(), &st) == 0, "input '", in, "' does not exist");
    if (!S_ISDIR(st.st_mode)) {
      out.push_back(corpus_file(in));
      continue;
    }
    std::vector<std::string> found;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(in, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec) && is_corpus_name(it->path().string()))
        found.push_back(it->path().string());
    }
    WERSA_CHECK(!ec, "input directory '", in, "' cannot be listed (", ec.message(), ")");
    WERSA_CHECK(!found.empty(), "input directory '", in,
                "' holds no .txt, .text, .jsonl or .ndjson files (optionally .xz or .gz)");
    std::sort(found.begin(), found.end());
    for (const std::string& p : found) out.push_back(corpus_file(p));
  }
  return out;
}

// ---- decompressing input stream -----------------------------------------------------------------

struct InputStream::Impl {
  std::string path;
  Compression compression;
  FILE* f = nullptr;
  std::vector<unsigned char> in;
  bool in_eof = false, finished = false;
  lzma_stream xz = LZMA_STREAM_INIT;
  z_stream z{};
  bool z_ready = false;
};

InputStream::InputStream(const std::string& path, Compression compression) : impl_(new Impl) {
  Impl& s = *impl_;
  s.path = path;
  s.compression = compression;
  s.f = std::fopen(path.c_str(), "rb");
  WERSA_CHECK(s.f, "cannot open '", path, "': ", std::strerror(errno));
  s.in.resize(size_t(1) << 20);
  if (compression == Compression::Xz) {
    const lzma_ret r = lzma_stream_decoder(&s.xz, UINT64_MAX, LZMA_CONCATENATED);
    WERSA_CHECK(r == LZMA_OK, path, ": cannot start the xz decoder (lzma error ", int(r), ")");
  } else if (compression == Compression::Gzip) {
    WERSA_CHECK(inflateInit2(&s.z, 15 + 32) == Z_OK, path, ": cannot start the gzip decoder");
    s.z_ready = true;
  }
}

InputStream::~InputStream() {
  if (impl_->f) std::fclose(impl_->f);
  lzma_end(&impl_->xz);
  if (impl_->z_ready) inflateEnd(&impl_->z);
}

namespace {
const char* lzma_message(lzma_ret r) {
  switch (r) {
    case LZMA_FORMAT_ERROR:
      return "not in .xz format";
    case LZMA_DATA_ERROR:
      return "corrupt compressed data";
    case LZMA_OPTIONS_ERROR:
      return "unsupported xz options";
    case LZMA_MEM_ERROR:
      return "out of memory";
    case LZMA_BUF_ERROR:
      return "truncated xz stream";
    default:
      return "xz decoding failed";
  }
}
}  // namespace

size_t InputStream::read(char* buf, size_t n) {
  Impl& s = *impl_;
  if (s.finished || n == 0) return 0;
  auto refill = [&](const unsigned char*& next_in, size_t& avail_in) {
    if (avail_in > 0 || s.in_eof) return;
    const size_t k = std::fread(s.in.data(), 1, s.in.size(), s.f);
    WERSA_CHECK(!std::ferror(s.f), "error reading '", s.path, "': ", std::strerror(errno));
    if (k == 0) s.in_eof = true;
    raw_read_ += static_cast<int64_t>(k);
    next_in = s.in.data();
    avail_in = k;
  };
  if (s.compression == Compression::None) {
    const size_t k = std::fread(buf, 1, n, s.f);
    WERSA_CHECK(!std::ferror(s.f), "error reading '", s.path, "': ", std::strerror(errno));
    raw_read_ += static_cast<int64_t>(k);
    if (k == 0) s.finished = true;
    return k;
  }
  if (s.compression == Compression::Xz) {
    s.xz.next_out = reinterpret_cast<uint8_t*>(buf);
    s.xz.avail_out = n;
    while (true) {
      refill(s.xz.next_in, s.xz.avail_in);
      const lzma_ret r = lzma_code(&s.xz, s.in_eof ? LZMA_FINISH : LZMA_RUN);
      const size_t produced = n - s.xz.avail_out;
      if (r == LZMA_STREAM_END) {
        s.finished = true;
        return produced;
      }
      WERSA_CHECK(r == LZMA_OK, s.path, ": ", lzma_message(r), " (after ", raw_read_, " compressed bytes)");
      if (produced > 0) return produced;
      WERSA_CHECK(!(s.in_eof && s.xz.avail_in == 0), s.path, ": truncated xz stream");
    }
  }
  // gzip, possibly several concatenated members
  s.z.next_out = reinterpret_cast<Bytef*>(buf);
  s.z.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
  const size_t want = s.z.avail_out;
  while (true) {
    const unsigned char* next_in = s.z.next_in;
    size_t avail_in = s.z.avail_in;
    refill(next_in, avail_in);
    s.z.next_in = const_cast<Bytef*>(next_in);
    s.z.avail_in = static_cast<uInt>(avail_in);
    const int r = inflate(&s.z, Z_NO_FLUSH);
    const size_t produced = want - s.z.avail_out;
    if (r == Z_STREAM_END) {
      next_in = s.z.next_in, avail_in = s.z.avail_in;
      refill(next_in, avail_in);
      s.z.next_in = const_cast<Bytef*>(next_in), s.z.avail_in = static_cast<uInt>(avail_in);
      if (avail_in == 0) {
        s.finished = true;
        return produced;
      }
      WERSA_CHECK(inflateReset(&s.z) == Z_OK, s.path, ": gzip decoder reset failed");
      if (produced > 0) return produced;
      continue;
    }
    if (r == Z_BUF_ERROR && s.in_eof && s.z.avail_in == 0) WERSA_FAIL(s.path, ": truncated gzip stream");
    WERSA_CHECK(r == Z_OK || r == Z_BUF_ERROR, s.path, ": corrupt gzip data (",
                s.z.msg ? s.z.msg : "zlib error", ")");
    if (produced > 0) return produced;
  }
}

// ---- corpus reader ------------------------------------------------------------------------------

namespace {
constexpr size_t kBlock = size_t(1) << 20;
}

CorpusReader::CorpusReader(const std::vector<std::string>& inputs, CorpusOptions opt)
    : CorpusReader(list_corpus_files(inputs), std::move(opt)) {}

CorpusReader::CorpusReader(std::vector<CorpusFile> files, CorpusOptions opt)
    : files_(std::move(files)), opt_(std::move(opt)), file_stats_(files_.size()) {
  WERSA_CHECK(opt_.max_segment_bytes >= 16, "max_segment_bytes must be at least 16");
}

CorpusReader::~CorpusReader() = default;

int64_t CorpusReader::total_input_bytes() const {
  int64_t t = 0;
  for (const CorpusFile& f : files_) t += f.size;
  return t;
}

void CorpusReader::note_progress() {
  raw_done_.store(raw_before_ + (in_ ? in_->raw_bytes_read() : 0), std::memory_order_relaxed);
}

bool CorpusReader::open_next_file() {
  if (in_) {
    raw_before_ += in_->raw_bytes_read();
    in_.reset();
  }
  note_progress();
  if (++cur_ >= static_cast<int>(files_.size())) return false;
  in_ = std::make_unique<InputStream>(files_[cur_].path, files_[cur_].compression);
  buf_.clear();
  buf_pos_ = 0;
  buf_offset_ = 0;
  line_ = 1;
  doc_index_ = 0;
  eof_ = false;
  in_document_ = false;
  return true;
}

bool CorpusReader::fill() {
  if (eof_) return false;
  buf_.erase(0, buf_pos_);
  buf_pos_ = 0;
  const size_t old = buf_.size();
  buf_.resize(old + kBlock);
  const size_t k = in_->read(&buf_[old], kBlock);
  buf_.resize(old + k);
  note_progress();
  if (k == 0) eof_ = true;
  return k > 0;
}

void CorpusReader::invalid_utf8(int64_t offset, int64_t line, const char* unit) {
  const CorpusFile& f = files_[cur_];
  const std::string where = detail::cat(f.path, ": invalid UTF-8 at byte offset ", offset,
                                        f.compression == Compression::None ? "" : " of the decompressed text",
                                        " (line ", line, ")");
  WERSA_CHECK(opt_.invalid_utf8 == InvalidUtf8::Skip, where);
  ++stats_.skipped_invalid;
  ++file_stats_[cur_].skipped_invalid;
  if (reports_ < opt_.max_reports) spdlog::warn("{}: {} skipped", where, unit);
  if (++reports_ == opt_.max_reports)
    spdlog::warn("further invalid UTF-8 reports are not shown, only counted");
}

bool CorpusReader::next(Document& doc) {
  while (true) {
    if (!in_ && !open_next_file()) return false;
    const bool got = files_[cur_].format == InputFormat::Text ? next_text(doc) : next_jsonl(doc);
    if (got) {
      doc.file = cur_;
      stats_.text_bytes += static_cast<int64_t>(doc.text.size());
      file_stats_[cur_].text_bytes += static_cast<int64_t>(doc.text.size());
      if (doc.first) ++stats_.documents, ++file_stats_[cur_].documents;
      return true;
    }
    if (!open_next_file()) return false;
  }
}

bool CorpusReader::next_text(Document& doc) {
  doc.text.clear();
  doc.offset = buf_offset_;
  doc.line = line_;
  doc.index = doc_index_;
  doc.first = !in_document_;
  const size_t max = opt_.max_segment_bytes;
  size_t scan = buf_pos_;  // bytes before `scan` hold no newline
  while (doc.text.size() < max) {
    size_t nl = buf_.find('\n', scan);
    size_t end;
    if (nl == std::string::npos) {
      if (!eof_ && buf_.size() - buf_pos_ <= max) {  // keep one byte past a cut in view
        const size_t rel = buf_.size() - buf_pos_;
        fill();
        scan = buf_pos_ + rel;
        continue;
      }
      if (buf_pos_ == buf_.size()) break;  // end of file
      end = buf_.size();
      if (end - buf_pos_ > max) {
        // An over-long line: cut it before a UTF-8 lead byte.
        end = buf_pos_ + max;
        while (end > buf_pos_ + max - 4 && (static_cast<unsigned char>(buf_[end]) & 0xC0) == 0x80) --end;
      }
    } else {
      end = nl + 1;
    }
    const std::string_view line(buf_.data() + buf_pos_, end - buf_pos_);
    const size_t bad = find_invalid_utf8(line);
    if (bad != std::string_view::npos)
      invalid_utf8(buf_offset_ + static_cast<int64_t>(bad), line_, "line");
    else
      doc.text.append(line);
    buf_offset_ += static_cast<int64_t>(line.size());
    buf_pos_ = end;
    scan = end;
    if (line.back() == '\n') ++line_;
  }
  // Is there more of this file? (Look ahead, so that the last segment says so.)
  const bool more = buf_pos_ < buf_.size() || fill();
  if (doc.text.empty() && !more && !in_document_) return false;  // empty file, or every line skipped
  if (doc.text.empty() && !more && in_document_) {
    doc.last = true;  // the lines after the last full segment were all skipped
    in_document_ = false;
    ++doc_index_;
    return true;
  }
  doc.last = !more;
  in_document_ = more;
  if (!more) ++doc_index_;
  return true;
}

bool CorpusReader::next_jsonl(Document& doc) {
  size_t scan = buf_pos_;
  while (true) {
    const size_t nl = buf_.find('\n', scan);
    if (nl == std::string::npos && !eof_) {
      const size_t rel = buf_.size() - buf_pos_;
      fill();
      scan = buf_pos_ + rel;
      continue;
    }
    if (nl == std::string::npos && buf_pos_ == buf_.size()) return false;
    const size_t end = nl == std::string::npos ? buf_.size() : nl + 1;
    std::string_view line(buf_.data() + buf_pos_, (nl == std::string::npos ? end : nl) - buf_pos_);
    const int64_t line_no = line_, offset = buf_offset_;
    buf_offset_ += static_cast<int64_t>(end - buf_pos_);
    buf_pos_ = end;
    scan = end;
    ++line_;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // blank line
    const size_t bad = find_invalid_utf8(line);
    if (bad != std::string_view::npos) {
      invalid_utf8(offset + static_cast<int64_t>(bad), line_no, "record");
      continue;
    }
    const std::string& path = files_[cur_].path;
    nlohmann::json j = parse_json(line, path + ":" + std::to_string(line_no));
    WERSA_CHECK(j.is_object(), path, ":", line_no, ": expected a JSON object, got ", j.type_name());
    auto it = j.find(opt_.jsonl_field);
    WERSA_CHECK(it != j.end(), path, ":", line_no, ": no \"", opt_.jsonl_field, "\" field");
    WERSA_CHECK(it->is_string(), path, ":", line_no, ": field \"", opt_.jsonl_field, "\" is a ",
                it->type_name(), ", expected a string");
    std::string& text = it->get_ref<std::string&>();
    if (text.empty()) {
      ++stats_.skipped_empty;
      ++file_stats_[cur_].skipped_empty;
      continue;
    }
    doc.text = std::move(text);
    doc.index = doc_index_++;
    doc.line = line_no;
    doc.offset = offset;
    doc.first = doc.last = true;
    return true;
  }
}

}  // namespace wersa::data

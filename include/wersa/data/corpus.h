// Text corpora as streams of documents, for tokenizer training and shard encoding.
//
// Inputs are files or directories. A directory is searched recursively for *.txt, *.text and
// *.jsonl / *.ndjson files (each optionally .xz or .gz compressed), in sorted path order; a file
// named explicitly is read whatever its name. Formats, from the name: JSON Lines for *.jsonl,
// *.ndjson (and their .xz/.gz forms), plain text otherwise. Compressed files are decoded in
// process (liblzma, zlib), streaming.
//
// Documents: a plain-text file is one document; each non-blank line of a JSON Lines file is one
// document, its `text` field (configurable). Plain-text documents longer than
// max_segment_bytes are delivered in several segments cut after a newline (or, for a longer
// line, at a UTF-8 character boundary), so memory stays bounded whatever the file size.
//
// UTF-8: every byte is validated (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF). Invalid bytes are reported with the file, line and byte offset (in the decoded
// stream), and then, by policy, either the line (plain text) or record (JSON Lines) holding them
// is skipped and counted, or reading stops with a wersa::Error. Text is never altered.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace wersa::data {

enum class InputFormat { Text, Jsonl };
enum class Compression { None, Xz, Gzip };

struct CorpusFile {
  std::string path;
  InputFormat format = InputFormat::Text;
  Compression compression = Compression::None;
  int64_t size = 0;  // bytes on disk
};

// Expands files and directories (see above). wersa::Error for a missing path, or when the inputs
// hold no corpus file at all.
std::vector<CorpusFile> list_corpus_files(const std::vector<std::string>& inputs);
CorpusFile corpus_file(const std::string& path);  // one explicitly named file

// Offset of the first byte of s that is not part of well-formed UTF-8, or npos if s is valid.
size_t find_invalid_utf8(std::string_view s);

// A byte stream over a file, decompressed on the fly. read() returns 0 at the end; a damaged
// or truncated compressed stream raises wersa::Error naming the file.
class InputStream {
 public:
  InputStream(const std::string& path, Compression compression);
  ~InputStream();
  InputStream(const InputStream&) = delete;
  InputStream& operator=(const InputStream&) = delete;
  size_t read(char* buf, size_t n);
  int64_t raw_bytes_read() const { return raw_read_; }  // bytes consumed from the file on disk

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t raw_read_ = 0;
};

enum class InvalidUtf8 { Skip, Reject };

struct CorpusOptions {
  InvalidUtf8 invalid_utf8 = InvalidUtf8::Skip;
  std::string jsonl_field = "text";
  size_t max_segment_bytes = size_t(8) << 20;
  int max_reports = 20;  // invalid-UTF-8 warnings logged one by one; later ones are only counted
};

// A document, or one segment of a long plain-text document.
struct Document {
  std::string text;
  int file = 0;        // index into CorpusReader::files()
  int64_t index = 0;   // document number within its file (0-based)
  int64_t line = 0;    // line where it starts (1-based)
  int64_t offset = 0;  // byte offset where it starts, in the decoded file
  bool first = true;   // first segment of its document
  bool last = true;    // last segment of its document
};

struct CorpusStats {
  int64_t documents = 0;        // documents delivered (a segmented one counts once)
  int64_t text_bytes = 0;       // bytes of text delivered
  int64_t skipped_invalid = 0;  // lines (text) or records (JSON Lines) skipped for invalid UTF-8
  int64_t skipped_empty = 0;    // JSON Lines records whose text is empty
};

class CorpusReader {
 public:
  explicit CorpusReader(const std::vector<std::string>& inputs, CorpusOptions opt = {});
  CorpusReader(std::vector<CorpusFile> files, CorpusOptions opt);
  ~CorpusReader();
  CorpusReader(const CorpusReader&) = delete;
  CorpusReader& operator=(const CorpusReader&) = delete;

  // The next document (or segment); false at the end of the corpus.
  bool next(Document& doc);

  const std::vector<CorpusFile>& files() const { return files_; }
  int64_t total_input_bytes() const;  // on-disk size of all files
  int64_t input_bytes_read() const { return raw_done_.load(std::memory_order_relaxed); }  // any thread
  CorpusStats stats() const { return stats_; }
  const std::vector<CorpusStats>& file_stats() const { return file_stats_; }

 private:
  bool open_next_file();
  bool fill();  // reads another block into buf_; false at the end of the file
  bool next_text(Document& doc);
  bool next_jsonl(Document& doc);
  void invalid_utf8(int64_t offset, int64_t line, const char* unit);
  void note_progress();

  std::vector<CorpusFile> files_;
  CorpusOptions opt_;
  std::vector<CorpusStats> file_stats_;
  CorpusStats stats_;
  std::unique_ptr<InputStream> in_;
  int cur_ = -1;
  bool eof_ = true;
  std::string buf_;  // decoded bytes not yet consumed start at buf_pos_
  size_t buf_pos_ = 0;
  int64_t buf_offset_ = 0;  // decoded-stream offset of buf_[buf_pos_]
  int64_t line_ = 1;
  int64_t doc_index_ = 0;
  bool in_document_ = false;  // a plain-text document has started (segments pending)
  int reports_ = 0;
  int64_t raw_before_ = 0;  // on-disk bytes of the files already finished
  std::atomic<int64_t> raw_done_{0};
};

}  // namespace wersa::data

// Checked file I/O shared by every writer and reader of the engine. Every failure is a one-line
// wersa::Error naming the file and the reason (strerror).
//
// write_file replaces a file atomically (PATH.tmp, fsync, rename, fsync of the directory) when
// PATH is a regular file or does not exist; onto anything else that exists (a device such as
// /dev/null or /dev/full, a FIFO) it writes in place, so a device node is never replaced by a
// file. A directory is refused.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace wersa {

// The whole of a regular file (at most max_bytes).
std::string read_file(const std::string& path, size_t max_bytes = size_t(1) << 28);

struct ByteSpan {
  const void* data;
  size_t size;
};
void write_file(const std::string& path, const std::vector<ByteSpan>& parts);
inline void write_file(const std::string& path, std::string_view bytes) {
  write_file(path, {ByteSpan{bytes.data(), bytes.size()}});
}

// A file written line by line (metrics.jsonl, --per-token output): each write is flushed and
// checked, so a full disk ends the run with one line instead of a torn file.
class LineWriter {
 public:
  LineWriter() = default;
  LineWriter(const std::string& path, bool append);
  ~LineWriter();
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;
  void open(const std::string& path, bool append);
  bool is_open() const { return f_ != nullptr; }
  void write(std::string_view text);  // exactly these bytes, flushed
  void close();                       // checked; the destructor closes without checking

 private:
  std::FILE* f_ = nullptr;
  std::string path_;
};

// An exclusive advisory lock on DIR/name (flock): a second process asking for it gets a
// one-line error naming the holder's pid. The kernel drops the lock when the process dies,
// however it dies, so a kill -9 never leaves a stale lock.
class DirLock {
 public:
  DirLock(const std::string& dir, const std::string& name, const std::string& what);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace wersa

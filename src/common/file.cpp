#include "wersa/common/file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "wersa/common/error.h"

namespace wersa {

namespace {

bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w == 0) errno = EIO;
    if (w <= 0) return false;
    data += w;
    n -= size_t(w);
  }
  return true;
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

}  // namespace

std::string read_file(const std::string& path, size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  WERSA_CHECK(fd >= 0, path, ": cannot open file: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    WERSA_FAIL(path,
               ": cannot read file: ", S_ISDIR(st.st_mode) ? "it is a directory" : "not a regular file");
  }
  if (uint64_t(st.st_size) > max_bytes) {
    ::close(fd);
    WERSA_FAIL(path, ": file is ", st.st_size, " bytes, more than the ", max_bytes, " expected at most");
  }
  std::string out(size_t(st.st_size), '\0');
  size_t got = 0;
  int err = 0;
  while (got < out.size()) {
    const ssize_t r = ::read(fd, out.data() + got, out.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) err = errno;
    if (r <= 0) break;
    got += size_t(r);
  }
  ::close(fd);
  WERSA_CHECK(got == out.size(), path, ": cannot read file (read ", got, " of ", out.size(), " bytes)",
              err ? std::string(": ") + std::strerror(err) : std::string());
  return out;
}

void write_file(const std::string& path, const std::vector<ByteSpan>& parts) {
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  WERSA_CHECK(!exists || !S_ISDIR(st.st_mode), path, ": cannot write file: it is a directory");
  const bool atomic = !exists || S_ISREG(st.st_mode);
  const std::string target = atomic ? path + ".tmp" : path;
  const int fd = atomic ? ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                        : ::open(target.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  WERSA_CHECK(fd >= 0, target, ": cannot create file: ", std::strerror(errno));
  bool ok = true;
  for (const ByteSpan& p : parts)
    if (ok) ok = write_all(fd, static_cast<const char*>(p.data), p.size);
  int err = ok ? 0 : errno;
  if (ok && atomic && ::fsync(fd) != 0) ok = false, err = errno;
  if (::close(fd) != 0 && ok) ok = false, err = errno;
  if (ok && atomic && std::rename(target.c_str(), path.c_str()) != 0) ok = false, err = errno;
  if (!ok) {
    if (atomic) ::unlink(target.c_str());
    WERSA_FAIL(path, ": cannot write file: ", std::strerror(err));
  }
  if (!atomic) return;
  // Make the rename itself durable (best effort: some filesystems refuse fsync on directories).
  const int dfd = ::open(dir_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

LineWriter::LineWriter(const std::string& path, bool append) { open(path, append); }

LineWriter::~LineWriter() {
  if (f_) std::fclose(f_);
}

void LineWriter::open(const std::string& path, bool append) {
  close();
  path_ = path;
  f_ = std::fopen(path.c_str(), append ? "ab" : "wb");
  WERSA_CHECK(f_, path, ": cannot open for writing: ", std::strerror(errno));
}

void LineWriter::write(std::string_view text) {
  WERSA_ASSERT(f_, "write to a closed LineWriter");
  errno = 0;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f_) == text.size() && std::fflush(f_) == 0;
  WERSA_CHECK(ok, path_, ": write failed: ", std::strerror(errno ? errno : EIO));
}

void LineWriter::close() {
  if (!f_) return;
  std::FILE* f = f_;
  f_ = nullptr;
  errno = 0;
  const bool ok = std::fflush(f) == 0 && !std::ferror(f);
  const int err = errno;
  const bool closed = std::fclose(f) == 0;
  WERSA_CHECK(ok && closed, path_, ": write failed: ", std::strerror(err ? err : errno ? errno : EIO));
}

DirLock::DirLock(const std::string& dir, const std::string& name, const std::string& what) {
  const std::string path = dir + "/" + name;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  WERSA_CHECK(fd_ >= 0, path, ": cannot create the lock file: ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    std::string pid = n > 0 ? std::string(buf, size_t(n)) : std::string("?");
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    WERSA_CHECK(err != EWOULDBLOCK, dir, ": ", what, " (pid ", pid, ") is using this directory; ",
                "wait for it to end or choose another directory");
    WERSA_FAIL(path, ": cannot lock: ", std::strerror(err));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  bool ok = ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) == ssize_t(pid.size());
  WERSA_CHECK(ok, path, ": cannot write the lock file: ", std::strerror(errno));
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

}  // namespace wersa

// Shared by the fuzz targets: a private temporary directory per process for readers that take a
// path, and the rule for what counts as a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace wersa::fuzz {

// $TMPDIR (or /tmp)/wersa-fuzz-<pid>, created on first use and removed at a normal exit. Each
// process has its own, so parallel fuzzing jobs and ctest runs never share a file; nothing else
// is ever in it (a reader that looks beside its file, e.g. for dataset.json, finds nothing).
inline const std::string& temp_dir() {
  struct Dir {
    std::string path;
    Dir() {
      const char* t = std::getenv("TMPDIR");
      path = std::string(t && *t ? t : "/tmp") + "/wersa-fuzz-" + std::to_string(::getpid());
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

// Writes the input to temp_dir()/name (replacing it) and returns the path.
inline std::string write_temp(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = temp_dir() + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(path.c_str());
    std::abort();  // the harness itself is broken, not the code under test
  }
  return path;
}

// A property of the code under test does not hold: report it and abort (a finding).
[[noreturn]] inline void property_failed(const char* what) {
  std::fprintf(stderr, "fuzz: property failed: %s\n", what);
  std::abort();
}

}  // namespace wersa::fuzz

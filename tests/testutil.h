// Shared test helpers: owning host tensors, seeded random fills, and the central finite
// difference gradient check used by every op test (double precision, so the differences are
// accurate to ~1e-10 and a tolerance of 1e-6 separates a correct backward from a wrong one).
#pragma once
#include <gtest/gtest.h>
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "wersa/common/rng.h"
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa::test {

// The CPU context op tests call ops with: its scratch grows on demand (ScratchPolicy::Grow), so
// an op can be called without planning. Model-level code plans its contexts instead.
Ctx& ctx();

// sum_squares of x (the op, run on ctx()) read back as a double.
double sum_squares(const Tensor& x);

// A tensor that owns its (host) memory.
struct Buf {
  std::vector<double> storage;         // 8-byte aligned, big enough for any dtype
  std::unique_ptr<std::string> name_;  // the view's name (stable when the Buf moves)
  Tensor t;
  Buf() = default;
  Buf(DType dt, Shape s, std::string_view name = {});
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  Buf(Buf&&) = default;
  Buf& operator=(Buf&&) = default;
  operator const Tensor&() const { return t; }
  template <class T>
  T* p() const {
    return t.ptr<T>();
  }
  int64_t n() const { return t.numel(); }
  double get(int64_t i) const;    // element i as double (any float dtype)
  void set(int64_t i, double v);  // element i from double
  void zero();
  // Normal(0, scale) values from (seed, stream); never all zeros.
  void randn(uint64_t seed, double scale = 1.0, double shift = 0.0);
  void uniform(uint64_t seed, double lo, double hi);
  void copy_from(const Buf& o);  // converts dtype
};

// One differentiable input of a gradient check: the tensor perturbed, and where the backward
// leaves its gradient (for inputs whose gradient is accumulated, the check zeroes it first).
struct GradInput {
  Buf* x;
  Buf* grad;
  std::string name;
};

// Checks d(loss)/d(input) from `backward` against central finite differences of `loss`.
// loss(): runs the forward in double and returns sum(out * probe) for a fixed random probe.
// backward(): runs the backward with dout = probe, writing into each GradInput::grad.
// Checks up to max_checks elements per input (spread over the tensor) and expects
// |analytic - numeric| <= tol * max(1, |numeric|).
void expect_grad_matches(const std::function<double()>& loss, const std::function<void()>& backward,
                         const std::vector<GradInput>& inputs, double h = 1e-5, double tol = 1e-6,
                         int max_checks = 200);

// sum_i a[i] * b[i] in double.
double dot(const Buf& a, const Buf& b);
// max |a - b| / max(1e-12, max|b|)
double rel_err(const Buf& a, const Buf& b);
// max |a - ref| / max|ref|, against a reference computed in double.
double max_rel(const Buf& a, const std::vector<double>& ref);

// A fresh temporary directory, removed with everything in it when the object goes away.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);

// Runs a command-line tool of the build (WERSA_BIN_DIR/args, a shell command line that the shell
// replaces by the tool, so that its own end is seen) with `stdin_text` on its standard input and
// captures how it ended and its output.
struct ToolRun {
  int status = -1;  // the exit status when it exited (-1 when a signal ended it)
  int signal = 0;   // the signal that ended it (0 when it exited)
  std::string out, err;
};
ToolRun run_tool(const std::string& args, const std::string& stdin_text = "");
// A tool of the build started as a child process without a shell (argv as given), its stdout
// and stderr into the files `out` and `err` (e.g. "/dev/null"). `in_child` runs in the child
// before the exec: resource limits and signal dispositions (async-signal-safe calls only).
pid_t start_tool(const std::string& tool, const std::vector<std::string>& args, const std::string& out,
                 const std::string& err, const std::function<void()>& in_child = {});
// Waits for a child of start_tool; status and signal as in ToolRun, its output read from the
// files, and its peak resident memory (wait4's ru_maxrss, in bytes) in *max_rss. That peak
// includes what the child had when it was forked, i.e. this process's resident memory then.
ToolRun wait_tool(pid_t pid, const std::string& out, const std::string& err, size_t* max_rss = nullptr);
// This process's resident memory now (VmRSS), in bytes.
size_t resident_bytes();

// A tool's error as the tools document it: a normal exit with `exit_status` (1: something failed
// while it ran; 2: a bad command line), not a crash, and exactly one stderr line "error: ..."
// that contains `needle`.
void expect_one_line_error(const ToolRun& r, const std::string& needle, int exit_status = 1);

// Paths to real data: ../shared/data beside the checkout (returns "" when missing).
std::string shared_data(const std::string& file);
std::string source_dir();
// A few KB..MB of real English text for tests: the first `bytes` bytes of a novel from
// ../shared/data/novels98.jsonl.xz (decompressed via `xz -dc`), or a Debian-packaged text.
std::string real_text(size_t bytes);

// fn must throw wersa::Error with a one-line message containing `needle`; returns the message.
std::string expect_error_contains(const std::function<void()>& fn, const std::string& needle);

}  // namespace wersa::test

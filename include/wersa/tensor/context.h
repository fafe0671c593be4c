// The execution context every op receives: the device it runs on, its stream and library handle
// (CUDA; unused on the CPU, where OpenBLAS is process-wide), the CPU thread count, and the scratch
// memory that kernels use for temporaries.
//
// Scratch is planned, not allocated on demand: ctx.plan(fn) runs fn (the op sequence of a run:
// a forward, a backward, an optimizer step) with every op validating its arguments and its kernel
// declaring the scratch it would take, without computing anything; the scratch is then sized for
// the largest single op call. Afterwards a call that asks for more than was planned is an internal
// error (an op sequence that planning did not see). So the bytes a run needs are known before it
// starts, and no step allocates. A context made with ScratchPolicy::Grow instead grows at the start
// of an op call (tests and one-off calls outside any run).
//
// Kernels take scratch through per_thread<T>(n) (one slice of n elements for each CPU thread) or
// take<T>(n), and return right after that when ctx.planning(). Ops that take no scratch are not
// called at all while planning. Every op call starts with an empty scratch (ScratchScope), so
// scratch never carries data between calls.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "wersa/backend/backend.h"
#include "wersa/common/error.h"

namespace wersa {

enum class ScratchPolicy { Planned, Grow };

// Wall time of op calls, by op: each outermost op call (not the kernels a composite op runs inside
// it) adds its time and one call under the op's name. On a CUDA context the stream is synchronised
// before and after each timed call (a call returns before its kernels finish), so the times are
// the device's plus one synchronisation each. wersa-bench train --ops.
struct OpTimes {
  struct Entry {
    const char* op = nullptr;  // a string literal (the op's name)
    double seconds = 0;
    int64_t calls = 0;
  };
  // The matmul calls among them, by shape: x [n, i] times w [o, i]^T (forward) or its gradients
  // (backward: dx, dW or both), with the FLOPs they did (2 n i o per product). "+=": the product is
  // added to its output (beta = 1; dW always is), else it overwrites it.
  struct Gemm {
    const char* op = nullptr;        // "matmul_fwd" or "matmul_bwd"
    const char* products = nullptr;  // "y", "y+=", "dx", "dx+=", "dw", "dx,dw", "dx+=,dw", "db"
    int64_t n = 0, i = 0, o = 0;
    double seconds = 0, flops = 0;
    int64_t calls = 0;
  };
  std::vector<Entry> entries;  // in order of first call
  std::vector<Gemm> gemms;     // in order of first call
  OpTimes() {                  // more than every op and matmul shape a step has: no allocation during a step
    entries.reserve(64);
    gemms.reserve(256);
  }
  void add(const char* op, double seconds);
  void add_gemm(const char* op, const char* products, int64_t n, int64_t i, int64_t o, double flops,
                double seconds);
  double total_seconds() const;
};

// n elements of T for each of `copies` threads, 64-byte aligned slices.
template <class T>
struct PerThread {
  T* base = nullptr;
  int64_t stride = 0;  // elements between slices
  int copies = 0;
  T* get(int thread) const {
    WERSA_ASSERT(thread >= 0 && thread < copies, "scratch slice of thread ", thread, " (", copies,
                 " planned)");
    return base + thread * stride;
  }
};

class Ctx {
 public:
  explicit Ctx(Device device = Device::CPU, ScratchPolicy policy = ScratchPolicy::Planned);
  ~Ctx();
  Ctx(const Ctx&) = delete;
  Ctx& operator=(const Ctx&) = delete;

  Device device() const { return device_; }
  void* stream() const { return stream_; }  // CUDA: the context's own stream (CPU: nullptr)
  void sync();                              // waits for the work queued on the stream (CUDA)
  void* blas();                             // cuBLAS handle on CUDA (made on first use)
  int threads() const;                      // CPU threads a kernel may use
  bool planning() const { return planning_; }
  bool in_op() const { return depth_ > 0; }  // inside an op call (a composite op's kernels)

  // Op calls of this context add their times to `t` from now on (nullptr: stop; see OpTimes).
  void set_op_times(OpTimes* t) { op_times_ = t; }
  OpTimes* op_times() const { return op_times_; }

  // Runs fn in planning mode (see above), then sizes the scratch for everything planned so far.
  void plan(const std::function<void()>& fn);
  size_t scratch_bytes() const { return capacity_; }

  // Scratch for the current op call (valid until it returns). Null while planning.
  template <class T>
  T* take(int64_t n) {
    return static_cast<T*>(take_bytes(size_t(n) * sizeof(T)));
  }
  template <class T>
  PerThread<T> per_thread(int64_t n) {
    PerThread<T> p;
    p.copies = threads();
    p.stride = (n * int64_t(sizeof(T)) + 63) / 64 * 64 / int64_t(sizeof(T));
    p.base = take<T>(p.stride * p.copies);
    return p;
  }

 private:
  friend class ScratchScope;
  void* take_bytes(size_t bytes);
  void enter();
  void leave();
  Device device_;
  ScratchPolicy policy_;
  void* stream_ = nullptr;
  void* blas_ = nullptr;
  bool planning_ = false;
  int depth_ = 0;
  OpTimes* op_times_ = nullptr;
  void* base_ = nullptr;
  size_t capacity_ = 0, offset_ = 0, peak_ = 0;
  std::vector<void*> overflow_;  // Grow policy: blocks taken beyond the capacity during one call
};

// Brackets one op call: the outermost scope starts the scratch empty (a composite op's inner
// kernels take after it).
class ScratchScope {
 public:
  explicit ScratchScope(Ctx& c) : c_(c) { c_.enter(); }
  ~ScratchScope() { c_.leave(); }
  ScratchScope(const ScratchScope&) = delete;
  ScratchScope& operator=(const ScratchScope&) = delete;

 private:
  Ctx& c_;
};

}  // namespace wersa

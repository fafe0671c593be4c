// Helpers for deterministic CPU reductions. A reduction over rows is cut into a fixed number of
// contiguous blocks that depends only on the row count, never on the thread count; each block
// is summed serially in row order (in double) and the block sums are then added in block order.
// The result is bitwise the same on every run and with any number of threads.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace wersa::cpu {

struct FixedBlocks {
  int64_t n = 0, count = 0;  // [0, n) cut into `count` blocks of near-equal size
  FixedBlocks(int64_t n_, int64_t max_blocks) : n(n_), count(std::min(n_, max_blocks)) {}
  int64_t begin(int64_t b) const { return n * b / count; }
  int64_t end(int64_t b) const { return n * (b + 1) / count; }
};

// Grow-only scratch owned by the calling thread (the OpenMP workers it starts may write into
// it). `slot` separates buffers that one kernel needs at the same time. Not zeroed.
inline double* scratch_f64(size_t n, int slot = 0) {
  thread_local std::vector<double> buf[2];
  std::vector<double>& v = buf[slot];
  if (v.size() < n) v.resize(n);
  return v.data();
}

// The same for any element type: one grow-only buffer per (thread, T, Slot).
template <class T, int Slot>
T* thread_scratch(int64_t n) {
  thread_local std::vector<T> buf;
  if (int64_t(buf.size()) < n) buf.resize(size_t(n));
  return buf.data();
}

// y += a x over n contiguous elements (a loop the compiler vectorises).
template <class T>
inline void axpy_row(int64_t n, T a, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace wersa::cpu

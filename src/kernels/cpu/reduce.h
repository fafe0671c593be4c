// Helpers for deterministic CPU reductions. A reduction over rows is cut into a fixed number of
// contiguous blocks that depends only on the row count, never on the thread count; each block
// is summed serially in row order (in double) and the block sums are then added in block order.
// The result is bitwise the same on every run and with any number of threads.
#pragma once
#include <algorithm>
#include <cstdint>

namespace wersa::cpu {

struct FixedBlocks {
  int64_t n = 0, count = 0;  // [0, n) cut into `count` blocks of near-equal size
  FixedBlocks(int64_t n_, int64_t max_blocks) : n(n_), count(std::min(n_, max_blocks)) {}
  int64_t begin(int64_t b) const { return n * b / count; }
  int64_t end(int64_t b) const { return n * (b + 1) / count; }
};

// sum over c in [0, n) of term(c) (a double), lane j summing c = j mod 16 and the lanes then added
// in order: a fixed order (the same on every run) that vectorises, where one serial double sum
// waits on each add's latency.
template <class F>
inline double lane_sum(int64_t n, F term) {
  constexpr int64_t W = 16;
  double acc[W] = {};
  int64_t c = 0;
  for (; c + W <= n; c += W)
    for (int64_t j = 0; j < W; ++j) acc[j] += term(c + j);
  for (int64_t j = 0; c < n; ++c, ++j) acc[j] += term(c);
  double s = 0;
  for (int64_t j = 0; j < W; ++j) s += acc[j];
  return s;
}

// y += a x over n contiguous elements (a loop the compiler vectorises).
template <class T>
inline void axpy_row(int64_t n, T a, const T* x, T* y) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace wersa::cpu

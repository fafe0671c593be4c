// Below this many elements an elementwise or per-row CPU kernel runs on the calling thread: an
// OpenMP parallel region costs microseconds (far more when a core is busy elsewhere), more than
// the work it would split. Generation calls these kernels on one row per token.
#pragma once
#include <algorithm>
#include <cstdint>

namespace wersa::cpu {
constexpr int64_t kParallelMinElems = int64_t(1) << 14;

// f(i) for i in [0, n): split over an OpenMP team when `parallel`, else a plain loop on the
// calling thread. A branch, not a region with a false if clause: libgomp still ends such a region
// with a futex system call, far dearer than the branch, and a decode step calls these kernels
// dozens of times per token.
template <class F>
void parallel_for(int64_t n, bool parallel, F&& f) {
  if (parallel) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) f(i);
  } else {
    for (int64_t i = 0; i < n; ++i) f(i);
  }
}

// f(i0, len) over [0, n) in blocks of kElemBlock elements (len <= kElemBlock), the blocks in
// parallel from kParallelMinElems elements on: the driver of the vectorised elementwise kernels.
constexpr int64_t kElemBlock = 4096;
template <class F>
void for_elem_blocks(int64_t n, F f) {
  const int64_t nb = (n + kElemBlock - 1) / kElemBlock;
  parallel_for(nb, n >= kParallelMinElems,
               [&](int64_t b) { f(b * kElemBlock, std::min(kElemBlock, n - b * kElemBlock)); });
}
}  // namespace wersa::cpu

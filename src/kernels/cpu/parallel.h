// Below this many elements an elementwise or per-row CPU kernel runs on the calling thread: an
// OpenMP parallel region costs microseconds (far more when a core is busy elsewhere), more than
// the work it would split. Generation calls these kernels on one row per token.
#pragma once
#include <cstdint>

namespace wersa::cpu {
constexpr int64_t kParallelMinElems = int64_t(1) << 14;
}  // namespace wersa::cpu

// The CPU thread count and the GEMV split size (set_gemv_split_bytes) for one scope: tests of the
// decode paths that run on one thread or split over the decode team.
#pragma once
#include <omp.h>

#include <cstdint>

#include "wersa/backend/backend.h"

namespace wersa::test {

struct Threads {
  int before = omp_get_max_threads();
  Threads(int n, int64_t split_bytes) {
    omp_set_num_threads(n);
    set_gemv_split_bytes(split_bytes);
  }
  ~Threads() {
    omp_set_num_threads(before);
    set_gemv_split_bytes(-1);
  }
  Threads(const Threads&) = delete;
  Threads& operator=(const Threads&) = delete;
};

}  // namespace wersa::test

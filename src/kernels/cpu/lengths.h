// Internal to the CPU kernels: the per-sequence lengths of a padded batch (spec: "Classification";
// sequence b is real in rows t < lengths[b]), validated where they are, before a kernel writes.
#pragma once
#include <cstdint>

#include "wersa/common/error.h"
#include "wersa/tensor/tensor.h"

namespace wersa::cpu {

// lengths [B] i32, each in [1, T]: a wersa::Error naming the op, the sequence and its length.
inline const int32_t* checked_lengths(const char* op, const Tensor& lengths, int64_t T) {
  const int32_t* n = lengths.ptr<int32_t>();
  for (int64_t b = 0; b < lengths.numel(); ++b)
    WERSA_CHECK(n[b] >= 1 && n[b] <= T, op, ": sequence ", b, " has length ", n[b], ", outside [1, ", T,
                "] (the padded length)");
  return n;
}

}  // namespace wersa::cpu

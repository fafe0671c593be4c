// The memory of a training run, known before anything is allocated: the run's model, optimizer
// and workspace are built inside a backend DryRun (address space only, nothing touched), so the
// estimate is what the same planning code will allocate, arena by arena, plus the planned scratch.
// Host-side buffers outside the arenas (the data set's index, a text data set's tokens, the
// logger) are not included; they are small next to the arenas for shard data.
#pragma once
#include <string>

#include "wersa/backend/backend.h"
#include "wersa/model/config.h"

namespace wersa {

struct MemoryEstimate {
  size_t params = 0;        // parameters and random-feature buffers (and bf16 shadow weights)
  size_t grads = 0;         // parameter gradients
  size_t optimizer = 0;     // Adam moments m and v (and the optimizer's scalars)
  size_t activations = 0;   // the workspace: activations, backward temporaries, ids, logits
  size_t scratch = 0;       // the execution context's planned scratch
  size_t total = 0;         // the most allocated at once (every arena lives for the whole run)
  std::string str() const;  // "1.2 GiB (parameters ..., gradients ..., ...)"
};

MemoryEstimate estimate_train_memory(const Config& cfg);

// The limit a run is checked against: `max_bytes` when > 0, else the available memory of the
// device the run uses (the host's for the CPU; 0 when unknown: no check).
size_t memory_limit(size_t max_bytes, Device dev = Device::CPU);
// Refuses (one line, with the estimate) a run whose estimate exceeds the limit.
void check_memory(const MemoryEstimate& e, size_t limit, const std::string& what);
// "123", "512K", "16M", "1.5G", "2T" (powers of 1024; a trailing "B"/"iB" allowed) -> bytes.
size_t parse_bytes(const std::string& text, const std::string& what);

}  // namespace wersa

// Token embedding lookup:
//   y[n, :] = table[tokens[n], :]                 tokens [N] i32, table [V, D], y [N, D]
// Derivative (a scatter-add; tokens that repeat add up):
//   dtable[v, :] += sum_{n : tokens[n] = v} dy[n, :]     (parameter gradient: accumulated)
// y is overwritten. The forward also takes a bf16 table (inference copies), widened exactly to
// y's dtype. The backward needs the tokens from the forward (not y or the table).
// Token ids are validated where data enters the engine (datasets, prompts, decode_step). The
// kernels still guard memory: on the CPU an id outside [0, V) reaching them is a wersa::Error
// naming the position, the id and V, raised before anything is written (the CPU kernel scans the
// ids on the CPU, where they are; nothing is copied back from a device). On CUDA the ids stay on
// the device: the forward writes a NaN row for such an id and the backward skips it, reading and
// writing nothing outside the tensors. The backward is deterministic: every element of dtable
// gets its contributions in token order from one thread, no atomics.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct EmbeddingFwd {
  Tensor y;              // [N, D] out (overwritten)
  Tensor tokens, table;  // [N] i32, [V, D]
};
struct EmbeddingBwd {
  Tensor dtable;      // [V, D] accumulated
  Tensor dy, tokens;  // [N, D], [N] i32
};

void embedding_fwd(Ctx& ctx, const EmbeddingFwd& a);
void embedding_bwd(Ctx& ctx, const EmbeddingBwd& a);

}  // namespace wersa

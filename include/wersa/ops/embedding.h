// Token embedding lookup:
//   y[n, :] = table[tokens[n], :]                 tokens [N] i32, table [V, D], y [N, D]
// Derivative (a scatter-add; tokens that repeat add up):
//   dtable[v, :] += sum_{n : tokens[n] = v} dy[n, :]     (parameter gradient: accumulated)
// y is overwritten. The forward also takes a bf16 table (inference copies, CPU only), widened
// exactly to y's dtype. The backward needs the tokens from the forward (not y or the table).
// Token ids are validated where data enters the engine (datasets, prompts, decode_step). The
// kernels still guard memory: an id outside [0, V) reaching them is a wersa::Error naming the
// position, the id and V, raised before anything is written (the CPU kernel scans the ids on the
// CPU, where they are; nothing is copied back from a device). The backward is deterministic:
// parallel over column blocks of D, serial over tokens in order, no atomics.
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

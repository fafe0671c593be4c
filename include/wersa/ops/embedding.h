// Token embedding lookup:
//   y[n, :] = table[tokens[n], :]                 tokens [N] i32, table [V, D], y [N, D]
// Derivative (a scatter-add; tokens that repeat add up):
//   dtable[v, :] += sum_{n : tokens[n] = v} dy[n, :]     (parameter gradient: accumulated)
// y is overwritten. The backward needs the tokens from the forward (not y or the table).
// A token id outside [0, V) is a user error: both calls check every id before running and raise
// wersa::Error naming the position, the id and V. The backward is deterministic: parallel over
// column blocks of D, serial over tokens in order, no atomics.
#pragma once
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

void embedding_fwd(const EmbeddingFwd& a);
void embedding_bwd(const EmbeddingBwd& a);

namespace cpu {
template <class T>
void embedding_fwd(const EmbeddingFwd& a);
template <class T>
void embedding_bwd(const EmbeddingBwd& a);
}  // namespace cpu

}  // namespace wersa

#include "wersa/ops/embedding.h"

#include "check.h"
#include "dispatch.h"

namespace wersa {

// The token ids themselves are checked by the kernels, where the ids are (before writing).

void embedding_fwd(Ctx& ctx, const EmbeddingFwd& a) {
  const detail::ArgCheck c(ctx, "embedding_fwd");
  c.need(a.y, "y").need(a.tokens, "tokens").need(a.table, "table");
  c.that(a.table.rank() == 2, "table must be 2-D [V, D]: ", a.table);
  c.that(a.tokens.rank() == 1, "tokens must be 1-D [N]: ", a.tokens);
  const int64_t N = a.tokens.dim(0), D = a.table.dim(1);
  c.need(a.y, "y", Shape{N, D}).dtype(DType::I32, {&a.tokens}).floating(a.y);
  if (a.table.dtype != DType::BF16)  // else an inference copy's table (widened row by row)
    c.dtype(a.y.dtype, {&a.table});
  WERSA_DISPATCH(ctx, embedding_fwd, a, a.y.dtype);
}

void embedding_bwd(Ctx& ctx, const EmbeddingBwd& a) {
  const detail::ArgCheck c(ctx, "embedding_bwd");
  c.need(a.dtable, "dtable").need(a.dy, "dy").need(a.tokens, "tokens");
  c.that(a.dtable.rank() == 2, "dtable must be 2-D [V, D]: ", a.dtable);
  c.that(a.tokens.rank() == 1, "tokens must be 1-D [N]: ", a.tokens);
  const int64_t N = a.tokens.dim(0), D = a.dtable.dim(1);
  c.need(a.dy, "dy", Shape{N, D}).dtype(DType::I32, {&a.tokens}).floating(a.dtable);
  c.dtype(a.dtable.dtype, {&a.dy});
  WERSA_DISPATCH(ctx, embedding_bwd, a, a.dtable.dtype);
}

}  // namespace wersa

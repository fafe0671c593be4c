#include "wersa/ops/embedding.h"

#include <vector>

#include "wersa/backend/backend.h"
#include "wersa/ops/dispatch.h"

namespace wersa {
namespace {

// Every id must lie in [0, V): a bad id would read or write outside the table. Scanned serially
// so that the first bad position is the one reported. Ids on a GPU are copied to the host first.
void check_token_range(const char* op, const Tensor& tokens, int64_t V) {
  const int64_t N = tokens.numel();
  const int32_t* ids = tokens.ptr<int32_t>();
  thread_local std::vector<int32_t> host;
  if (tokens.device != Device::CPU) {
    if (host.size() < size_t(N)) host.resize(size_t(N));
    tensor_copy(Tensor(host.data(), DType::I32, Device::CPU, tokens.shape), tokens);
    ids = host.data();
  }
  for (int64_t n = 0; n < N; ++n)
    WERSA_CHECK(ids[n] >= 0 && ids[n] < V, op, ": token id ", ids[n], " at position ", n, " of ",
                tokens.describe(), " is outside the vocabulary [0, ", V, ")");
}

}  // namespace

void embedding_fwd(const EmbeddingFwd& a) {
  const char* op = "embedding_fwd";
  check_defined(op, a.y, "y");
  check_defined(op, a.tokens, "tokens");
  check_defined(op, a.table, "table");
  WERSA_CHECK(a.table.rank() == 2, op, ": table must be 2-D [V, D]: ", a.table.describe());
  WERSA_CHECK(a.tokens.rank() == 1, op, ": tokens must be 1-D [N]: ", a.tokens.describe());
  const int64_t N = a.tokens.dim(0), V = a.table.dim(0), D = a.table.dim(1);
  check_shape(op, a.y, Shape{N, D});
  check_dtype(op, a.tokens, DType::I32);
  check_dtype(op, a.table, a.y.dtype);
  check_same_device(op, {&a.y, &a.tokens, &a.table});
  check_token_range(op, a.tokens, V);
  WERSA_DISPATCH(embedding_fwd, a, a.y.device, a.y.dtype);
}

void embedding_bwd(const EmbeddingBwd& a) {
  const char* op = "embedding_bwd";
  check_defined(op, a.dtable, "dtable");
  check_defined(op, a.dy, "dy");
  check_defined(op, a.tokens, "tokens");
  WERSA_CHECK(a.dtable.rank() == 2, op, ": dtable must be 2-D [V, D]: ", a.dtable.describe());
  WERSA_CHECK(a.tokens.rank() == 1, op, ": tokens must be 1-D [N]: ", a.tokens.describe());
  const int64_t N = a.tokens.dim(0), V = a.dtable.dim(0), D = a.dtable.dim(1);
  check_shape(op, a.dy, Shape{N, D});
  check_dtype(op, a.tokens, DType::I32);
  check_dtype(op, a.dy, a.dtable.dtype);
  check_same_device(op, {&a.dtable, &a.dy, &a.tokens});
  check_token_range(op, a.tokens, V);
  WERSA_DISPATCH(embedding_bwd, a, a.dtable.device, a.dtable.dtype);
}

}  // namespace wersa

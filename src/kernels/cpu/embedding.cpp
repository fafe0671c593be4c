// CPU embedding: y[n] = table[tokens[n]]; backward dtable[tokens[n]] += dy[n].
// Both first scan the ids serially (the first bad position is the one reported) and raise before
// writing anything. The backward is parallel over column blocks of D and serial over tokens, so
// every element of dtable receives its contributions in token order from one thread:
// deterministic, no atomics, whatever the column partition (which may therefore follow the thread
// count).
#include "wersa/ops/embedding.h"

#include <algorithm>

#include "kernels.h"
#include "parallel.h"

namespace wersa::cpu {
namespace {

// Every id must lie in [0, V): a bad id would read or write outside the table.
void check_token_range(const char* op, const Tensor& tokens, int64_t V) {
  const int64_t N = tokens.numel();
  const int32_t* ids = tokens.ptr<int32_t>();
  for (int64_t n = 0; n < N; ++n)
    WERSA_CHECK(ids[n] >= 0 && ids[n] < V, op, ": token id ", ids[n], " at position ", n, " of ",
                tokens.describe(), " is outside the vocabulary [0, ", V, ")");
}

}  // namespace

template <class T>
void embedding_fwd(Ctx&, const EmbeddingFwd& a) {
  const int64_t N = a.tokens.dim(0), D = a.table.dim(1);
  check_token_range("embedding_fwd", a.tokens, a.table.dim(0));
  const int32_t* tok = a.tokens.ptr<int32_t>();
  T* y = a.y.ptr<T>();
  if (a.table.dtype == DType::BF16) {  // bf16 inference weights: rows widened exactly
    const bf16* table = a.table.ptr<bf16>();
    parallel_for(N, N * D >= kParallelMinElems, [&](int64_t n) {
      for (int64_t j = 0; j < D; ++j) y[n * D + j] = T(bf16_to_float(table[int64_t(tok[n]) * D + j]));
    });
    return;
  }
  const T* table = a.table.ptr<T>();
  parallel_for(N, N * D >= kParallelMinElems,
               [&](int64_t n) { std::copy_n(table + int64_t(tok[n]) * D, D, y + n * D); });
}

template <class T>
void embedding_bwd(Ctx&, const EmbeddingBwd& a) {
  const int64_t N = a.tokens.dim(0), D = a.dtable.dim(1);
  check_token_range("embedding_bwd", a.tokens, a.dtable.dim(0));
  const int32_t* tok = a.tokens.ptr<int32_t>();
  const T* dy = a.dy.ptr<T>();
  T* dtable = a.dtable.ptr<T>();
  // Columns per block: a multiple of 8 (vector width), about two blocks per thread.
  const int64_t threads = omp_get_max_threads();
  const int64_t per_block = (D + 2 * threads - 1) / (2 * threads);
  const int64_t width = std::max<int64_t>(8, (per_block + 7) / 8 * 8);
  const int64_t blocks = (D + width - 1) / width;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t j0 = blk * width, j1 = std::min(D, j0 + width);
    for (int64_t n = 0; n < N; ++n) {
      T* dst = dtable + int64_t(tok[n]) * D;
      const T* src = dy + n * D;
      for (int64_t j = j0; j < j1; ++j) dst[j] += src[j];
    }
  }
}

template void embedding_fwd<float>(Ctx&, const EmbeddingFwd&);
template void embedding_fwd<double>(Ctx&, const EmbeddingFwd&);
template void embedding_bwd<float>(Ctx&, const EmbeddingBwd&);
template void embedding_bwd<double>(Ctx&, const EmbeddingBwd&);

}  // namespace wersa::cpu

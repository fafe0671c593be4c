// CUDA token embedding (include/wersa/ops/embedding.h): y[n, :] = table[tokens[n], :], backward
// dtable[v, :] += sum over n with tokens[n] = v of dy[n, :].
// Forward: grid-stride over the N * D elements of y, each read from its token's row (f32/f64 table,
// or a bf16 table widened exactly: bits << 16 as a float). An id outside [0, V) (the ids are on the
// device and not checked on the host) gives a NaN row; nothing is read outside the table.
// Backward, deterministic without atomics: the grid is (vocabulary group, column block). Block
// (g, c) owns the vocabulary rows v with v % groups == g and the columns of block c, one column per
// thread. It walks all the tokens in order (staged through shared memory a block-width at a time,
// marked owned or not once per block) and, for every token it owns, each thread adds dy[n, col] to a running
// sum of dtable[v, col] (reloaded when the row changes, stored when it changes again). So every element of
// dtable receives its contributions in token order from one thread -- the CPU's order, bitwise -- and the
// rows of a frequent token are spread over the column blocks. The vocabulary is interleaved over
// the groups so that frequent (small) ids do not all fall to one group. Ids outside [0, V) are
// owned by no group: skipped.
#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/embedding.h"

namespace wersa::cuda {

namespace {

template <class T>
__device__ T load_row(const T* table, int64_t i) {
  return table[i];
}
template <class T>
__device__ T load_row(const uint16_t* table, int64_t i) {
  return T(__uint_as_float(unsigned(table[i]) << 16));
}

template <class T, class S>
__global__ void embedding_fwd_kernel(T* y, const int32_t* tokens, const S* table, int64_t N, int64_t D,
                                     int64_t V) {
  const int64_t total = N * D;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t n = i / D, j = i - n * D;
    const int64_t v = tokens[n];
    y[i] = v >= 0 && v < V ? load_row<T>(table, v * D + j) : T(NAN);
  }
}

constexpr int kBwdThreads = 128;  // columns per block of the backward, and tokens staged at once

template <class T>
__global__ void embedding_bwd_kernel(T* dtable, const T* dy, const int32_t* tokens, int64_t N, int64_t D,
                                     int64_t V, int groups) {
  __shared__ int32_t ids[kBwdThreads];
  const int g = int(blockIdx.x);
  const int64_t col = blockIdx.y * int64_t(blockDim.x) + threadIdx.x;
  const bool active = col < D;  // threads past D still stage ids and meet the barriers
  int64_t cur = -1;             // the row whose running sum `acc` holds
  T acc = 0;
  for (int64_t n0 = 0; n0 < N; n0 += blockDim.x) {
    const int64_t m = N - n0 < int64_t(blockDim.x) ? N - n0 : int64_t(blockDim.x);
    __syncthreads();  // the previous stage is consumed
    // Each id is staged once per block: itself when this block owns it, else -1 (past the end of
    // the tokens, the last one again: never read, as k < m). Branch-free: the simulator's host
    // compiler may otherwise copy the barrier below into both arms of an `if`, which the
    // simulator reports as divergent barriers.
    const int64_t src = n0 + threadIdx.x;
    const int id = tokens[src < N ? src : N - 1];
    const bool mine = (id >= 0) & (id < V) & (id % groups == g);
    ids[threadIdx.x] = mine ? id : -1;
    __syncthreads();
    if (!active) continue;
    for (int64_t k = 0; k < m; ++k) {
      const int64_t v = ids[k];
      if (v < 0) continue;
      if (v != cur) {
        if (cur >= 0) dtable[cur * D + col] = acc;
        cur = v;
        acc = dtable[v * D + col];
      }
      acc += dy[(n0 + k) * D + col];
    }
  }
  if (active && cur >= 0) dtable[cur * D + col] = acc;
}

}  // namespace

void embedding_fwd(Ctx& ctx, const EmbeddingFwd& a) {
  const int64_t N = a.tokens.dim(0), D = a.table.dim(1), V = a.table.dim(0);
  if (N * D == 0) return;
  by_dtype(a.y.dtype, "embedding_fwd", [&](auto t) {
    using T = decltype(t);
    if (a.table.dtype == DType::BF16)
      WERSA_LAUNCH((embedding_fwd_kernel<T, uint16_t>), blocks_for(N * D), kThreads, 0, stream(ctx),
                   a.y.ptr<T>(), a.tokens.ptr<int32_t>(), static_cast<const uint16_t*>(a.table.data), N, D,
                   V);
    else
      WERSA_LAUNCH((embedding_fwd_kernel<T, T>), blocks_for(N * D), kThreads, 0, stream(ctx), a.y.ptr<T>(),
                   a.tokens.ptr<int32_t>(), a.table.ptr<T>(), N, D, V);
  });
}

void embedding_bwd(Ctx& ctx, const EmbeddingBwd& a) {
  const int64_t N = a.tokens.dim(0), D = a.dtable.dim(1), V = a.dtable.dim(0);
  if (N == 0 || D == 0 || V == 0) return;
  // About 512 blocks in all: enough to fill a GPU, each re-reading the N ids (small, from cache).
  const int64_t col_blocks = (D + kBwdThreads - 1) / kBwdThreads;
  const int64_t want = (512 + col_blocks - 1) / col_blocks;
  const int groups = int(want < V ? want : V);
  by_dtype(a.dtable.dtype, "embedding_bwd", [&](auto t) {
    using T = decltype(t);
    WERSA_LAUNCH(embedding_bwd_kernel<T>, dim3(unsigned(groups), unsigned(col_blocks)), kBwdThreads, 0,
                 stream(ctx), a.dtable.ptr<T>(), a.dy.ptr<T>(), a.tokens.ptr<int32_t>(), N, D, V, groups);
  });
}

}  // namespace wersa::cuda

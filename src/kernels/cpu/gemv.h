// Matrix-vector products for generation (one row per token). Own kernels rather than BLAS gemv:
// they are built for AVX-512, AVX2 and plain x86-64 and pick the best at run time (so they do not
// depend on the BLAS library's CPU detection), and they are deterministic: every output is
// computed by one thread in a fixed order (64-byte vector lanes over i, then the lanes added as a
// fixed tree), whatever the thread count and, for the multi-row versions, the other rows.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "wersa/tensor/bf16.h"

namespace wersa::cpu {

// Chunks of a split GEMV's nblk blocks of four rows (`bytes` of weights): each at least
// kGemvChunkBytes, at most 8 per thread (the team's threads claim them one at a time, so a thread
// that falls behind on a busy machine leaves the rest to the others).
constexpr int64_t kGemvChunkBytes = int64_t(32) << 10;
inline int gemv_chunks(int64_t nblk, int64_t bytes) {
  const int64_t cap = std::min<int64_t>(nblk, 8 * int64_t(omp_get_max_threads()));
  return int(std::max<int64_t>(1, std::min(cap, bytes / kGemvChunkBytes)));
}

// y[o] = sum_i w[o * ldw + i] x[i] (+ b[o]) (+ y[o] when accumulate), o < O, i < I; b may be null.
// Splits the rows over the decode team (team.h) when the weights take at least gemv_split_bytes()
// (backend.h) and `threads` allows it.
void gemv_rows(int64_t O, int64_t I, const float* w, int64_t ldw, const float* x, const float* b,
               bool accumulate, float* y, bool threads = true);
void gemv_rows(int64_t O, int64_t I, const double* w, int64_t ldw, const double* x, const double* b,
               bool accumulate, double* y, bool threads = true);

// A few rows (decoding several sequences together): y[k * ldy + o] = sum_i w[o * ldw + i]
// x[k * ldx + i] (+ b[o]) (+ y when accumulate), k < nx. Each block of rows of w is read once for
// all nx rows of x, and every output is computed exactly as gemv_rows computes it for its row of
// x alone (the same lanes, the same order): a row's results are bitwise those of the one-row GEMV,
// whatever nx, the other rows and the thread count. Splits over the decode team when the weights'
// bytes times nx reach gemv_split_bytes(). matmul_fwd takes it for up to kGemvMaxRows rows (on
// the 2-core EPYC VM it beats sgemm up to 24 rows, docs/performance.md; 16 leaves a margin).
constexpr int64_t kGemvMaxRows = 16;
void gemv_rows_multi(int64_t nx, int64_t O, int64_t I, const float* w, int64_t ldw, const float* x,
                     int64_t ldx, const float* b, bool accumulate, float* y, int64_t ldy,
                     bool threads = true);
void gemv_rows_multi(int64_t nx, int64_t O, int64_t I, const double* w, int64_t ldw, const double* x,
                     int64_t ldx, const double* b, bool accumulate, double* y, int64_t ldy,
                     bool threads = true);

// The same with bf16 weights (gemv_bf16.cpp): each weight widens exactly to fp32 as it is loaded;
// products and sums in fp32, in a fixed order of its own (deterministic for any thread count,
// equal to the fp32 kernel on the widened matrix up to fp32 rounding). The multi-row version
// gives every row of x the bits gemv_rows gives it alone; it needs `scratch` of
// nx * min(I, kGemvBf16Chunk) floats (x permuted to the kernel's order, a chunk of columns at a time).
constexpr int64_t kGemvBf16Chunk = 8192;
void gemv_rows(int64_t O, int64_t I, const bf16* w, int64_t ldw, const float* x, const float* b,
               bool accumulate, float* y, bool threads = true);
void gemv_rows_multi(int64_t nx, int64_t O, int64_t I, const bf16* w, int64_t ldw, const float* x,
                     int64_t ldx, const float* b, bool accumulate, float* y, int64_t ldy, float* scratch,
                     bool threads = true);

// The versions of the row kernels above: the GEMVs take the best the CPU runs (gemv_isa()), at
// most the one gemv_limit_isa() names (tests run each version the CPU has; returns the previous).
enum class GemvIsa { Base = 0, Avx2 = 1, Avx512 = 2 };
GemvIsa gemv_isa();
GemvIsa gemv_limit_isa(GemvIsa most);

// y[i] = sum_o p[o] w[o * ldw + i] (overwritten; o ascending, zero weights skipped). One thread.
void gemv_t(int64_t O, int64_t I, const float* w, int64_t ldw, const float* p, float* y);
void gemv_t(int64_t O, int64_t I, const double* w, int64_t ldw, const double* p, double* y);

// The same for nx vectors at once, each row of w read once for all of them (attention over a KV
// cache for the query heads of one kv head): one thread, fixed order.
//   S[k * O + o] = sum_i w[o * ldw + i] x[k * I + i]                (k < nx, overwritten)
//   Y[k * I + i] = sum_o P[k * O + o] w[o * ldw + i]                (k < nx, overwritten)
void dot_rows_multi(int64_t O, int64_t I, const float* w, int64_t ldw, const float* x, int nx, float* S);
void dot_rows_multi(int64_t O, int64_t I, const double* w, int64_t ldw, const double* x, int nx, double* S);
void gemv_t_multi(int64_t O, int64_t I, const float* w, int64_t ldw, const float* P, int nx, float* Y);
void gemv_t_multi(int64_t O, int64_t I, const double* w, int64_t ldw, const double* P, int nx, double* Y);

}  // namespace wersa::cpu

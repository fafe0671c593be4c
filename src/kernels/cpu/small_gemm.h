// Products of many rows with a small right-hand matrix, for the random-feature maps (a head
// dimension by a feature count: OpenBLAS reached about 115 GFLOP/s on these shapes, this about twice
// that, and a mask or an activation rides along):
//   out[r, n] = post(alpha * acc),  acc = acc0 + sum_k x(r, k) W[k, n]
// with W row-major (leading dimension ldw), x(r, k) read through a functor (a stride, a transpose,
// a mask), acc0 = 0 or out[r, n] (accumulate, alpha 1). Every output element is the same chain,
// whatever the blocking: acc = acc0, then acc = fma(x(r, k), W[k, n], acc) for k = 0, 1, ..., K-1.
// So a row's result depends neither on the rows around it, nor on the thread count, nor on the
// vector width. Blocks of kRows rows x kCols columns keep their accumulators in registers; the
// columns past the last whole vector run one element at a time, several rows side by side.
#pragma once
#include <algorithm>
#include <cstdint>

#include "parallel.h"
#include "simd.h"

namespace wersa::cpu {

namespace small_gemm_detail {
constexpr int kRows = 4;
constexpr int kVecs = simd::kLanes >= 16 ? 4 : (simd::kLanes >= 8 ? 2 : 4);  // vectors per row block
constexpr int64_t kCols = int64_t(kVecs) * simd::kLanes;
constexpr int64_t kTaskRows = 64;  // rows per parallel task of small_gemm_rows
}  // namespace small_gemm_detail

// RB rows from row r, the columns [0, nvec_cols) covered by whole vectors.
template <int RB, class X, class Post>
inline void small_gemm_rows_vec(int64_t r, int64_t K, int64_t nvec_cols, X& x, const float* W, int64_t ldw,
                                float alpha, float* out, int64_t ldo, bool accumulate, Post& post) {
  using namespace small_gemm_detail;
  using simd::kLanes;
  using simd::VF;
  for (int64_t n0 = 0; n0 < nvec_cols; n0 += kCols) {
    const int nv = int(std::min<int64_t>(kVecs, (nvec_cols - n0) / kLanes));
    VF acc[RB][kVecs];
    for (int i = 0; i < RB; ++i)
      for (int v = 0; v < kVecs; ++v)
        acc[i][v] = accumulate && v < nv ? simd::load(out + (r + i) * ldo + n0 + v * kLanes) : VF(0.f);
    if (nv == kVecs) {
      for (int64_t k = 0; k < K; ++k) {
        const float* w = W + k * ldw + n0;
        VF wv[kVecs];
        for (int v = 0; v < kVecs; ++v) wv[v] = simd::load(w + v * kLanes);
        for (int i = 0; i < RB; ++i) {
          const VF xi(x(r + i, k));
          for (int v = 0; v < kVecs; ++v) acc[i][v] = simd::fma_f(xi, wv[v], acc[i][v]);
        }
      }
    } else {
      for (int64_t k = 0; k < K; ++k) {
        const float* w = W + k * ldw + n0;
        for (int i = 0; i < RB; ++i) {
          const VF xi(x(r + i, k));
          for (int v = 0; v < nv; ++v) acc[i][v] = simd::fma_f(xi, simd::load(w + v * kLanes), acc[i][v]);
        }
      }
    }
    for (int i = 0; i < RB; ++i)
      for (int v = 0; v < nv; ++v)
        simd::store(out + (r + i) * ldo + n0 + v * kLanes, post(VF(alpha) * acc[i][v]));
  }
}

// Rows [r0, r1) on the calling thread. post(v) is called on floats and on simd::VF.
template <class X, class Post>
void small_gemm_block(int64_t r0, int64_t r1, int64_t K, int64_t N, X x, const float* W, int64_t ldw,
                      float alpha, float* out, int64_t ldo, bool accumulate, Post post) {
  using small_gemm_detail::kRows;
  const int64_t nvec_cols = N / simd::kLanes * simd::kLanes;  // columns covered by whole vectors
  int64_t r = r0;
  for (; r + kRows <= r1; r += kRows)
    small_gemm_rows_vec<kRows>(r, K, nvec_cols, x, W, ldw, alpha, out, ldo, accumulate, post);
  for (; r < r1; ++r) small_gemm_rows_vec<1>(r, K, nvec_cols, x, W, ldw, alpha, out, ldo, accumulate, post);
  // The columns past the last whole vector: one element per chain, kTail rows at a time (their
  // chains are independent, so they overlap instead of waiting on each other's latency).
  constexpr int kTail = 8;
  for (int64_t n = nvec_cols; n < N; ++n)
    for (int64_t q = r0; q < r1; q += kTail) {
      const int nr = int(std::min<int64_t>(kTail, r1 - q));
      float acc[kTail];
      for (int i = 0; i < nr; ++i) acc[i] = accumulate ? out[(q + i) * ldo + n] : 0.f;
      for (int64_t k = 0; k < K; ++k) {
        const float w = W[k * ldw + n];
        for (int i = 0; i < nr; ++i) acc[i] = simd::fma_f(x(q + i, k), w, acc[i]);
      }
      for (int i = 0; i < nr; ++i) out[(q + i) * ldo + n] = post(alpha * acc[i]);
    }
}

// All R rows, in parallel tasks of kTaskRows rows when the product is large enough.
template <class X, class Post>
void small_gemm_rows(int64_t R, int64_t K, int64_t N, X x, const float* W, float alpha, float* out,
                     Post post) {
  using small_gemm_detail::kTaskRows;
  const int64_t ntask = (R + kTaskRows - 1) / kTaskRows;
  parallel_for(ntask, R * K * N >= (int64_t(1) << 17) && ntask > 1, [&](int64_t task) {
    const int64_t r0 = task * kTaskRows;
    small_gemm_block(r0, std::min(R, r0 + kTaskRows), K, N, x, W, N, alpha, out, N, false, post);
  });
}

}  // namespace wersa::cpu

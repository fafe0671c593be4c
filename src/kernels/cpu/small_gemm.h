// Products of many rows with a small right-hand matrix, for the random-feature maps (a head
// dimension by a feature count: shapes that OpenBLAS runs far below its large-GEMM rate, and a
// mask or an activation rides along):
//   out[r, n] = post(alpha * acc),  acc = acc0 + sum_k x(r, k) W[k, n]
// with W row-major (leading dimension ldw), x(r, k) read through a functor (a stride, a transpose,
// a mask), acc0 = 0 or out[r, n] (accumulate, alpha 1). Every output element is the same chain,
// whatever the blocking: acc = acc0, then acc = fma(x(r, k), W[k, n], acc) for k = 0, 1, ..., K-1.
// So a row's result depends neither on the rows around it, nor on the thread count, nor on the
// vector width. Blocks of kRows rows x up to kCols + kLanes columns keep their accumulators in
// registers; a last partial vector is masked.
#pragma once
#include <algorithm>
#include <cstdint>

#include "parallel.h"
#include "simd.h"

namespace wersa::cpu {

namespace small_gemm_detail {
constexpr int kRows = 4;
// Vectors per block of columns: kRows * (kVecs + 1) accumulators fit the 32 registers of AVX-512
// and the 16 of AVX2 (the dispatch below goes up to 5 vectors).
constexpr int kVecs = simd::kLanes == 8 ? 2 : 4;
constexpr int64_t kCols = int64_t(kVecs) * simd::kLanes;
constexpr int64_t kTaskRows = 64;  // rows per parallel task of small_gemm_rows
}  // namespace small_gemm_detail

// RB rows from row r, NV vectors of columns from n0, the last holding `last` columns (1..kLanes):
// accumulators in registers across k.
template <int RB, int NV, class X, class Post>
// always_inline: compiled apart, GCC kept storing the accumulators to the stack in every k step.
__attribute__((always_inline)) inline void small_gemm_tile(int64_t r, int64_t n0, int last, int64_t K, X x,
                                                           const float* W, int64_t ldw, float alpha,
                                                           float* out, int64_t ldo, bool accumulate,
                                                           Post& post) {
  using simd::kLanes;
  using simd::VF;
  // The last vector always through the mask (all lanes when last == kLanes): v is a constant
  // once the loops over v are unrolled, so the k loop has no branch.
  const auto ld = [last](const float* p, int v) {
    return v + 1 < NV ? simd::load(p) : simd::load_first(p, last);
  };
  // Every loop over i and v unrolled early (the pragmas): in linear_attention_vec.cpp, GCC 12
  // otherwise kept acc in memory too and stored all of it in every k step.
  VF acc[RB][NV];
#pragma GCC unroll 8
  for (int i = 0; i < RB; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      acc[i][v] = accumulate ? ld(out + (r + i) * ldo + n0 + v * kLanes, v) : VF(0.f);
  for (int64_t k = 0; k < K; ++k) {
    const float* w = W + k * ldw + n0;
    VF wv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) wv[v] = ld(w + v * kLanes, v);
#pragma GCC unroll 8
    for (int i = 0; i < RB; ++i) {
      const VF xi(x(r + i, k));
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[i][v] = simd::fma_f(xi, wv[v], acc[i][v]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < RB; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      float* o = out + (r + i) * ldo + n0 + v * kLanes;
      const VF y = post(VF(alpha) * acc[i][v]);
      if (v + 1 < NV)
        simd::store(o, y);
      else
        simd::store_first(o, y, last);
    }
}

// RB rows from row r, all N columns: blocks of kVecs vectors, the last block up to kVecs + 1
// vectors (so a width like 65 is one block), its last vector masked to the columns that remain.
template <int RB, class X, class Post>
inline void small_gemm_rows_vec(int64_t r, int64_t K, int64_t N, X x, const float* W, int64_t ldw,
                                float alpha, float* out, int64_t ldo, bool accumulate, Post& post) {
  using simd::kLanes;
  using small_gemm_detail::kCols;
  using small_gemm_detail::kVecs;
  for (int64_t n0 = 0; n0 < N;) {
    const int64_t rem = N - n0;
    const int nv = rem > kCols + kLanes ? kVecs : int((rem + kLanes - 1) / kLanes);
    const int last = int(std::min<int64_t>(kLanes, rem - int64_t(nv - 1) * kLanes));
    switch (nv) {
#define WERSA_SMALL_GEMM_NV(n)                                                              \
  case n:                                                                                   \
    if constexpr (n <= kVecs + 1)                                                           \
      small_gemm_tile<RB, n>(r, n0, last, K, x, W, ldw, alpha, out, ldo, accumulate, post); \
    break;
      WERSA_SMALL_GEMM_NV(1)
      WERSA_SMALL_GEMM_NV(2)
      WERSA_SMALL_GEMM_NV(3)
      WERSA_SMALL_GEMM_NV(4)
      WERSA_SMALL_GEMM_NV(5)
#undef WERSA_SMALL_GEMM_NV
    }
    n0 += int64_t(nv - 1) * kLanes + last;
  }
}

// Rows [r0, r1) on the calling thread. post(v) is called on floats and on simd::VF.
template <class X, class Post>
void small_gemm_block(int64_t r0, int64_t r1, int64_t K, int64_t N, X x, const float* W, int64_t ldw,
                      float alpha, float* out, int64_t ldo, bool accumulate, Post post) {
  using small_gemm_detail::kRows;
  int64_t r = r0;
  for (; r + kRows <= r1; r += kRows)
    small_gemm_rows_vec<kRows>(r, K, N, x, W, ldw, alpha, out, ldo, accumulate, post);
  for (; r < r1; ++r) small_gemm_rows_vec<1>(r, K, N, x, W, ldw, alpha, out, ldo, accumulate, post);
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

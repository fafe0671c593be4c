// out[r, n] = post(alpha * sum_k x(r, k) W[k, n]) for many rows r against a small row-major
// W [K x N] (the random-feature matrices: K, N of a head dimension or a feature count, tens of KiB,
// resident in L1/L2), with x(r, k) read through a functor so that a mask or a product can be
// applied on the fly. Every output element is the same chain, whatever the blocking: acc = 0, then
// acc = fma(x(r, k), W[k, n], acc) for k = 0, 1, ..., K-1, then post(alpha * acc). So the result
// of a row depends neither on the rows around it, nor on the thread count, nor on the vector width.
// Blocks of kRows rows x kCols columns keep kRows * kCols / kLanes accumulators in registers; the
// columns past the last whole vector run one element at a time.
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
constexpr int64_t kTaskRows = 64;  // rows per parallel task
}  // namespace small_gemm_detail

// post(v) -> float: applied to each alpha * acc before it is stored (identity, ReLU, ...); the same
// functor is called on floats and on simd::VF.
template <class X, class Post>
void small_gemm_rows(int64_t R, int64_t K, int64_t N, X x, const float* W, float alpha, float* out,
                     Post post) {
  using namespace small_gemm_detail;
  using simd::kLanes;
  using simd::VF;
  const int64_t ntask = (R + kTaskRows - 1) / kTaskRows;
  const int64_t nvec_cols = N / kLanes * kLanes;  // columns covered by whole vectors
  parallel_for(ntask, R * K * N >= (int64_t(1) << 17) && ntask > 1, [&](int64_t task) {
    const int64_t r0 = task * kTaskRows, r1 = std::min(R, r0 + kTaskRows);
    int64_t r = r0;
    for (; r + kRows <= r1; r += kRows) {
      for (int64_t n0 = 0; n0 < nvec_cols; n0 += kCols) {
        const int nv = int(std::min<int64_t>(kVecs, (nvec_cols - n0) / kLanes));
        VF acc[kRows][kVecs];
        for (int i = 0; i < kRows; ++i)
          for (int v = 0; v < kVecs; ++v) acc[i][v] = VF(0.f);
        if (nv == kVecs) {
          for (int64_t k = 0; k < K; ++k) {
            const float* w = W + k * N + n0;
            VF wv[kVecs];
            for (int v = 0; v < kVecs; ++v) wv[v] = simd::load(w + v * kLanes);
            for (int i = 0; i < kRows; ++i) {
              const VF xi(x(r + i, k));
              for (int v = 0; v < kVecs; ++v) acc[i][v] = simd::fma_f(xi, wv[v], acc[i][v]);
            }
          }
        } else {
          for (int64_t k = 0; k < K; ++k) {
            const float* w = W + k * N + n0;
            for (int i = 0; i < kRows; ++i) {
              const VF xi(x(r + i, k));
              for (int v = 0; v < nv; ++v) acc[i][v] = simd::fma_f(xi, simd::load(w + v * kLanes), acc[i][v]);
            }
          }
        }
        for (int i = 0; i < kRows; ++i)
          for (int v = 0; v < nv; ++v)
            simd::store(out + (r + i) * N + n0 + v * kLanes, post(VF(alpha) * acc[i][v]));
      }
    }
    // Rows past the last whole block, and every row's columns past the last whole vector: one
    // element at a time, the same chain.
    const auto one = [&](int64_t row, int64_t n) {
      float acc = 0.f;
      for (int64_t k = 0; k < K; ++k) acc = simd::fma_f(x(row, k), W[k * N + n], acc);
      out[row * N + n] = post(alpha * acc);
    };
    for (int64_t row = r; row < r1; ++row)
      for (int64_t n = 0; n < N; ++n) one(row, n);
    for (int64_t row = r0; row < r; ++row)
      for (int64_t n = nvec_cols; n < N; ++n) one(row, n);
  });
}

}  // namespace wersa::cpu

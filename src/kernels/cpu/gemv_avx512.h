// AVX-512 pieces of the few-row GEMVs (gemv.cpp, gemv_bf16.cpp): whole 64-byte accumulators (the
// 16 lanes of an output in one register; lanes [0, 8) are the other versions' low half, [8, 16)
// their high half) and the lane sums of up to 16 outputs at once. lane_sums() adds each output's
// lanes exactly as the one-output finish() does (v = low half + high half, then v[j] += v[j + 4],
// v[j] += v[j + 2], v[0] + v[1]), one tree level for many outputs per instruction: 15 additions
// and 30 shuffles for 16 outputs instead of 16 x 4 additions and as many extracts. GCC vector
// extensions and __builtin_shufflevector (GCC 12, clang), in functions built for avx512f.
#pragma once
#include <cstdint>
#include <cstring>

namespace wersa::cpu::avx512 {

#define WERSA_AVX512_INLINE __attribute__((target("avx512f"), always_inline)) inline

typedef float V16 __attribute__((vector_size(64)));
typedef uint32_t U16 __attribute__((vector_size(64)));
typedef double D8 __attribute__((vector_size(64)));
typedef float V4 __attribute__((vector_size(16)));

template <class V>
WERSA_AVX512_INLINE V load(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Keeps v in a register (any of the 32; see pin in gemv.cpp).
template <class V>
WERSA_AVX512_INLINE void pin(V& v) {
  __asm__("" : "+v"(v));
}

// The lane sums of a[0, N) (N <= 16): lane 4 q + j of the result holds a[q + 4 j]'s.
constexpr int lane_of(int n) { return 4 * (n % 4) + n / 4; }
template <int N>
WERSA_AVX512_INLINE V16 lane_sums(const V16* a) {
  static_assert(N >= 1 && N <= 16, "at most 16 outputs");
  constexpr int n1 = (N + 1) / 2, n2 = (n1 + 1) / 2, n3 = (n2 + 1) / 2;
  const V16 z{};
  V16 c[n1], e[n2], g[2];
  for (int p = 0; p < n1; ++p) {  // [v of a[2p] | v of a[2p + 1]]: lanes j + 8 onto j
    const V16 u = a[2 * p], t = 2 * p + 1 < N ? a[2 * p + 1] : z;
    c[p] = __builtin_shufflevector(u, t, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
           __builtin_shufflevector(u, t, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  }
  for (int q = 0; q < n2; ++q) {  // a 128-bit lane per output (a[4q + l] in lane l): j + 4 onto j
    const V16 u = c[2 * q], t = 2 * q + 1 < n1 ? c[2 * q + 1] : z;
    e[q] = __builtin_shufflevector(u, t, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
           __builtin_shufflevector(u, t, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  }
  for (int m = 0; m < n3; ++m) {  // 64 bits per output: j + 2 onto j
    const V16 u = e[2 * m], t = 2 * m + 1 < n2 ? e[2 * m + 1] : z;
    g[m] = __builtin_shufflevector(u, t, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29) +
           __builtin_shufflevector(u, t, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
  }
  const V16 u = g[0], t = n3 > 1 ? g[1] : z;  // 1 onto 0
  return __builtin_shufflevector(u, t, 0, 2, 16, 18, 4, 6, 20, 22, 8, 10, 24, 26, 12, 14, 28, 30) +
         __builtin_shufflevector(u, t, 1, 3, 17, 19, 5, 7, 21, 23, 9, 11, 25, 27, 13, 15, 29, 31);
}

// The end of a tile of 4 rows of w by NX rows of x (output (r, k) = a[NX r + k]) without a column
// tail, as finish_sum() ends each output: its sum plus the bias b[r], then y[k * ldy + r] plus
// that when acc_y; the four outputs of a row of x at a time, stored whole.
template <int NX, int K>
WERSA_AVX512_INLINE V4 row_of(const V16& s) {  // outputs (0..3, K): lanes lane_of(NX r + K)
  return __builtin_shufflevector(s, s, lane_of(K), lane_of(NX + K), lane_of(2 * NX + K), lane_of(3 * NX + K));
}
template <int NX, int K>
WERSA_AVX512_INLINE void finish_row(const V16& s, const float* b, bool acc_y, float* y, int64_t ldy) {
  V4 o = row_of<NX, K>(s);
  if (b) o += load<V4>(b);
  if (acc_y) o = load<V4>(y + K * ldy) + o;
  std::memcpy(y + K * ldy, &o, sizeof o);
  if constexpr (K + 1 < NX) finish_row<NX, K + 1>(s, b, acc_y, y, ldy);
}

}  // namespace wersa::cpu::avx512

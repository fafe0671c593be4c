// VF: a vector of floats of the build's widest instruction set (AVX-512: 16 lanes; AVX2 with FMA: 8;
// otherwise 1), with the operators the elementwise kernels of vexp.h need. Every operation rounds
// exactly as its scalar twin does (+, -, *, / and fma are correctly rounded on both sides; compares
// are ordered and quiet, false on NaN), so a function written once as a template over float and VF
// gives every lane bitwise the scalar result. The kernels handle kLanes * kUnroll elements per
// step: independent chains of a long polynomial that the CPU can overlap. A portable build
// (-DWERSA_NATIVE=OFF) has kLanes = 1; its kernels keep one clone per instruction set
// (target_clones), which the compiler vectorises on its own.
#pragma once
#include <cstdint>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace wersa::cpu::simd {

#if defined(__AVX512F__)
constexpr int kLanes = 16;
struct VF {
  __m512 v;
  VF() = default;
  VF(float x) : v(_mm512_set1_ps(x)) {}  // NOLINT: constants convert implicitly
  explicit VF(__m512 x) : v(x) {}
};
struct VM {
  __mmask16 m;
};
inline VF load(const float* p) { return VF(_mm512_loadu_ps(p)); }
inline void store(float* p, VF a) { _mm512_storeu_ps(p, a.v); }
// The first n lanes (1 <= n <= kLanes) from or to p; the other lanes read as 0 and are not written
// (masked: no access past p + n).
inline VF load_first(const float* p, int n) {
  return VF(_mm512_maskz_loadu_ps(__mmask16((1u << n) - 1u), p));
}
inline void store_first(float* p, VF a, int n) { _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1u), a.v); }
inline VF operator+(VF a, VF b) { return VF(_mm512_add_ps(a.v, b.v)); }
inline VF operator-(VF a, VF b) { return VF(_mm512_sub_ps(a.v, b.v)); }
inline VF operator*(VF a, VF b) { return VF(_mm512_mul_ps(a.v, b.v)); }
inline VF operator/(VF a, VF b) { return VF(_mm512_div_ps(a.v, b.v)); }
inline VF operator-(VF a) {
  return VF(_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(INT32_MIN))));
}
inline VF fma_f(VF a, VF b, VF c) { return VF(_mm512_fmadd_ps(a.v, b.v, c.v)); }
inline VM operator<(VF a, VF b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ)}; }
inline VM operator>(VF a, VF b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ)}; }
inline VM operator>=(VF a, VF b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ)}; }
inline VM operator==(VF a, VF b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ)}; }
inline VF sel(VM m, VF a, VF b) { return VF(_mm512_mask_blend_ps(m.m, b.v, a.v)); }
// 2^n for an integral n in [-126, 127], from the exponent bits.
inline VF exp2i(VF n) {
  // The zero-masked forms: GCC 12 warns (falsely) about the undefined source of the plain ones.
  const __mmask16 all = 0xFFFF;
  const __m512i e = _mm512_add_epi32(_mm512_maskz_cvttps_epi32(all, n.v), _mm512_set1_epi32(127));
  return VF(_mm512_castsi512_ps(_mm512_maskz_slli_epi32(all, e, 23)));
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8;
struct VF {
  __m256 v;
  VF() = default;
  VF(float x) : v(_mm256_set1_ps(x)) {}  // NOLINT: constants convert implicitly
  explicit VF(__m256 x) : v(x) {}
};
struct VM {
  __m256 m;
};
inline VF load(const float* p) { return VF(_mm256_loadu_ps(p)); }
inline void store(float* p, VF a) { _mm256_storeu_ps(p, a.v); }
inline __m256i first_lanes(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline VF load_first(const float* p, int n) { return VF(_mm256_maskload_ps(p, first_lanes(n))); }
inline void store_first(float* p, VF a, int n) { _mm256_maskstore_ps(p, first_lanes(n), a.v); }
inline VF operator+(VF a, VF b) { return VF(_mm256_add_ps(a.v, b.v)); }
inline VF operator-(VF a, VF b) { return VF(_mm256_sub_ps(a.v, b.v)); }
inline VF operator*(VF a, VF b) { return VF(_mm256_mul_ps(a.v, b.v)); }
inline VF operator/(VF a, VF b) { return VF(_mm256_div_ps(a.v, b.v)); }
inline VF operator-(VF a) { return VF(_mm256_xor_ps(a.v, _mm256_set1_ps(-0.f))); }
inline VF fma_f(VF a, VF b, VF c) { return VF(_mm256_fmadd_ps(a.v, b.v, c.v)); }
inline VM operator<(VF a, VF b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
inline VM operator>(VF a, VF b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)}; }
inline VM operator>=(VF a, VF b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)}; }
inline VM operator==(VF a, VF b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ)}; }
inline VF sel(VM m, VF a, VF b) { return VF(_mm256_blendv_ps(b.v, a.v, m.m)); }
inline VF exp2i(VF n) {
  const __m256i e = _mm256_add_epi32(_mm256_cvttps_epi32(n.v), _mm256_set1_epi32(127));
  return VF(_mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
}
#else
constexpr int kLanes = 1;
using VF = float;
inline VF load(const float* p) { return *p; }
inline void store(float* p, VF a) { *p = a; }
inline VF load_first(const float* p, int) { return *p; }
inline void store_first(float* p, VF a, int) { *p = a; }
#endif

// The scalar twins (VF itself where kLanes is 1), and fma_f for double. fma_f is one rounding
// where the build targets FMA, as every vector path above does, and two otherwise (a portable
// build: -DWERSA_NATIVE=OFF); either way one binary gives the same results on every CPU it runs
// on. fma_exact is one rounding on every build (the instruction, or libm's fmaf): for error terms
// that need it.
inline float fma_f(float a, float b, float c) {
#if defined(__FMA__)
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}
inline double fma_f(double a, double b, double c) {
#if defined(__FMA__)
  return __builtin_fma(a, b, c);
#else
  return a * b + c;
#endif
}
inline float fma_exact(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
inline VF fma_exact(VF a, VF b, VF c) { return fma_f(a, b, c); }
#endif
inline float sel(bool m, float a, float b) { return m ? a : b; }
// n outside the int range (NaN: the vector functions evaluate both sides of a select) gives
// INT32_MIN, as cvttps2dq does, so no conversion or shift is undefined.
inline float exp2i(float n) {
  const int32_t i = n > -2e9f && n < 2e9f ? int32_t(n) : INT32_MIN;
  const uint32_t bits = uint32_t(i + 127) << 23;
  return __builtin_bit_cast(float, bits);
}

// Vectors per step of the kernels below.
constexpr int kUnroll = 4;
constexpr int kStep = kLanes * kUnroll;

// y[i] = f(x[i]) for i < n (y may alias x): kStep elements per step through VF, the tail through a
// zero-padded local block, so that every element takes the same vector path.
template <class F>
inline void map1(int64_t n, const float* x, float* y, F f) {
  int64_t i = 0;
  for (; i + kStep <= n; i += kStep) {
    VF v[kUnroll];
    for (int u = 0; u < kUnroll; ++u) v[u] = load(x + i + u * kLanes);
    for (int u = 0; u < kUnroll; ++u) store(y + i + u * kLanes, f(v[u]));
  }
  if (i == n) return;
  float xs[kStep] = {}, ys[kStep];
  for (int64_t j = i; j < n; ++j) xs[j - i] = x[j];
  for (int u = 0; u < kUnroll; ++u) store(ys + u * kLanes, f(load(xs + u * kLanes)));
  for (int64_t j = i; j < n; ++j) y[j] = ys[j - i];
}

}  // namespace wersa::cpu::simd

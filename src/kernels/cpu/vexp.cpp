// Vectorised exp of a row (see vexp.h).
#include "vexp.h"

namespace wersa::cpu {
namespace {

// out == nullptr: sum only. The exps of a step go through simd::VF (bitwise vexp_one's) into a
// local block; lane j of the double sum takes the elements i = j mod 16, in order.
__attribute__((target_clones("avx512f", "avx2", "default"))) double shift_sum(int64_t n, const float* x,
                                                                              float shift, float* out) {
  constexpr int W = 16;
  double acc[W] = {};
  int64_t i = 0;
  // Vector steps where a step covers whole lane groups (AVX2, AVX-512); otherwise all elements
  // take the loop after this one.
  for (; simd::kStep % W == 0 && i + simd::kStep <= n; i += simd::kStep) {
    float e[simd::kStep];
    for (int u = 0; u < simd::kUnroll; ++u)
      simd::store(e + u * simd::kLanes, vx::exp(simd::load(x + i + u * simd::kLanes) - simd::VF(shift)));
    if (out)
      for (int j = 0; j < simd::kStep; ++j) out[i + j] = e[j];
    for (int k = 0; k + W <= simd::kStep; k += W)
      for (int j = 0; j < W; ++j) acc[j] += double(e[k + j]);
  }
  for (int64_t j = 0; i < n; ++i, j = (j + 1) % W) {
    const float e = vexp_one(x[i] - shift);
    if (out) out[i] = e;
    acc[j] += double(e);
  }
  double s = 0;
  for (int j = 0; j < W; ++j) s += acc[j];
  return s;
}

}  // namespace

double vexp_shift_sum(int64_t n, const float* x, float shift, float* out) {
  return shift_sum(n, x, shift, out);
}
double vexp_shift_sum(int64_t n, const float* x, float shift) { return shift_sum(n, x, shift, nullptr); }

}  // namespace wersa::cpu

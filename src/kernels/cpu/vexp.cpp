// Vectorised exp of a row (see vexp.h). One clone per instruction set, picked at load time.
#include "vexp.h"

namespace wersa::cpu {
namespace {

// out == nullptr: sum only.
__attribute__((target_clones("avx512f", "avx2", "default"))) double shift_sum(int64_t n, const float* x,
                                                                              float shift, float* out) {
  constexpr int W = 16;
  double acc[W] = {};
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    float e[W];
    for (int j = 0; j < W; ++j) e[j] = vexp_one(x[i + j] - shift);
    if (out)
      for (int j = 0; j < W; ++j) out[i + j] = e[j];
    for (int j = 0; j < W; ++j) acc[j] += double(e[j]);
  }
  for (int j = 0; i < n; ++i, ++j) {
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

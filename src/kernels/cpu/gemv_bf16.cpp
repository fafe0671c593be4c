// One-row linear layer over bf16 weights (see gemv.h): half the bytes of fp32 per weight, which
// is what a decode step is bound by. Sixteen weights (32 bytes) load at once and widen to sixteen
// floats (zero-extend to 32 bits, shift left by 16: exact), then the arithmetic is that of the
// fp32 kernel in gemv.cpp, lane for lane, so on the widened matrix both give the same bits.
// Cloned per instruction set like gemv.cpp (AVX-512: vpmovzxwd + vpslld; AVX2: two halves).
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "gemv.h"

namespace wersa::cpu {
namespace {

constexpr int64_t kParallelMacs = int64_t(1) << 18;  // as gemv.cpp

typedef float VecF __attribute__((vector_size(64)));
typedef uint32_t VecU __attribute__((vector_size(64)));
typedef uint16_t VecH __attribute__((vector_size(32)));
constexpr int kLanes = 16;

// Out-parameter rather than a return value: a 64-byte vector return would change the ABI of the
// non-AVX-512 clones.
__attribute__((always_inline)) inline void widen(const bf16* p, VecF& f) {
  VecH h;
  std::memcpy(&h, p, sizeof h);
  const VecU u = __builtin_convertvector(h, VecU) << 16;
  std::memcpy(&f, &u, sizeof f);
}

template <int R>
__attribute__((always_inline)) inline void rows_block(int64_t I, const bf16* w, int64_t ldw, const float* x,
                                                      const float* b, bool acc_y, float* y) {
  VecF acc[R];
  for (int r = 0; r < R; ++r) acc[r] = VecF{};
  const int64_t In = I / kLanes * kLanes;
  for (int64_t i = 0; i < In; i += kLanes) {
    VecF xv;
    std::memcpy(&xv, x + i, sizeof xv);
    for (int r = 0; r < R; ++r) {
      VecF wv;
      widen(w + r * ldw + i, wv);
      acc[r] += wv * xv;
    }
  }
  for (int r = 0; r < R; ++r) {
    float lanes[kLanes];
    std::memcpy(lanes, &acc[r], sizeof lanes);
    const bf16* wr = w + r * ldw;
    for (int64_t i = In; i < I; ++i) lanes[i - In] += bf16_to_float(wr[i]) * x[i];
    float s = 0.f;
    for (int j = 0; j < kLanes; ++j) s += lanes[j];
    if (b) s += b[r];
    y[r] = acc_y ? y[r] + s : s;
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void range_bf16(int64_t o0, int64_t o1,
                                                                             int64_t I, const bf16* w,
                                                                             int64_t ldw, const float* x,
                                                                             const float* b, bool acc_y,
                                                                             float* y) {
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) rows_block<4>(I, w + o * ldw, ldw, x, b ? b + o : nullptr, acc_y, y + o);
  for (; o < o1; ++o) rows_block<1>(I, w + o * ldw, ldw, x, b ? b + o : nullptr, acc_y, y + o);
}

}  // namespace

void gemv_rows(int64_t O, int64_t I, const bf16* w, int64_t ldw, const float* x, const float* b,
               bool accumulate, float* y, bool threads) {
  if (!threads || O * I < kParallelMacs || omp_get_max_threads() == 1 || omp_in_parallel()) {
    range_bf16(0, O, I, w, ldw, x, b, accumulate, y);
    return;
  }
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), tid = omp_get_thread_num(), nblk = (O + 3) / 4;
    const int64_t o0 = std::min(O, nblk * tid / nt * 4), o1 = std::min(O, nblk * (tid + 1) / nt * 4);
    if (o0 < o1) range_bf16(o0, o1, I, w, ldw, x, b, accumulate, y);
  }
}

}  // namespace wersa::cpu

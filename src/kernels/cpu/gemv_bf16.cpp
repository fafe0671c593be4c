// One-row linear layer over bf16 weights (see gemv.h): half the bytes of fp32 per weight, which
// is what a decode step is bound by. Widening costs two integer ops per 32 weights: 64 bytes load
// as sixteen 32-bit lanes, lane j holding weights 2j (low half) and 2j+1 (high half), so
// `lane << 16` is the even weights and `lane & 0xffff0000` the odd ones as floats, exactly. x is
// permuted to match once per call (per block of 32: its 16 even elements, then its 16 odd ones),
// in chunks of kChunk elements on the stack. Each output is computed by one thread in a fixed
// order (even then odd products per block, lanes added in order, then the scalar tail), whatever
// the thread count. Cloned per instruction set like gemv.cpp.
#include <algorithm>
#include <cstring>

#include "gemv.h"
#include "team.h"
#include "wersa/backend/backend.h"

namespace wersa::cpu {
namespace {
constexpr int64_t kChunk = 8192;  // x elements permuted at a time (32 KiB)

// 32-byte halves of the 64-byte block (lanes [0, 8) and [8, 16)), read by subscript: accumulators
// in registers on AVX2 too (see gemv.cpp).
typedef float HalfF __attribute__((vector_size(32)));
typedef uint32_t HalfU __attribute__((vector_size(32)));
constexpr int kLanes = 16, kHalf = 8, kBlock = 32;

// x[0, n) (n a multiple of 32) in the order the kernel reads it.
void permute(const float* x, int64_t n, float* xp) {
  for (int64_t i = 0; i < n; i += kBlock)
    for (int l = 0; l < kLanes; ++l) {
      xp[i + l] = x[i + 2 * l];
      xp[i + kLanes + l] = x[i + 2 * l + 1];
    }
}

// One half (8 lanes, 16 weights) of a block: acc += even * xe, then acc += odd * xo.
__attribute__((always_inline)) inline void half_step(const bf16* w, const float* xe, const float* xo,
                                                     HalfF& acc) {
  HalfU u;
  std::memcpy(&u, w, sizeof u);
  const HalfU ue = u << 16, uo = u & (HalfU{} + 0xffff0000u);
  HalfF we, wo, e, o;
  std::memcpy(&we, &ue, sizeof we);
  std::memcpy(&wo, &uo, sizeof wo);
  std::memcpy(&e, xe, sizeof e);
  std::memcpy(&o, xo, sizeof o);
  acc += we * e;
  acc += wo * o;
}

// R rows over one chunk of n columns: xp is the permuted x of its first n / 32 * 32 columns, x the
// chunk itself (for the tail).
template <int R>
__attribute__((always_inline)) inline void rows_block(int64_t n, const bf16* w, int64_t ldw, const float* xp,
                                                      const float* x, const float* b, bool acc_y, float* y) {
  HalfF lo[R], hi[R];
  for (int r = 0; r < R; ++r) lo[r] = HalfF{}, hi[r] = HalfF{};
  const int64_t nb = n / kBlock * kBlock;
  for (int64_t i = 0; i < nb; i += kBlock) {
    // Lanes [0, 8) hold weights 0..15 of the block (even: xp[i, i+8), odd: xp[i+16, i+24)),
    // lanes [8, 16) weights 16..31.
    for (int r = 0; r < R; ++r) {
      half_step(w + r * ldw + i, xp + i, xp + i + kLanes, lo[r]);
      half_step(w + r * ldw + i + kLanes, xp + i + kHalf, xp + i + kLanes + kHalf, hi[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    float s = 0.f;
    for (int j = 0; j < kHalf; ++j) s += lo[r][j];
    for (int j = 0; j < kHalf; ++j) s += hi[r][j];
    const bf16* wr = w + r * ldw;
    for (int64_t i = nb; i < n; ++i) s += bf16_to_float(wr[i]) * x[i];
    if (b) s += b[r];
    y[r] = acc_y ? y[r] + s : s;
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void range_bf16(int64_t o0, int64_t o1,
                                                                             int64_t n, const bf16* w,
                                                                             int64_t ldw, const float* xp,
                                                                             const float* x, const float* b,
                                                                             bool acc_y, float* y) {
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) rows_block<4>(n, w + o * ldw, ldw, xp, x, b ? b + o : nullptr, acc_y, y + o);
  for (; o < o1; ++o) rows_block<1>(n, w + o * ldw, ldw, xp, x, b ? b + o : nullptr, acc_y, y + o);
}

}  // namespace

void gemv_rows(int64_t O, int64_t I, const bf16* w, int64_t ldw, const float* x, const float* b,
               bool accumulate, float* y, bool threads) {
  alignas(64) float xp[kChunk];
  const int64_t nblk = (O + 3) / 4;
  const bool parallel = threads && nblk >= 2 && O * I * int64_t(sizeof(bf16)) >= gemv_split_bytes();
  // Columns in chunks: the first adds the bias (and y when accumulating), the others add to y.
  for (int64_t c0 = 0; c0 == 0 || c0 < I; c0 += kChunk) {
    const int64_t n = std::min(kChunk, I - c0);
    permute(x + c0, n / kBlock * kBlock, xp);
    const float* bc = c0 == 0 ? b : nullptr;
    const bool acc = accumulate || c0 > 0;
    if (!parallel) {
      range_bf16(0, O, n, w + c0, ldw, xp, x + c0, bc, acc, y);
      continue;
    }
    auto part = [&](int p, int np) {  // contiguous ranges of whole blocks of four rows per chunk
      const int64_t o0 = std::min(O, nblk * p / np * 4), o1 = std::min(O, nblk * (p + 1) / np * 4);
      if (o0 < o1) range_bf16(o0, o1, n, w + c0, ldw, xp, x + c0, bc, acc, y);
    };
    team_run(gemv_chunks(nblk, O * I * int64_t(sizeof(bf16))), part);
  }
}

}  // namespace wersa::cpu

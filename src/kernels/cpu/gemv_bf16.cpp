// Linear layer over bf16 weights for one row or a few rows of x (see gemv.h): half the bytes of
// fp32 per weight, which is what a decode step is bound by. Widening costs two integer ops per 32
// weights: 64 bytes load as sixteen 32-bit lanes, lane j holding weights 2j (low half) and 2j+1
// (high half), so `lane << 16` is the even weights and `lane & 0xffff0000` the odd ones as floats,
// exactly. x is permuted to match once per call (per block of 32: its 16 even elements, then its
// 16 odd ones), in chunks of kGemvBf16Chunk columns. Each output is computed by one thread in a
// fixed order (per block, its even then its odd products into 16 lanes; per chunk, the lanes
// added as a fixed tree, then the scalar tail), whatever the thread count, the number of rows of
// x and the tile it falls in: a row of x gets the same bits alone as beside others. Tiles: on
// AVX-512 four rows of w by up to four of x (tile512, one or many rows of x), elsewhere 2 x 2,
// 4 x 1 and 1 x 1 of 32-byte halves.
#include <algorithm>
#include <cstring>

#include "gemv.h"
#include "gemv_avx512.h"
#include "team.h"
#include "wersa/backend/backend.h"

namespace wersa::cpu {
namespace {
constexpr int64_t kChunk = kGemvBf16Chunk;

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

// Keeps v in a register (as in gemv.cpp: GCC would reload the tile's operands for every product).
template <bool Pin, class V>
__attribute__((always_inline)) inline void pin(V& v) {
  if constexpr (Pin) __asm__("" : "+x"(v));
}

// One half (8 lanes, 16 weights) of a block, widened: the even and the odd weights.
template <bool Pin>
__attribute__((always_inline)) inline void widen(const bf16* w, HalfF& we, HalfF& wo) {
  HalfU u;
  std::memcpy(&u, w, sizeof u);
  pin<Pin>(u);
  const HalfU ue = u << 16, uo = u & (HalfU{} + 0xffff0000u);
  std::memcpy(&we, &ue, sizeof we);
  std::memcpy(&wo, &uo, sizeof wo);
}
// acc += we * x[0, 8), then acc += wo * x[16, 24) (x: the permuted half's even elements; its odd
// ones 16 further).
template <bool Pin>
__attribute__((always_inline)) inline void madd(const HalfF& we, const HalfF& wo, const float* x,
                                                HalfF& acc) {
  HalfF e, o;
  std::memcpy(&e, x, sizeof e);
  std::memcpy(&o, x + kLanes, sizeof o);
  pin<Pin>(e), pin<Pin>(o);
  acc += we * e;
  acc += wo * o;
}

// The end of an output over a chunk of n columns whose lanes add up to s: the tail of the chunk in
// order (x: the chunk itself, unpermuted), then the bias and y.
__attribute__((always_inline)) inline void finish_sum(float s, int64_t n, const bf16* wr, const float* x,
                                                      const float* b, bool acc_y, float& out) {
  for (int64_t i = n / kBlock * kBlock; i < n; ++i) s += bf16_to_float(wr[i]) * x[i];
  if (b) s += *b;
  out = acc_y ? out + s : s;
}

// The end of one output over a chunk of n columns: lanes lo + hi as a fixed tree, the tail of the
// chunk in order (x: the chunk itself, unpermuted), then the bias and y.
__attribute__((always_inline)) inline void finish(const HalfF& lo, const HalfF& hi, int64_t n, const bf16* wr,
                                                  const float* x, const float* b, bool acc_y, float& out) {
  const HalfF v = lo + hi;
  float l[kHalf];
  std::memcpy(l, &v, sizeof v);
  for (int w = kHalf / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) l[j] += l[j + w];
  finish_sum(l[0], n, wr, x, b, acc_y, out);
}

// R rows of w times NX rows of x over one chunk of n columns: xp holds the permuted chunks of the
// rows of x (ldp apart), x the chunks themselves (ldx apart, for the tails); y rows ldy apart.
template <int R, int NX, bool Pin>
__attribute__((always_inline)) inline void rows_block(int64_t n, const bf16* w, int64_t ldw, const float* xp,
                                                      int64_t ldp, const float* x, int64_t ldx,
                                                      const float* b, bool acc_y, float* y, int64_t ldy,
                                                      const bf16* pf = nullptr) {
  HalfF lo[R][NX], hi[R][NX];
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NX; ++k) lo[r][k] = HalfF{}, hi[r][k] = HalfF{};
  const int64_t nb = n / kBlock * kBlock;
  // Lanes [0, 8) hold weights 0..15 of a block (even: xp[i, i+8), odd: xp[i+16, i+24)), lanes
  // [8, 16) weights 16..31. A tile of several rows of x goes one half at a time (it holds 4
  // vectors of x), a column of rows of w row by row (the order of an output's sums is the same).
  auto half = [&](int r, int64_t i, int h) {
    HalfF we, wo;
    widen<Pin>(w + r * ldw + i + h * kLanes, we, wo);
    for (int k = 0; k < NX; ++k) madd<Pin>(we, wo, xp + k * ldp + i + h * kHalf, h ? hi[r][k] : lo[r][k]);
  };
  for (int64_t i = 0; i < nb; i += kBlock) {
    if (pf)  // rows pf, pf + ldw, ... (the next block): a line of each as a line of each is used
      for (int r = 0; r < R; ++r) __builtin_prefetch(pf + r * ldw + i, 0, 3);
    if (NX > 1) {
      for (int r = 0; r < R; ++r) half(r, i, 0);
      for (int r = 0; r < R; ++r) half(r, i, 1);
    } else {
      for (int r = 0; r < R; ++r) half(r, i, 0), half(r, i, 1);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NX; ++k)
      finish(lo[r][k], hi[r][k], n, w + r * ldw, x + k * ldx, b ? b + r : nullptr, acc_y, y[k * ldy + r]);
}

// Rows [o0, o1) of w for the nx rows of x: blocks of four rows of w, each read once for all rows
// of x (in 2 x 2 tiles, the rest as 4 x 1 and 1 x 1); the first tiles over a pair of rows fetch
// the pair four rows further meanwhile.
template <bool Pin>
__attribute__((always_inline)) inline void rows_range(int64_t o0, int64_t o1, int64_t n, const bf16* w,
                                                      int64_t ldw, const float* xp, int64_t ldp,
                                                      const float* x, int64_t ldx, int64_t nx, const float* b,
                                                      bool acc_y, float* y, int64_t ldy) {
  auto bias = [&](int64_t o) { return b ? b + o : nullptr; };
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) {
    const bf16* wo = w + o * ldw;
    const bf16* next = o + 8 <= o1 ? wo + 4 * ldw : nullptr;
    int64_t k = 0;
    for (; k + 2 <= nx; k += 2)
      for (int r = 0; r < 4; r += 2)
        rows_block<2, 2, Pin>(n, wo + r * ldw, ldw, xp + k * ldp, ldp, x + k * ldx, ldx, bias(o + r), acc_y,
                              y + k * ldy + o + r, ldy, k || !next ? nullptr : next + r * ldw);
    if (k < nx)
      rows_block<4, 1, false>(n, wo, ldw, xp + k * ldp, ldp, x + k * ldx, ldx, bias(o), acc_y,
                              y + k * ldy + o, ldy);
  }
  for (; o < o1; ++o)
    for (int64_t k = 0; k < nx; ++k)
      rows_block<1, 1, false>(n, w + o * ldw, ldw, xp + k * ldp, ldp, x + k * ldx, ldx, bias(o), acc_y,
                              y + k * ldy + o, ldy);
}

// The AVX-512 version: tiles of R <= 4 rows of w by NX <= 4 rows of x, a whole block of 32 weights
// a row at a time (64 bytes widen to the even weights of both halves in one register and the odd
// ones in another: lanes [0, 8) and [8, 16) as in rows_block, so x's even elements are xp[i, i+16)
// and its odd ones xp[i+16, i+32)), one 64-byte accumulator per output (16 registers; 8 hold x),
// their lanes summed together (avx512::lane_sums, as finish() adds them): the same bits.
template <int R, int NX>
WERSA_AVX512_INLINE void tile512(int64_t n, const bf16* w, int64_t ldw, const float* xp, int64_t ldp,
                                 const float* x, int64_t ldx, const float* b, bool acc_y, float* y,
                                 int64_t ldy, const bf16* pf) {
  using avx512::U16;
  using avx512::V16;
  V16 acc[R * NX] = {};
  const int64_t nb = n / kBlock * kBlock;
  for (int64_t i = 0; i < nb; i += kBlock) {
    if (pf)
      for (int r = 0; r < R; ++r) __builtin_prefetch(pf + r * ldw + i, 0, 3);
    V16 xe[NX], xo[NX];
    for (int k = 0; k < NX; ++k) {
      xe[k] = avx512::load<V16>(xp + k * ldp + i), xo[k] = avx512::load<V16>(xp + k * ldp + i + kLanes);
      avx512::pin(xe[k]), avx512::pin(xo[k]);
    }
    for (int r = 0; r < R; ++r) {
      U16 u = avx512::load<U16>(w + r * ldw + i);
      avx512::pin(u);
      const V16 we = V16(u << 16), wo = V16(u & 0xffff0000u);
      for (int k = 0; k < NX; ++k) {
        acc[r * NX + k] += we * xe[k];
        acc[r * NX + k] += wo * xo[k];
      }
    }
  }
  const V16 sums = avx512::lane_sums<R * NX>(acc);
  if (R == 4 && nb == n) return avx512::finish_row<NX, 0>(sums, b, acc_y, y, ldy);
  float s[16];
  std::memcpy(s, &sums, sizeof s);
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NX; ++k)
      finish_sum(s[avx512::lane_of(r * NX + k)], n, w + r * ldw, x + k * ldx, b ? b + r : nullptr, acc_y,
                 y[k * ldy + r]);
}

// R rows of w for all nx rows of x, four at a time; the first tile fetches pf.
template <int R>
WERSA_AVX512_INLINE void rows512(int64_t n, const bf16* w, int64_t ldw, const float* xp, int64_t ldp,
                                 const float* x, int64_t ldx, int64_t nx, const float* b, bool acc_y,
                                 float* y, int64_t ldy, const bf16* pf) {
  int64_t k = 0;
  for (; k + 4 <= nx; k += 4, pf = nullptr)
    tile512<R, 4>(n, w, ldw, xp + k * ldp, ldp, x + k * ldx, ldx, b, acc_y, y + k * ldy, ldy, pf);
  if (nx - k == 3)
    tile512<R, 3>(n, w, ldw, xp + k * ldp, ldp, x + k * ldx, ldx, b, acc_y, y + k * ldy, ldy, pf);
  if (nx - k == 2)
    tile512<R, 2>(n, w, ldw, xp + k * ldp, ldp, x + k * ldx, ldx, b, acc_y, y + k * ldy, ldy, pf);
  if (nx - k == 1)
    tile512<R, 1>(n, w, ldw, xp + k * ldp, ldp, x + k * ldx, ldx, b, acc_y, y + k * ldy, ldy, pf);
}

__attribute__((target("avx512f"))) void range_avx512(int64_t o0, int64_t o1, int64_t n, const bf16* w,
                                                     int64_t ldw, const float* xp, int64_t ldp,
                                                     const float* x, int64_t ldx, int64_t nx, const float* b,
                                                     bool acc_y, float* y, int64_t ldy) {
  auto bias = [&](int64_t o) { return b ? b + o : nullptr; };
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4)  // the first tile of a block fetches the next block
    rows512<4>(n, w + o * ldw, ldw, xp, ldp, x, ldx, nx, bias(o), acc_y, y + o, ldy,
               o + 8 <= o1 ? w + (o + 4) * ldw : nullptr);
  const bf16* wo = w + o * ldw;
  if (o1 - o == 3) rows512<3>(n, wo, ldw, xp, ldp, x, ldx, nx, bias(o), acc_y, y + o, ldy, nullptr);
  if (o1 - o == 2) rows512<2>(n, wo, ldw, xp, ldp, x, ldx, nx, bias(o), acc_y, y + o, ldy, nullptr);
  if (o1 - o == 1) rows512<1>(n, wo, ldw, xp, ldp, x, ldx, nx, bias(o), acc_y, y + o, ldy, nullptr);
}

// The row kernel in three versions, picked once by the CPU (see gemv.cpp).
#define WERSA_RANGE(NAME, ATTR, PIN)                                                                         \
  ATTR void NAME(int64_t o0, int64_t o1, int64_t n, const bf16* w, int64_t ldw, const float* xp,             \
                 int64_t ldp, const float* x, int64_t ldx, int64_t nx, const float* b, bool acc_y, float* y, \
                 int64_t ldy) {                                                                              \
    rows_range<PIN>(o0, o1, n, w, ldw, xp, ldp, x, ldx, nx, b, acc_y, y, ldy);                               \
  }
WERSA_RANGE(range_avx2, __attribute__((target("avx2"))), true)
WERSA_RANGE(range_base, , false)
#undef WERSA_RANGE
using RangeFn = void (*)(int64_t, int64_t, int64_t, const bf16*, int64_t, const float*, int64_t, const float*,
                         int64_t, int64_t, const float*, bool, float*, int64_t);
// xp: nx * min(I, kChunk) floats.
void gemv_bf16(int64_t nx, int64_t O, int64_t I, const bf16* w, int64_t ldw, const float* x, int64_t ldx,
               const float* b, bool accumulate, float* y, int64_t ldy, bool threads, float* xp) {
  static const RangeFn fns[3] = {range_base, range_avx2, range_avx512};
  const RangeFn range = fns[int(gemv_isa())];
  const int64_t nblk = (O + 3) / 4, work = O * I * int64_t(sizeof(bf16)) * nx;
  const bool parallel = threads && nblk >= 2 && work >= gemv_split_bytes();
  const int64_t ldp = std::min(I, kChunk);
  // Columns in chunks: the first adds the bias (and y when accumulating), the others add to y.
  for (int64_t c0 = 0; c0 == 0 || c0 < I; c0 += kChunk) {
    const int64_t n = std::min(kChunk, I - c0);
    for (int64_t k = 0; k < nx; ++k) permute(x + k * ldx + c0, n / kBlock * kBlock, xp + k * ldp);
    const float* bc = c0 == 0 ? b : nullptr;
    const bool acc = accumulate || c0 > 0;
    if (!parallel) {
      range(0, O, n, w + c0, ldw, xp, ldp, x + c0, ldx, nx, bc, acc, y, ldy);
      continue;
    }
    auto part = [&](int p, int np) {  // contiguous ranges of whole blocks of four rows per chunk
      const int64_t o0 = std::min(O, nblk * p / np * 4), o1 = std::min(O, nblk * (p + 1) / np * 4);
      if (o0 < o1) range(o0, o1, n, w + c0, ldw, xp, ldp, x + c0, ldx, nx, bc, acc, y, ldy);
    };
    team_run(gemv_chunks(nblk, work), part);
  }
}

}  // namespace

void gemv_rows(int64_t O, int64_t I, const bf16* w, int64_t ldw, const float* x, const float* b,
               bool accumulate, float* y, bool threads) {
  alignas(64) float xp[kChunk];
  gemv_bf16(1, O, I, w, ldw, x, I, b, accumulate, y, O, threads, xp);
}

void gemv_rows_multi(int64_t nx, int64_t O, int64_t I, const bf16* w, int64_t ldw, const float* x,
                     int64_t ldx, const float* b, bool accumulate, float* y, int64_t ldy, float* scratch,
                     bool threads) {
  gemv_bf16(nx, O, I, w, ldw, x, ldx, b, accumulate, y, ldy, threads, scratch);
}

}  // namespace wersa::cpu

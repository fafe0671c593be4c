// Linear layer for one row or a few rows of x (decoding; see gemv.h): y = x w^T (+ b) (+ y).
// Rows of w go four at a time, each block read once for all rows of x. AVX-512: 4 x 4 tiles (four
// rows of w by up to four of x, an output's 16 lanes in one register, the lanes of all 16 outputs
// summed together by shuffles); AVX2 and x86-64: one row of x as 4 x 1, several as 2 x 2 tiles of
// 32-byte halves (AVX2's 16 registers). The first tiles over a block fetch the next block as they
// go. An output's arithmetic (16 lanes over i, the lanes added as a fixed tree, the tail, the bias)
// is the same in every tile and alone, so neither the split of the rows between threads nor the
// other rows of x change any result. The rows are split over the decode team (team.h, whose
// workers spin between the GEMVs of a step) when the weights' bytes times the rows of x reach
// gemv_split_bytes() (backend.h: a core's L2 cache unless set). The version is picked by the CPU
// (gemv_isa(); tests limit it to run each).
#include "gemv.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "gemv_avx512.h"
#include "team.h"
#include "wersa/backend/backend.h"

namespace wersa::cpu {
namespace {

// 64-byte vectors (GCC vector extension): one AVX-512 register, two AVX2 or four SSE registers,
// so the accumulators stay in registers in every clone.
typedef float VecF __attribute__((vector_size(64)));
typedef double VecD __attribute__((vector_size(64)));
template <class T>
struct Vec;
template <>
struct Vec<float> {
  using type = VecF;
};
template <>
struct Vec<double> {
  using type = VecD;
};

// 32-byte halves of the 64-byte vectors: the row kernel keeps its lanes as two halves (lanes
// [0, NL/2) and [NL/2, NL)) and reads them by subscript, never through memory, so that its
// accumulators stay in registers on AVX2 too (whole 64-byte vectors, copied out with memcpy, were
// spilled to the stack at every step). Same lanes, same sums: the results are unchanged.
typedef float HalfF __attribute__((vector_size(32)));
typedef double HalfD __attribute__((vector_size(32)));
template <class T>
struct Half;
template <>
struct Half<float> {
  using type = HalfF;
};
template <>
struct Half<double> {
  using type = HalfD;
};

// The end of an output whose lanes add up to s: the tail of I from In in order, then the bias and y.
template <class T>
__attribute__((always_inline)) inline void finish_sum(T s, int64_t In, int64_t I, const T* wr, const T* xk,
                                                      const T* b, bool acc_y, T& out) {
  for (int64_t i = In; i < I; ++i) s += wr[i] * xk[i];
  if (b) s += *b;
  out = acc_y ? out + s : s;
}

// The end of output (r, k) of a tile: its lanes lo + hi, added as a fixed tree (half + half, ...),
// plus the tail of I in order, then the bias and y.
template <class T, class H>
__attribute__((always_inline)) inline void finish(const H& lo, const H& hi, int64_t I, const T* wr,
                                                  const T* xk, const T* b, bool acc_y, T& out) {
  constexpr int HL = int(sizeof(H) / sizeof(T)), NL = 2 * HL;
  const H v = lo + hi;
  T l[HL];
  std::memcpy(l, &v, sizeof(H));
  for (int w = HL / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) l[j] += l[j + w];
  finish_sum(l[0], I / NL * NL, I, wr, xk, b, acc_y, out);
}

// R rows of w times NX rows of x (ldx apart; y rows ldy apart): lanes i mod NL of output (r, k)
// gather in lo[r][k] and hi[r][k] (i ascending), then finish(). An output's arithmetic does not
// depend on the tile, its place in it or the other rows: every tile (tile_2x2 too) computes it as
// the one-row GEMV (R = 4 or 1, NX = 1) does, bit for bit.
template <class T, int R, int NX>
__attribute__((always_inline)) inline void rows_block(int64_t I, const T* w, int64_t ldw, const T* x,
                                                      int64_t ldx, const T* b, bool acc_y, T* y,
                                                      int64_t ldy) {
  using H = typename Half<T>::type;
  constexpr int HL = int(sizeof(H) / sizeof(T)), NL = 2 * HL;
  H lo[R][NX], hi[R][NX];
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NX; ++k) lo[r][k] = H{}, hi[r][k] = H{};
  const int64_t In = I / NL * NL;
  for (int64_t i = 0; i < In; i += NL) {
    H xl[NX], xh[NX];
    for (int k = 0; k < NX; ++k) {
      std::memcpy(&xl[k], x + k * ldx + i, sizeof(H));
      std::memcpy(&xh[k], x + k * ldx + i + HL, sizeof(H));
    }
    for (int r = 0; r < R; ++r) {
      H wl, wh;
      std::memcpy(&wl, w + r * ldw + i, sizeof(H));
      std::memcpy(&wh, w + r * ldw + i + HL, sizeof(H));
      for (int k = 0; k < NX; ++k) {
        lo[r][k] += wl * xl[k];
        hi[r][k] += wh * xh[k];
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NX; ++k)
      finish(lo[r][k], hi[r][k], I, w + r * ldw, x + k * ldx, b ? b + r : nullptr, acc_y, y[k * ldy + r]);
}

// Keeps v in a register: without it GCC folds the loads into the products and reloads each
// operand of the 2 x 2 tile for every product it takes part in (16 loads per 8 products instead of
// 8), which on a CPU with one 32-byte load per cycle (Zen 1) halves the tile's rate. Only where the
// vectors fit a register (the AVX2 and AVX-512 versions); it changes the instructions, not the
// arithmetic.
template <bool Pin, class V>
__attribute__((always_inline)) inline void pin(V& v) {
  if constexpr (Pin) __asm__("" : "+x"(v));
}

// Rows w, w + ldw times rows x, x + ldx: rows_block<T, 2, 2> with its operands and accumulators
// in named registers (8 accumulators, 4 x halves and 2 w halves of AVX2's 16); prefetches rows
// pf, pf + ldw meanwhile unless pf is null.
template <class T, bool Pin>
__attribute__((always_inline)) inline void tile_2x2(int64_t I, const T* w, int64_t ldw, const T* x,
                                                    int64_t ldx, const T* b, bool acc_y, T* y, int64_t ldy,
                                                    const T* pf) {
  using H = typename Half<T>::type;
  constexpr int HL = int(sizeof(H) / sizeof(T)), NL = 2 * HL;
  static_assert(NL * sizeof(T) == 64, "a step takes one cache line of each row");
  H l00{}, h00{}, l01{}, h01{}, l10{}, h10{}, l11{}, h11{};  // l<r><k>: row r of w, row k of x
  const int64_t In = I / NL * NL;
  const T *w1 = w + ldw, *x1 = x + ldx;
  for (int64_t i = 0; i < In; i += NL) {
    if (pf) __builtin_prefetch(pf + i, 0, 3), __builtin_prefetch(pf + ldw + i, 0, 3);
    H xl0, xh0, xl1, xh1, wl, wh;
    std::memcpy(&xl0, x + i, sizeof(H));
    std::memcpy(&xh0, x + i + HL, sizeof(H));
    std::memcpy(&xl1, x1 + i, sizeof(H));
    std::memcpy(&xh1, x1 + i + HL, sizeof(H));
    pin<Pin>(xl0), pin<Pin>(xh0), pin<Pin>(xl1), pin<Pin>(xh1);
    std::memcpy(&wl, w + i, sizeof(H));
    std::memcpy(&wh, w + i + HL, sizeof(H));
    pin<Pin>(wl), pin<Pin>(wh);
    l00 += wl * xl0, h00 += wh * xh0, l01 += wl * xl1, h01 += wh * xh1;
    std::memcpy(&wl, w1 + i, sizeof(H));
    std::memcpy(&wh, w1 + i + HL, sizeof(H));
    pin<Pin>(wl), pin<Pin>(wh);
    l10 += wl * xl0, h10 += wh * xh0, l11 += wl * xl1, h11 += wh * xh1;
  }
  finish(l00, h00, I, w, x, b, acc_y, y[0]);
  finish(l01, h01, I, w, x1, b, acc_y, y[ldy]);
  finish(l10, h10, I, w1, x, b ? b + 1 : nullptr, acc_y, y[1]);
  finish(l11, h11, I, w1, x1, b ? b + 1 : nullptr, acc_y, y[ldy + 1]);
}

// Rows [o0, o1) of w for the nx rows of x: blocks of four rows of w, each read once for all rows
// of x (two of them at a time, as 2 x 2 tiles: eight accumulator pairs fit AVX2's registers).
template <class T, bool Pin>
__attribute__((always_inline)) inline void rows_range(int64_t o0, int64_t o1, int64_t I, const T* w,
                                                      int64_t ldw, const T* x, int64_t ldx, int64_t nx,
                                                      const T* b, bool acc_y, T* y, int64_t ldy) {
  auto bias = [&](int64_t o) { return b ? b + o : nullptr; };
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) {
    const T* wo = w + o * ldw;
    // The first tiles over a pair of rows also fetch the pair four rows further (the next block),
    // a line per row as they consume one.
    const T* next = o + 8 <= o1 ? wo + 4 * ldw : nullptr;
    int64_t k = 0;
    for (; k + 2 <= nx; k += 2) {
      tile_2x2<T, Pin>(I, wo, ldw, x + k * ldx, ldx, bias(o), acc_y, y + k * ldy + o, ldy,
                       k ? nullptr : next);
      tile_2x2<T, Pin>(I, wo + 2 * ldw, ldw, x + k * ldx, ldx, bias(o + 2), acc_y, y + k * ldy + o + 2, ldy,
                       k || !next ? nullptr : next + 2 * ldw);
    }
    if (k < nx) rows_block<T, 4, 1>(I, wo, ldw, x + k * ldx, ldx, bias(o), acc_y, y + k * ldy + o, ldy);
  }
  for (; o < o1; ++o) {
    int64_t k = 0;
    for (; k + 2 <= nx; k += 2)
      rows_block<T, 1, 2>(I, w + o * ldw, ldw, x + k * ldx, ldx, bias(o), acc_y, y + k * ldy + o, ldy);
    if (k < nx)
      rows_block<T, 1, 1>(I, w + o * ldw, ldw, x + k * ldx, ldx, bias(o), acc_y, y + k * ldy + o, ldy);
  }
}

// The AVX-512 version of the f32 kernel: tiles of R <= 4 rows of w by NX <= 4 rows of x, one
// 64-byte accumulator per output (16 of the 32 registers; 4 hold x, 1 a row of w), their lanes
// summed together (avx512::lane_sums). An output's arithmetic is that of finish(): the same bits.
// Prefetches rows pf .. pf + (R - 1) ldw meanwhile unless pf is null.
template <int R, int NX>
WERSA_AVX512_INLINE void tile512(int64_t I, const float* w, int64_t ldw, const float* x, int64_t ldx,
                                 const float* b, bool acc_y, float* y, int64_t ldy, const float* pf) {
  using avx512::V16;
  V16 acc[R * NX] = {};
  const int64_t In = I / 16 * 16;
  for (int64_t i = 0; i < In; i += 16) {
    if (pf)
      for (int r = 0; r < R; ++r) __builtin_prefetch(pf + r * ldw + i, 0, 3);
    V16 xv[NX];
    for (int k = 0; k < NX; ++k) xv[k] = avx512::load<V16>(x + k * ldx + i), avx512::pin(xv[k]);
    for (int r = 0; r < R; ++r) {
      V16 wv = avx512::load<V16>(w + r * ldw + i);
      avx512::pin(wv);
      for (int k = 0; k < NX; ++k) acc[r * NX + k] += wv * xv[k];
    }
  }
  const V16 sums = avx512::lane_sums<R * NX>(acc);
  if (R == 4 && In == I) return avx512::finish_row<NX, 0>(sums, b, acc_y, y, ldy);
  float s[16];
  std::memcpy(s, &sums, sizeof s);
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NX; ++k)
      finish_sum(s[avx512::lane_of(r * NX + k)], In, I, w + r * ldw, x + k * ldx, b ? b + r : nullptr, acc_y,
                 y[k * ldy + r]);
}

// R rows of w (o, o + 1, ...) for all nx rows of x, four at a time; the first tile fetches pf.
template <int R>
WERSA_AVX512_INLINE void rows512(int64_t I, const float* w, int64_t ldw, const float* x, int64_t ldx,
                                 int64_t nx, const float* b, bool acc_y, float* y, int64_t ldy,
                                 const float* pf) {
  int64_t k = 0;
  for (; k + 4 <= nx; k += 4, pf = nullptr)
    tile512<R, 4>(I, w, ldw, x + k * ldx, ldx, b, acc_y, y + k * ldy, ldy, pf);
  if (nx - k == 3) tile512<R, 3>(I, w, ldw, x + k * ldx, ldx, b, acc_y, y + k * ldy, ldy, pf);
  if (nx - k == 2) tile512<R, 2>(I, w, ldw, x + k * ldx, ldx, b, acc_y, y + k * ldy, ldy, pf);
  if (nx - k == 1) {  // a row of x alone: 32-byte halves, faster here than 64-byte vectors (34 vs 41 GFLOP/s)
    if constexpr (R == 4)
      rows_block<float, 4, 1>(I, w, ldw, x + k * ldx, ldx, b, acc_y, y + k * ldy, ldy);
    else
      tile512<R, 1>(I, w, ldw, x + k * ldx, ldx, b, acc_y, y + k * ldy, ldy, pf);
  }
}

__attribute__((target("avx512f"))) void range_f32_avx512(int64_t o0, int64_t o1, int64_t I, const float* w,
                                                         int64_t ldw, const float* x, int64_t ldx, int64_t nx,
                                                         const float* b, bool acc_y, float* y, int64_t ldy) {
  auto bias = [&](int64_t o) { return b ? b + o : nullptr; };
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4)  // the first tile of a block fetches the next block
    rows512<4>(I, w + o * ldw, ldw, x, ldx, nx, bias(o), acc_y, y + o, ldy,
               o + 8 <= o1 ? w + (o + 4) * ldw : nullptr);
  const float* wo = w + o * ldw;
  if (o1 - o == 3) rows512<3>(I, wo, ldw, x, ldx, nx, bias(o), acc_y, y + o, ldy, nullptr);
  if (o1 - o == 2) rows512<2>(I, wo, ldw, x, ldx, nx, bias(o), acc_y, y + o, ldy, nullptr);
  if (o1 - o == 1) rows512<1>(I, wo, ldw, x, ldx, nx, bias(o), acc_y, y + o, ldy, nullptr);
}

template <class T>
__attribute__((always_inline)) inline void transposed(int64_t O, int64_t I, const T* w, int64_t ldw,
                                                      const T* p, T* y) {
  for (int64_t i = 0; i < I; ++i) y[i] = T(0);
  for (int64_t o = 0; o < O; ++o) {
    const T po = p[o];
    if (po == T(0)) continue;
    const T* wr = w + o * ldw;
    for (int64_t i = 0; i < I; ++i) y[i] += po * wr[i];
  }
}

// Lanes of v added as a fixed tree (half + half, ...).
template <class T, class V>
__attribute__((always_inline)) inline T lane_sum(const V& v) {
  constexpr int NL = int(sizeof(V) / sizeof(T));
  T l[NL];
  std::memcpy(l, &v, sizeof(V));
  for (int w = NL / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) l[j] += l[j + w];
  return l[0];
}

template <class T, int NX>
__attribute__((always_inline)) inline void dot_multi(int64_t O, int64_t I, const T* w, int64_t ldw,
                                                     const T* x, T* S) {
  using V = typename Vec<T>::type;
  constexpr int NL = int(sizeof(V) / sizeof(T));
  const int64_t In = I / NL * NL;
  for (int64_t o = 0; o < O; ++o) {
    const T* wr = w + o * ldw;
    V acc[NX];
    for (int k = 0; k < NX; ++k) acc[k] = V{};
    for (int64_t i = 0; i < In; i += NL) {
      V wv;
      std::memcpy(&wv, wr + i, sizeof(V));
      for (int k = 0; k < NX; ++k) {
        V xv;
        std::memcpy(&xv, x + k * I + i, sizeof(V));
        acc[k] += wv * xv;
      }
    }
    for (int k = 0; k < NX; ++k) {
      T s = lane_sum<T>(acc[k]);
      for (int64_t i = In; i < I; ++i) s += wr[i] * x[k * I + i];
      S[k * O + o] = s;
    }
  }
}

// Columns in blocks of four vectors, the accumulators of all nx outputs in registers.
template <class T, int NX>
__attribute__((always_inline)) inline void gemv_t_multi_body(int64_t O, int64_t I, const T* w, int64_t ldw,
                                                             const T* P, T* Y) {
  using V = typename Vec<T>::type;
  constexpr int NL = int(sizeof(V) / sizeof(T)), NB = 4;
  const int64_t Ib = I / (NB * NL) * (NB * NL);
  for (int64_t i0 = 0; i0 < Ib; i0 += NB * NL) {
    V acc[NX][NB];
    for (int k = 0; k < NX; ++k)
      for (int c = 0; c < NB; ++c) acc[k][c] = V{};
    for (int64_t o = 0; o < O; ++o) {
      const T* wr = w + o * ldw + i0;
      V wv[NB];
      for (int c = 0; c < NB; ++c) std::memcpy(&wv[c], wr + c * NL, sizeof(V));
      for (int k = 0; k < NX; ++k) {
        const T p = P[k * O + o];
        for (int c = 0; c < NB; ++c) acc[k][c] += p * wv[c];
      }
    }
    for (int k = 0; k < NX; ++k)
      for (int c = 0; c < NB; ++c) std::memcpy(Y + k * I + i0 + c * NL, &acc[k][c], sizeof(V));
  }
  for (int k = 0; k < NX; ++k) {  // the remaining columns
    T* y = Y + k * I;
    for (int64_t i = Ib; i < I; ++i) y[i] = T(0);
    if (Ib == I) continue;
    for (int64_t o = 0; o < O; ++o) {
      const T p = P[k * O + o];
      const T* wr = w + o * ldw;
      for (int64_t i = Ib; i < I; ++i) y[i] += p * wr[i];
    }
  }
}

// nx = 1, 2, 4 (and multiples of 4) share each row read; other counts go one vector at a time.
template <class T>
__attribute__((always_inline)) inline void dot_multi_any(int64_t O, int64_t I, const T* w, int64_t ldw,
                                                         const T* x, int nx, T* S) {
  int k = 0;
  for (; k + 4 <= nx; k += 4) dot_multi<T, 4>(O, I, w, ldw, x + k * I, S + k * O);
  if (nx - k == 2) dot_multi<T, 2>(O, I, w, ldw, x + k * I, S + k * O), k += 2;
  for (; k < nx; ++k) dot_multi<T, 1>(O, I, w, ldw, x + k * I, S + k * O);
}
template <class T>
__attribute__((always_inline)) inline void gemv_t_multi_any(int64_t O, int64_t I, const T* w, int64_t ldw,
                                                            const T* P, int nx, T* Y) {
  int k = 0;
  for (; k + 4 <= nx; k += 4) gemv_t_multi_body<T, 4>(O, I, w, ldw, P + k * O, Y + k * I);
  if (nx - k == 2) gemv_t_multi_body<T, 2>(O, I, w, ldw, P + k * O, Y + k * I), k += 2;
  for (; k < nx; ++k) gemv_t_multi_body<T, 1>(O, I, w, ldw, P + k * O, Y + k * I);
}

// The row kernel in three versions, picked once by the CPU (as target_clones would, which cannot
// give the vector versions their register pins).
#define WERSA_RANGE(NAME, T, ATTR, PIN)                                                               \
  ATTR void NAME(int64_t o0, int64_t o1, int64_t I, const T* w, int64_t ldw, const T* x, int64_t ldx, \
                 int64_t nx, const T* b, bool acc_y, T* y, int64_t ldy) {                             \
    rows_range<T, PIN>(o0, o1, I, w, ldw, x, ldx, nx, b, acc_y, y, ldy);                              \
  }
WERSA_RANGE(range_f32_avx2, float, __attribute__((target("avx2"))), true)
WERSA_RANGE(range_f32_base, float, , false)
WERSA_RANGE(range_f64_avx512, double, __attribute__((target("avx512f"))), true)
WERSA_RANGE(range_f64_avx2, double, __attribute__((target("avx2"))), true)
WERSA_RANGE(range_f64_base, double, , false)
#undef WERSA_RANGE
template <class T>
using RangeFn = void (*)(int64_t, int64_t, int64_t, const T*, int64_t, const T*, int64_t, int64_t, const T*,
                         bool, T*, int64_t);
int cpu_isa() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
}
std::atomic<int> g_isa_limit{2};

#define WERSA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
WERSA_CLONES void transposed_f32(int64_t O, int64_t I, const float* w, int64_t ldw, const float* p,
                                 float* y) {
  transposed(O, I, w, ldw, p, y);
}
WERSA_CLONES void transposed_f64(int64_t O, int64_t I, const double* w, int64_t ldw, const double* p,
                                 double* y) {
  transposed(O, I, w, ldw, p, y);
}
WERSA_CLONES void dot_multi_f32(int64_t O, int64_t I, const float* w, int64_t ldw, const float* x, int nx,
                                float* S) {
  dot_multi_any(O, I, w, ldw, x, nx, S);
}
WERSA_CLONES void dot_multi_f64(int64_t O, int64_t I, const double* w, int64_t ldw, const double* x, int nx,
                                double* S) {
  dot_multi_any(O, I, w, ldw, x, nx, S);
}
WERSA_CLONES void tmulti_f32(int64_t O, int64_t I, const float* w, int64_t ldw, const float* P, int nx,
                             float* Y) {
  gemv_t_multi_any(O, I, w, ldw, P, nx, Y);
}
WERSA_CLONES void tmulti_f64(int64_t O, int64_t I, const double* w, int64_t ldw, const double* P, int nx,
                             double* Y) {
  gemv_t_multi_any(O, I, w, ldw, P, nx, Y);
}
#undef WERSA_CLONES
void range(int64_t o0, int64_t o1, int64_t I, const float* w, int64_t ldw, const float* x, int64_t ldx,
           int64_t nx, const float* b, bool a, float* y, int64_t ldy) {
  static const RangeFn<float> f[3] = {range_f32_base, range_f32_avx2, range_f32_avx512};
  f[int(gemv_isa())](o0, o1, I, w, ldw, x, ldx, nx, b, a, y, ldy);
}
void range(int64_t o0, int64_t o1, int64_t I, const double* w, int64_t ldw, const double* x, int64_t ldx,
           int64_t nx, const double* b, bool a, double* y, int64_t ldy) {
  static const RangeFn<double> f[3] = {range_f64_base, range_f64_avx2, range_f64_avx512};
  f[int(gemv_isa())](o0, o1, I, w, ldw, x, ldx, nx, b, a, y, ldy);
}

template <class T>
void gemv(int64_t nx, int64_t O, int64_t I, const T* w, int64_t ldw, const T* x, int64_t ldx, const T* b,
          bool acc_y, T* y, int64_t ldy, bool threads) {
  const int64_t nblk = (O + 3) / 4, work = O * I * int64_t(sizeof(T)) * nx;
  if (!threads || nblk < 2 || work < gemv_split_bytes()) {
    range(0, O, I, w, ldw, x, ldx, nx, b, acc_y, y, ldy);
    return;
  }
  auto part = [&](int p, int np) {  // contiguous ranges of whole blocks of four rows per chunk
    const int64_t o0 = std::min(O, nblk * p / np * 4), o1 = std::min(O, nblk * (p + 1) / np * 4);
    if (o0 < o1) range(o0, o1, I, w, ldw, x, ldx, nx, b, acc_y, y, ldy);
  };
  team_run(gemv_chunks(nblk, work), part);
}

}  // namespace

GemvIsa gemv_isa() {
  static const int cpu = cpu_isa();
  return GemvIsa(std::min(cpu, g_isa_limit.load(std::memory_order_relaxed)));
}
GemvIsa gemv_limit_isa(GemvIsa most) { return GemvIsa(g_isa_limit.exchange(int(most))); }

void dot_rows_multi(int64_t O, int64_t I, const float* w, int64_t ldw, const float* x, int nx, float* S) {
  dot_multi_f32(O, I, w, ldw, x, nx, S);
}
void dot_rows_multi(int64_t O, int64_t I, const double* w, int64_t ldw, const double* x, int nx, double* S) {
  dot_multi_f64(O, I, w, ldw, x, nx, S);
}
void gemv_t_multi(int64_t O, int64_t I, const float* w, int64_t ldw, const float* P, int nx, float* Y) {
  tmulti_f32(O, I, w, ldw, P, nx, Y);
}
void gemv_t_multi(int64_t O, int64_t I, const double* w, int64_t ldw, const double* P, int nx, double* Y) {
  tmulti_f64(O, I, w, ldw, P, nx, Y);
}

void gemv_rows(int64_t O, int64_t I, const float* w, int64_t ldw, const float* x, const float* b,
               bool accumulate, float* y, bool threads) {
  gemv(1, O, I, w, ldw, x, I, b, accumulate, y, O, threads);
}
void gemv_rows(int64_t O, int64_t I, const double* w, int64_t ldw, const double* x, const double* b,
               bool accumulate, double* y, bool threads) {
  gemv(1, O, I, w, ldw, x, I, b, accumulate, y, O, threads);
}
void gemv_rows_multi(int64_t nx, int64_t O, int64_t I, const float* w, int64_t ldw, const float* x,
                     int64_t ldx, const float* b, bool accumulate, float* y, int64_t ldy, bool threads) {
  gemv(nx, O, I, w, ldw, x, ldx, b, accumulate, y, ldy, threads);
}
void gemv_rows_multi(int64_t nx, int64_t O, int64_t I, const double* w, int64_t ldw, const double* x,
                     int64_t ldx, const double* b, bool accumulate, double* y, int64_t ldy, bool threads) {
  gemv(nx, O, I, w, ldw, x, ldx, b, accumulate, y, ldy, threads);
}
void gemv_t(int64_t O, int64_t I, const float* w, int64_t ldw, const float* p, float* y) {
  transposed_f32(O, I, w, ldw, p, y);
}
void gemv_t(int64_t O, int64_t I, const double* w, int64_t ldw, const double* p, double* y) {
  transposed_f64(O, I, w, ldw, p, y);
}

}  // namespace wersa::cpu

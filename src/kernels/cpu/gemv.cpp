// One-row linear layer (see gemv.h). Rows go four at a time so each load of x serves four rows;
// a row's arithmetic is the same whether it is in a block of four or alone, so the split of the
// rows between threads does not change any result. The rows are split over the decode team
// (team.h, whose workers spin between the GEMVs of a step) when the weights take at least
// gemv_split_bytes() (backend.h: a core's L2 cache unless set). The row kernel is cloned per
// instruction set (target_clones picks one at load time).
#include "gemv.h"

#include <algorithm>
#include <cstring>

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

// R rows: lanes i mod NL of row r gather in lo[r] and hi[r], the tail of I goes into the lanes in
// order, then the lanes are added in order.
template <class T, int R>
__attribute__((always_inline)) inline void rows_block(int64_t I, const T* w, int64_t ldw, const T* x,
                                                      const T* b, bool acc_y, T* y) {
  using H = typename Half<T>::type;
  constexpr int HL = int(sizeof(H) / sizeof(T)), NL = 2 * HL;
  H lo[R], hi[R];
  for (int r = 0; r < R; ++r) lo[r] = H{}, hi[r] = H{};
  const int64_t In = I / NL * NL;
  for (int64_t i = 0; i < In; i += NL) {
    H xl, xh;
    std::memcpy(&xl, x + i, sizeof(H));
    std::memcpy(&xh, x + i + HL, sizeof(H));
    for (int r = 0; r < R; ++r) {
      H wl, wh;
      std::memcpy(&wl, w + r * ldw + i, sizeof(H));
      std::memcpy(&wh, w + r * ldw + i + HL, sizeof(H));
      lo[r] += wl * xl;
      hi[r] += wh * xh;
    }
  }
  for (int r = 0; r < R; ++r) {
    T lanes[NL];
    for (int j = 0; j < HL; ++j) lanes[j] = lo[r][j], lanes[HL + j] = hi[r][j];
    const T* wr = w + r * ldw;
    for (int64_t i = In; i < I; ++i) lanes[i - In] += wr[i] * x[i];
    T s = T(0);
    for (int j = 0; j < NL; ++j) s += lanes[j];
    if (b) s += b[r];
    y[r] = acc_y ? y[r] + s : s;
  }
}

// Rows [o0, o1).
template <class T>
__attribute__((always_inline)) inline void rows_range(int64_t o0, int64_t o1, int64_t I, const T* w,
                                                      int64_t ldw, const T* x, const T* b, bool acc_y, T* y) {
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) rows_block<T, 4>(I, w + o * ldw, ldw, x, b ? b + o : nullptr, acc_y, y + o);
  for (; o < o1; ++o) rows_block<T, 1>(I, w + o * ldw, ldw, x, b ? b + o : nullptr, acc_y, y + o);
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

#define WERSA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
WERSA_CLONES void range_f32(int64_t o0, int64_t o1, int64_t I, const float* w, int64_t ldw, const float* x,
                            const float* b, bool acc_y, float* y) {
  rows_range(o0, o1, I, w, ldw, x, b, acc_y, y);
}
WERSA_CLONES void range_f64(int64_t o0, int64_t o1, int64_t I, const double* w, int64_t ldw, const double* x,
                            const double* b, bool acc_y, double* y) {
  rows_range(o0, o1, I, w, ldw, x, b, acc_y, y);
}
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
void range(int64_t o0, int64_t o1, int64_t I, const float* w, int64_t ldw, const float* x, const float* b,
           bool a, float* y) {
  range_f32(o0, o1, I, w, ldw, x, b, a, y);
}
void range(int64_t o0, int64_t o1, int64_t I, const double* w, int64_t ldw, const double* x, const double* b,
           bool a, double* y) {
  range_f64(o0, o1, I, w, ldw, x, b, a, y);
}

template <class T>
void gemv(int64_t O, int64_t I, const T* w, int64_t ldw, const T* x, const T* b, bool acc_y, T* y,
          bool threads) {
  const int64_t nblk = (O + 3) / 4;
  if (!threads || nblk < 2 || O * I * int64_t(sizeof(T)) < gemv_split_bytes()) {
    range(0, O, I, w, ldw, x, b, acc_y, y);
    return;
  }
  auto part = [&](int p, int np) {  // contiguous ranges of whole blocks of four rows per chunk
    const int64_t o0 = std::min(O, nblk * p / np * 4), o1 = std::min(O, nblk * (p + 1) / np * 4);
    if (o0 < o1) range(o0, o1, I, w, ldw, x, b, acc_y, y);
  };
  team_run(gemv_chunks(nblk, O * I * int64_t(sizeof(T))), part);
}

}  // namespace

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
  gemv(O, I, w, ldw, x, b, accumulate, y, threads);
}
void gemv_rows(int64_t O, int64_t I, const double* w, int64_t ldw, const double* x, const double* b,
               bool accumulate, double* y, bool threads) {
  gemv(O, I, w, ldw, x, b, accumulate, y, threads);
}
void gemv_t(int64_t O, int64_t I, const float* w, int64_t ldw, const float* p, float* y) {
  transposed_f32(O, I, w, ldw, p, y);
}
void gemv_t(int64_t O, int64_t I, const double* w, int64_t ldw, const double* p, double* y) {
  transposed_f64(O, I, w, ldw, p, y);
}

}  // namespace wersa::cpu

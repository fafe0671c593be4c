// CPU causal stationary Haar analysis and gated synthesis (spec steps 4-5); formulas in
// include/wersa/ops/haar.h.
//
// Analysis runs one task per (sequence b, block of CB channels): the block's signal is copied into
// a per-thread buffer A[T][CB] (in T: f32 or f64) that holds a_{l-1}, and each level updates it in place with
// t descending (a_l[t] reads a_{l-1}[t] and a_{l-1}[t - delta], and t - delta has not been overwritten yet).
// Its adjoint runs l = L..1 in place with t ascending (da_{l-1}[t] reads da_l[t] and da_l[t + delta]).
// Synthesis is pointwise in t: one task per row (b, t). With a history state (generation), the analysis reads
// a_{l-1} before the chunk from the ring and writes the chunk's last delta rows of a_{l-1} back; haar_step is
// the same recurrence for one position, serial (C values, O(L) each), fused with the synthesis. The filter
// (haar_filter_fwd/bwd) is fused and tiled in time (below) and never sees a state: a continued sequence is
// routed by the op layer (src/ops/haar.cpp) to haar_step, or to the analysis and synthesis kernels on
// coefficients held in the op's scratch. Scratch: A (and, with a state, the kept rows) per thread for the
// analysis and its adjoint; the synthesis works on channel blocks in registers/stack and takes none.
#include "wersa/ops/haar.h"

#include <algorithm>
#include <cmath>

#include "kernels.h"
#include "reduce.h"

namespace wersa::cpu {
namespace {

constexpr int64_t CB = 32;   // channels per analysis task
constexpr int64_t SCB = 64;  // channels per synthesis block
constexpr double kInvSqrt2 = 0.70710678118654752440;
// dgamma's sums over channels run in the lanes of lane_sum (reduce.h): lane j takes c = j mod 16.
constexpr int64_t kSumLanes = 16;
static_assert(CB % kSumLanes == 0, "channel blocks start at a lane boundary");

}  // namespace

template <class T>
void haar_analysis_fwd(Ctx& ctx, const HaarAnalysisFwd& a) {
  const int L = a.levels;
  const int64_t B = a.x.dim(0), T_ = a.x.dim(1), C = a.x.dim(2);
  const int64_t nkeep_max = std::min<int64_t>(T_, int64_t(1) << (L - 1));
  const auto As = ctx.per_thread<T>(T_ * CB);
  const auto keeps = ctx.per_thread<T>(a.state.defined() ? nkeep_max * CB : 0);
  if (ctx.planning()) return;
  const int64_t plane = B * T_ * C;  // one level of coef
  const T* x = a.x.ptr<T>();
  T* coef = a.coef.ptr<T>();
  T* state = a.state.defined() ? a.state.ptr<T>() : nullptr;
  const int64_t P = (int64_t(1) << L) - 1;  // rows of a state ring
  const int64_t nblk = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static)
  for (int64_t task = 0; task < B * nblk; ++task) {
    const int64_t b = task / nblk, c0 = (task % nblk) * CB, nc = std::min(CB, C - c0);
    T* A = mine(As);
    for (int64_t t = 0; t < T_; ++t)
      for (int64_t c = 0; c < nc; ++c) A[t * CB + c] = x[(b * T_ + t) * C + c0 + c];
    // With a state, the last min(T, delta) rows of a_{l-1} become the ring's new rows; they are
    // saved before the level overwrites A in place and written after it has read the old ring.
    T* keep = state ? mine(keeps) : nullptr;
    T* ring = state ? state + b * P * C + c0 : nullptr;
    for (int l = 1; l <= L; ++l) {
      const int64_t delta = int64_t(1) << (l - 1);
      const int64_t nkeep = std::min(T_, delta);
      if (ring) std::copy(A + (T_ - nkeep) * CB, A + T_ * CB, keep);
      T* lvl = ring ? ring + (delta - 1) * C : nullptr;  // this level's ring rows
      T* d = coef + (l - 1) * plane;
      for (int64_t t = T_ - 1; t >= 0; --t) {
        T* cur = A + t * CB;
        const T* prev = t >= delta ? A + (t - delta) * CB : nullptr;
        const T* hist = !prev && lvl ? lvl + ((a.pos0 + t - delta) & (delta - 1)) * C : nullptr;
        T* drow = d + (b * T_ + t) * C + c0;
        for (int64_t c = 0; c < nc; ++c) {
          const T u = cur[c], p = prev ? prev[c] : hist ? hist[c] : T(0);
          drow[c] = (u - p) * T(kInvSqrt2);
          cur[c] = (u + p) * T(kInvSqrt2);
        }
      }
      for (int64_t j = 0; lvl && j < nkeep; ++j) {
        const int64_t p = a.pos0 + T_ - nkeep + j;
        T* row = lvl + (p & (delta - 1)) * C;
        for (int64_t c = 0; c < nc; ++c) row[c] = keep[j * CB + c];
      }
    }
    T* aL = coef + L * plane;
    for (int64_t t = 0; t < T_; ++t)
      for (int64_t c = 0; c < nc; ++c) aL[(b * T_ + t) * C + c0 + c] = A[t * CB + c];
  }
}

template <class T>
void haar_step(Ctx&, const HaarStep& a) {
  const int L = a.levels;
  const int64_t C = a.x.dim(0);
  const T* x = a.x.ptr<T>();
  T* state = a.state.ptr<T>();
  T* y = a.y.defined() ? a.y.ptr<T>() : nullptr;
  const T* gamma = y ? a.gamma.ptr<T>() : nullptr;
  T dl[17];  // the details d_1..d_L of this position
  for (int64_t c = 0; c < C; ++c) {
    T u = x[c];
    for (int l = 1; l <= L; ++l) {
      const int64_t delta = int64_t(1) << (l - 1);
      T& slot = state[(delta - 1 + (a.pos & (delta - 1))) * C + c];  // holds a_{l-1}[pos - delta]
      const T p = slot;
      dl[l] = (u - p) * T(kInvSqrt2);
      slot = u;
      u = (u + p) * T(kInvSqrt2);
    }
    if (!y) continue;
    T r = gamma[L] * u;
    for (int l = L; l >= 1; --l) r = (r + gamma[l - 1] * dl[l]) * T(kInvSqrt2);
    y[c] = r;
  }
}

template <class T>
void haar_analysis_bwd(Ctx& ctx, const HaarAnalysisBwd& a) {
  const int L = a.levels;
  const int64_t B = a.dx.dim(0), T_ = a.dx.dim(1), C = a.dx.dim(2);
  const auto As = ctx.per_thread<T>(T_ * CB);
  if (ctx.planning()) return;
  const int64_t plane = B * T_ * C;
  const T* dcoef = a.dcoef.ptr<T>();
  T* dx = a.dx.ptr<T>();
  const int64_t nblk = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static)
  for (int64_t task = 0; task < B * nblk; ++task) {
    const int64_t b = task / nblk, c0 = (task % nblk) * CB, nc = std::min(CB, C - c0);
    T* A = mine(As);  // da_l, starting from da_L
    const T* daL = dcoef + L * plane;
    for (int64_t t = 0; t < T_; ++t)
      for (int64_t c = 0; c < nc; ++c) A[t * CB + c] = daL[(b * T_ + t) * C + c0 + c];
    for (int l = L; l >= 1; --l) {
      const int64_t delta = int64_t(1) << (l - 1);
      const T* dd = dcoef + (l - 1) * plane;
      for (int64_t t = 0; t < T_; ++t) {
        T* cur = A + t * CB;
        const T* ddrow = dd + (b * T_ + t) * C + c0;
        if (t + delta < T_) {
          const T* next = A + (t + delta) * CB;
          const T* ddnext = dd + (b * T_ + t + delta) * C + c0;
          for (int64_t c = 0; c < nc; ++c) cur[c] = (cur[c] + ddrow[c] + next[c] - ddnext[c]) * T(kInvSqrt2);
        } else {
          for (int64_t c = 0; c < nc; ++c) cur[c] = (cur[c] + ddrow[c]) * T(kInvSqrt2);
        }
      }
    }
    for (int64_t t = 0; t < T_; ++t) {
      T* row = dx + (b * T_ + t) * C + c0;
      const T* src = A + t * CB;
      if (a.accumulate_dx)
        for (int64_t c = 0; c < nc; ++c) row[c] += src[c];
      else
        std::copy(src, src + nc, row);
    }
  }
}

template <class T>
void haar_synthesis_fwd(Ctx&, const HaarSynthesisFwd& a) {
  const int L = a.levels;
  const int64_t B = a.y.dim(0), T_ = a.y.dim(1), C = a.y.dim(2);
  const int64_t plane = B * T_ * C;
  const T* coef = a.coef.ptr<T>();
  const T* gamma = a.gamma.ptr<T>();
  T* y = a.y.ptr<T>();
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T_; ++bt) {
    const T* gm = gamma + bt * (L + 1);
    for (int64_t c0 = 0; c0 < C; c0 += SCB) {
      const int64_t nc = std::min(SCB, C - c0);
      T r[SCB];
      const T* aL = coef + L * plane + bt * C + c0;
      for (int64_t c = 0; c < nc; ++c) r[c] = gm[L] * aL[c];
      for (int l = L; l >= 1; --l) {
        const T* d = coef + (l - 1) * plane + bt * C + c0;
        const T g = gm[l - 1];
        for (int64_t c = 0; c < nc; ++c) r[c] = (r[c] + g * d[c]) * T(kInvSqrt2);
      }
      std::copy(r, r + nc, y + bt * C + c0);
    }
  }
}

template <class T>
void haar_synthesis_bwd(Ctx&, const HaarSynthesisBwd& a) {
  const int L = a.levels;
  const int64_t B = a.dy.dim(0), T_ = a.dy.dim(1), C = a.dy.dim(2);
  const int64_t plane = B * T_ * C;
  const T* coef = a.coef.ptr<T>();
  const T* gamma = a.gamma.ptr<T>();
  const T* dy = a.dy.ptr<T>();
  T* dcoef = a.dcoef.defined() ? a.dcoef.ptr<T>() : nullptr;
  T* dgamma = a.dgamma.defined() ? a.dgamma.ptr<T>() : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T_; ++bt) {
    const T* gm = gamma + bt * (L + 1);
    const T* dyr = dy + bt * C;
    // Adjoint of r_{l-1} = (r_l + gamma_{l-1} d_l) / sqrt(2), walked l = 1..L from dr_0 = dy:
    // dd_l = gamma_{l-1} dr_{l-1} / sqrt(2) and dr_l = dr_{l-1} / sqrt(2), so both are dy * scale
    // with scale = 2^(-l/2) after step l's division.
    double scale = 1.0;
    for (int l = 1; l <= L + 1; ++l) {
      // l <= L: the detail d_l (coef level l-1, gate l-1); l = L+1: the approximation a_L (coef level
      // L, gate L), whose gradient is gamma_L dr_L with no further division.
      const int lvl = l - 1;
      if (l <= L) scale *= kInvSqrt2;
      const int64_t off = lvl * plane + bt * C;
      if (dcoef) {
        const T k = gm[lvl] * T(scale);
        for (int64_t c = 0; c < C; ++c) dcoef[off + c] = k * dyr[c];
      }
      if (dgamma) {
        const double s = lane_sum(C, [&](int64_t c) { return double(dyr[c]) * double(coef[off + c]); });
        T& dst = dgamma[bt * (L + 1) + lvl];
        dst = T(s * scale + (a.accumulate_dgamma ? double(dst) : 0.0));
      }
    }
  }
}

// The gated filter without a history state runs fused and tiled in time: one task per (sequence,
// tile of rows), the coefficients of a tile made in a per-thread buffer from the tile's rows and
// the 2^L - 1 rows before it (a halo: a_l[t] and d_l[t] read x[t - 2^l + 1 .. t] only), so they
// never cross memory. Each coefficient is rounded to T as the analysis kernel stores it and every
// sum runs in the same order, so the result is bitwise that of analysis, then synthesis (a test).
// The backward does the same with a halo after the tile for the analysis adjoint (da_{l-1}[t]
// reads t + delta) and sums dgamma over the channel blocks in the lanes of lane_sum, in channel
// order within each lane, as the synthesis adjoint does. (With a state, the op layer runs the analysis and
// synthesis kernels instead.)
namespace {

// Rows per tile: large against the halo of 2^L - 1 rows, small enough that a tile's buffers
// (a few hundred KiB at L = 3) stay in the L2 cache.
int64_t filter_tile(int L) { return std::max<int64_t>(128, int64_t(4) << L); }
// Channels per block of the tiled filter: wide rows (the loops over a row's channels are the inner
// loops), buffers of a few hundred KiB per thread at L = 3.
constexpr int64_t FCB = 128;
static_assert(FCB % kSumLanes == 0, "channel blocks start at a lane boundary");

// The analysis of rows [s, e) of channels [c0, c0 + nc) of sequence b into A [(e - s) x FCB]
// (a_L on return) and the details of rows [s + off, e) into D [L][(e - s - off) x FCB].
// Rows before s count as 0: exact when s = 0, and otherwise only the first 2^L - 1 rows of A are
// wrong, which the callers' halo leaves out.
template <class T>
void tile_analysis(const T* x, int64_t T_, int64_t C, int L, int64_t b, int64_t c0, int64_t nc, int64_t s,
                   int64_t e, int64_t off, T* A, T* D) {
  const int64_t n = e - s, m = n - off;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < nc; ++c) A[i * FCB + c] = x[(b * T_ + s + i) * C + c0 + c];
  for (int l = 1; l <= L; ++l) {
    const int64_t delta = int64_t(1) << (l - 1);
    T* Dl = D + (l - 1) * m * FCB;
    for (int64_t i = n - 1; i >= 0; --i) {
      T* cur = A + i * FCB;
      const T* prev = i >= delta ? A + (i - delta) * FCB : nullptr;
      T* drow = i >= off ? Dl + (i - off) * FCB : nullptr;
      for (int64_t c = 0; c < nc; ++c) {
        const T u = cur[c], p = prev ? prev[c] : T(0);
        if (drow) drow[c] = (u - p) * T(kInvSqrt2);
        cur[c] = (u + p) * T(kInvSqrt2);
      }
    }
  }
}

template <class T>
void filter_fwd_tiled(Ctx& ctx, const HaarFilterFwd& a) {
  const int L = a.levels;
  const int64_t B = a.x.dim(0), T_ = a.x.dim(1), C = a.x.dim(2), P = (int64_t(1) << L) - 1;
  const int64_t TT = std::min(filter_tile(L), std::max<int64_t>(T_, 1));
  const auto As = ctx.per_thread<T>((TT + P) * FCB);
  const auto Ds = ctx.per_thread<T>(L * TT * FCB);
  if (ctx.planning()) return;
  const int64_t ntile = (T_ + TT - 1) / TT, nblk = (C + FCB - 1) / FCB;
  const T* x = a.x.ptr<T>();
  const T* gamma = a.gamma.ptr<T>();
  T* y = a.y.ptr<T>();
#pragma omp parallel for schedule(static)
  for (int64_t task = 0; task < B * ntile * nblk; ++task) {
    const int64_t b = task / (ntile * nblk), tile = task / nblk % ntile, c0 = task % nblk * FCB;
    const int64_t nc = std::min(FCB, C - c0), t0 = tile * TT, t1 = std::min(T_, t0 + TT);
    const int64_t s = std::max<int64_t>(0, t0 - P), off = t0 - s, m = t1 - t0;
    T* A = mine(As);
    T* D = mine(Ds);
    tile_analysis(x, T_, C, L, b, c0, nc, s, t1, off, A, D);
    for (int64_t i = 0; i < m; ++i) {
      const T* gm = gamma + (b * T_ + t0 + i) * (L + 1);
      const T* aL = A + (off + i) * FCB;
      T r[FCB];
      for (int64_t c = 0; c < nc; ++c) r[c] = gm[L] * aL[c];
      for (int l = L; l >= 1; --l) {
        const T* d = D + ((l - 1) * m + i) * FCB;
        const T g = gm[l - 1];
        for (int64_t c = 0; c < nc; ++c) r[c] = (r[c] + g * d[c]) * T(kInvSqrt2);
      }
      std::copy(r, r + nc, y + (b * T_ + t0 + i) * C + c0);
    }
  }
}

template <class T>
void filter_bwd_tiled(Ctx& ctx, const HaarFilterBwd& a) {
  const int L = a.levels;
  const int64_t B = a.x.dim(0), T_ = a.x.dim(1), C = a.x.dim(2), P = (int64_t(1) << L) - 1;
  const int64_t TT = std::min(filter_tile(L), std::max<int64_t>(T_, 1));
  const bool want_dx = a.dx.defined(), want_dg = a.dgamma.defined();
  const auto As = ctx.per_thread<T>(want_dg ? (TT + P) * FCB : 0);
  const auto Ds = ctx.per_thread<T>(want_dg ? L * TT * FCB : 0);
  const auto Gs = ctx.per_thread<double>(want_dg ? TT * (L + 1) * kSumLanes : 0);
  const auto DAs = ctx.per_thread<T>(want_dx ? (TT + P) * FCB : 0);
  const auto DDs = ctx.per_thread<T>(want_dx ? L * (TT + P) * FCB : 0);
  if (ctx.planning()) return;
  // dr_{l-1} = dy * 2^(-(l-1)/2); dd_l = gamma_{l-1} dr_{l-1} / sqrt(2): the synthesis adjoint's
  // scale per coefficient level, multiplied up in the same order as there.
  double scales[17];
  double sc = 1.0;
  for (int l = 1; l <= L + 1; ++l) {
    if (l <= L) sc *= kInvSqrt2;
    scales[l - 1] = sc;
  }
  const int64_t ntile = (T_ + TT - 1) / TT;
  const T* x = a.x.ptr<T>();
  const T* gamma = a.gamma.ptr<T>();
  const T* dy = a.dy.ptr<T>();
  T* dx = want_dx ? a.dx.ptr<T>() : nullptr;
  T* dgamma = want_dg ? a.dgamma.ptr<T>() : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t task = 0; task < B * ntile; ++task) {
    const int64_t b = task / ntile, t0 = task % ntile * TT, t1 = std::min(T_, t0 + TT), m = t1 - t0;
    const int64_t s = std::max<int64_t>(0, t0 - P), e = std::min(T_, t1 + P), n2 = e - t0;
    double* G = want_dg ? mine(Gs) : nullptr;
    if (G) std::fill(G, G + m * (L + 1) * kSumLanes, 0.0);
    for (int64_t c0 = 0; c0 < C; c0 += FCB) {
      const int64_t nc = std::min(FCB, C - c0);
      if (G) {  // dgamma_lvl[t]: lane j adds dy * coef_lvl of the channels c = j mod 16, in order
        T* A = mine(As);
        T* D = mine(Ds);
        tile_analysis(x, T_, C, L, b, c0, nc, s, t1, t0 - s, A, D);
        for (int64_t i = 0; i < m; ++i) {
          const T* dyr = dy + (b * T_ + t0 + i) * C + c0;
          for (int lvl = 0; lvl <= L; ++lvl) {
            const T* cf = lvl < L ? D + (lvl * m + i) * FCB : A + (t0 - s + i) * FCB;
            double* acc = G + (i * (L + 1) + lvl) * kSumLanes;
            int64_t c = 0;
            for (; c + kSumLanes <= nc; c += kSumLanes)
              for (int64_t j = 0; j < kSumLanes; ++j) acc[j] += double(dyr[c + j]) * double(cf[c + j]);
            for (int64_t j = 0; c < nc; ++c, ++j) acc[j] += double(dyr[c]) * double(cf[c]);
          }
        }
      }
      if (!want_dx) continue;
      // dcoef over rows [t0, e), rounded as the synthesis adjoint stores it; then the analysis
      // adjoint in place, t ascending, rows from e on counted as 0 (exact at the sequence end,
      // and otherwise wrong only in the halo after t1).
      T* DA = mine(DAs);
      T* DD = mine(DDs);
      for (int64_t i = 0; i < n2; ++i) {
        const T* gm = gamma + (b * T_ + t0 + i) * (L + 1);
        const T* dyr = dy + (b * T_ + t0 + i) * C + c0;
        for (int lvl = 0; lvl <= L; ++lvl) {
          const T k = gm[lvl] * T(scales[lvl]);
          T* dst = lvl < L ? DD + (lvl * n2 + i) * FCB : DA + i * FCB;
          for (int64_t c = 0; c < nc; ++c) dst[c] = k * dyr[c];
        }
      }
      for (int l = L; l >= 1; --l) {
        const int64_t delta = int64_t(1) << (l - 1);
        const T* dd = DD + (l - 1) * n2 * FCB;
        for (int64_t i = 0; i < n2; ++i) {
          T* cur = DA + i * FCB;
          const T* ddrow = dd + i * FCB;
          if (i + delta < n2) {
            const T* next = DA + (i + delta) * FCB;
            const T* ddnext = dd + (i + delta) * FCB;
            for (int64_t c = 0; c < nc; ++c)
              cur[c] = (cur[c] + ddrow[c] + next[c] - ddnext[c]) * T(kInvSqrt2);
          } else {
            for (int64_t c = 0; c < nc; ++c) cur[c] = (cur[c] + ddrow[c]) * T(kInvSqrt2);
          }
        }
      }
      for (int64_t i = 0; i < m; ++i)
        std::copy(DA + i * FCB, DA + i * FCB + nc, dx + (b * T_ + t0 + i) * C + c0);
    }
    for (int64_t i = 0; G && i < m; ++i)
      for (int lvl = 0; lvl <= L; ++lvl) {
        const double* acc = G + (i * (L + 1) + lvl) * kSumLanes;
        double sum = 0;  // the lanes in order, as lane_sum adds them
        for (int64_t j = 0; j < kSumLanes; ++j) sum += acc[j];
        T& dst = dgamma[(b * T_ + t0 + i) * (L + 1) + lvl];
        dst = T(sum * scales[lvl] + (a.accumulate_dgamma ? double(dst) : 0.0));
      }
  }
}

}  // namespace

template <class T>
void haar_filter_fwd(Ctx& ctx, const HaarFilterFwd& a) {
  filter_fwd_tiled<T>(ctx, a);
}

template <class T>
void haar_filter_bwd(Ctx& ctx, const HaarFilterBwd& a) {
  filter_bwd_tiled<T>(ctx, a);
}

template void haar_analysis_fwd<float>(Ctx&, const HaarAnalysisFwd&);
template void haar_analysis_fwd<double>(Ctx&, const HaarAnalysisFwd&);
template void haar_step<float>(Ctx&, const HaarStep&);
template void haar_step<double>(Ctx&, const HaarStep&);
template void haar_analysis_bwd<float>(Ctx&, const HaarAnalysisBwd&);
template void haar_analysis_bwd<double>(Ctx&, const HaarAnalysisBwd&);
template void haar_synthesis_fwd<float>(Ctx&, const HaarSynthesisFwd&);
template void haar_synthesis_fwd<double>(Ctx&, const HaarSynthesisFwd&);
template void haar_synthesis_bwd<float>(Ctx&, const HaarSynthesisBwd&);
template void haar_synthesis_bwd<double>(Ctx&, const HaarSynthesisBwd&);
template void haar_filter_fwd<float>(Ctx&, const HaarFilterFwd&);
template void haar_filter_fwd<double>(Ctx&, const HaarFilterFwd&);
template void haar_filter_bwd<float>(Ctx&, const HaarFilterBwd&);
template void haar_filter_bwd<double>(Ctx&, const HaarFilterBwd&);

}  // namespace wersa::cpu

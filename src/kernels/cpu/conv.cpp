// CPU depthwise convolution along time: y[b,t,c] = bias[c] + sum_i w[c,i] x[b, t-o+i, c], with
// o = K-1 (causal) or (K-1)/2 (centred), x = 0 outside [0, T). Rows (b, t) run in parallel for y
// and dx; dw and db are summed per channel block in a fixed (b, t) order, so they do not depend on
// the thread count. Every output sums bias, then the taps i = 0..K-1, in the kernel's type (f32 or
// f64: K fused multiply-adds, a short chain).
// A causal forward with a window continues a sequence: inputs before the chunk (chunk position
// t < 0, absolute position pos0 + t) are read from the ring [B, K-1, C] (row (pos0 + t) mod (K-1);
// absolute positions < 0 are zero and skipped), so each output is the one-shot sum; it does not
// change the ring: depthwise_conv_window then writes the chunk's last min(T, K-1) inputs into it.
// The step kernel sums in the same order (and in the same type: bitwise the chunk's output). Which
// of them runs for a chunk is decided by the op layer (src/ops/conv.cpp).
// With lengths (padded batches), the forward skips the taps that read an input row t >= n_b and
// the input gradient writes 0 at those rows (or leaves them when accumulating); the parameter
// gradients skip them. Without lengths every loop is the one above, unchanged.
// dw and db sum over (b, t) in runs of 64 positions in the kernel's type, each run then added to a
// double total (f32 error of a 64-term sum, not of B*T terms).
// Scratch: the transposed filter [K, C] and one accumulator row [C] per thread; the parameter
// gradients one [K, 16] block of run sums and one of double totals per thread.
#include "wersa/ops/conv.h"

#include <omp.h>

#include <algorithm>
#include <type_traits>

#include "kernels.h"
#include "lengths.h"
#include "simd.h"

namespace wersa::cpu {
namespace {

int64_t conv_offset(int64_t K, bool causal) { return causal ? K - 1 : (K - 1) / 2; }

// Every output's sum of taps is a chain of fused multiply-adds (simd.h's fma_f: one rounding where
// the build targets FMA, two in a portable build).
using simd::fma_f;

// w [C, K] transposed into wt [K, C] so that the inner loop over channels is contiguous.
template <class T>
void transpose_w(const Tensor& w, T* wt) {
  const int64_t C = w.dim(0), K = w.dim(1);
  const T* src = w.ptr<T>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < K; ++i) wt[i * C + c] = src[c * K + i];
}

// A ring of the inputs before the chunk (causal forward with a window).
template <class T>
struct Ring {
  const T* rows = nullptr;  // [B, W, C]
  int64_t W = 0, pos0 = 0;
};

// One output row of correlate (below) (the general case: taps out of range are skipped, ring rows read).
template <class T>
void correlate_row(T* acc, T* o, const T* in, const T* wt, const T* bias, int64_t b, int64_t s, int64_t T_,
                   int64_t C, int64_t K, int64_t shift, int64_t sign, bool accumulate, const Ring<T>& ring,
                   int64_t end) {
  for (int64_t c = 0; c < C; ++c) acc[c] = bias ? bias[c] : T(0);
  for (int64_t i = 0; i < K; ++i) {
    const int64_t t = s + shift + sign * i;
    if (t >= end) continue;
    const T* row;
    if (t >= 0)
      row = in + (b * T_ + t) * C;
    else if (ring.rows && ring.pos0 + t >= 0)
      row = ring.rows + (b * ring.W + (ring.pos0 + t) % ring.W) * C;
    else
      continue;
    const T* wr = wt + i * C;
    for (int64_t c = 0; c < C; ++c) acc[c] = fma_f(wr[c], row[c], acc[c]);
  }
  if (accumulate)
    for (int64_t c = 0; c < C; ++c) o[c] += acc[c];
  else
    std::copy(acc, acc + C, o);
}

constexpr int64_t kRows = 8, kLanes = 16;  // register block of the interior: rows x channels

// kRows consecutive output rows whose taps all read rows in [0, end): channels in blocks of kLanes
// held in registers across the taps. The same sums in the same order as correlate_row.
template <class T>
void correlate_block(T* out, const T* in, const T* wt, const T* bias, int64_t C, int64_t K, int64_t shift,
                     int64_t sign, bool accumulate) {
  if constexpr (std::is_same_v<T, float> && simd::kLanes > 1 && kLanes % simd::kLanes == 0) {  // on VF
    using simd::VF;
    constexpr int64_t NV = kLanes / simd::kLanes;
    // The loops over r and v unrolled early (the pragmas), so that GCC 12 keeps acc in registers:
    // without them it stored the accumulators after initialising them and reloaded them at once.
    for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
      VF acc[kRows][NV];
#pragma GCC unroll 8
      for (int64_t r = 0; r < kRows; ++r)
#pragma GCC unroll 8
        for (int64_t v = 0; v < NV; ++v)
          acc[r][v] = bias ? simd::load(bias + c0 + v * simd::kLanes) : VF(0.f);
      for (int64_t i = 0; i < K; ++i) {
        const float* wr = wt + i * C + c0;
        const float* x = in + (shift + sign * i) * C + c0;
        VF w[NV];
#pragma GCC unroll 8
        for (int64_t v = 0; v < NV; ++v) w[v] = simd::load(wr + v * simd::kLanes);
#pragma GCC unroll 8
        for (int64_t r = 0; r < kRows; ++r)
#pragma GCC unroll 8
          for (int64_t v = 0; v < NV; ++v)
            acc[r][v] = simd::fma_f(w[v], simd::load(x + r * C + v * simd::kLanes), acc[r][v]);
      }
#pragma GCC unroll 8
      for (int64_t r = 0; r < kRows; ++r)
#pragma GCC unroll 8
        for (int64_t v = 0; v < NV; ++v) {
          float* y = out + r * C + c0 + v * simd::kLanes;
          simd::store(y, accumulate ? simd::load(y) + acc[r][v] : acc[r][v]);
        }
    }
    return;
  }
  for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
    T acc[kRows][kLanes];
    for (int64_t r = 0; r < kRows; ++r)
      for (int64_t c = 0; c < kLanes; ++c) acc[r][c] = bias ? bias[c0 + c] : T(0);
    for (int64_t i = 0; i < K; ++i) {
      const T* wr = wt + i * C + c0;
      const T* x = in + (shift + sign * i) * C + c0;  // row of output 0
      for (int64_t r = 0; r < kRows; ++r)
        for (int64_t c = 0; c < kLanes; ++c) acc[r][c] = fma_f(wr[c], x[r * C + c], acc[r][c]);
    }
    for (int64_t r = 0; r < kRows; ++r)
      for (int64_t c = 0; c < kLanes; ++c) {
        T& y = out[r * C + c0 + c];
        y = accumulate ? y + acc[r][c] : acc[r][c];
      }
  }
}

// out[b,s,c] (=|+=) sum_i wt[i,c] * in[b, s + shift + sign*i, c] over in-range positions: the forward
// uses (shift, sign) = (-o, +1), the input gradient (o, -1). With a ring, positions t < 0 of the
// chunk are read from it (absolute position pos0 + t >= 0) instead of being skipped. With in_len,
// rows t >= in_len[b] of `in` are taken as 0 (never read); with out_len, rows s >= out_len[b] of
// `out` are 0 (written, or left when accumulating). Tasks of kRows rows of one sequence; a task
// whose rows all read in range only (and C is a multiple of kLanes) runs the register block.
template <class T>
void correlate(const PerThread<T>& scratch, T* out, const T* in, const T* wt, const T* bias, int64_t B,
               int64_t T_, int64_t C, int64_t K, int64_t shift, int64_t sign, bool accumulate,
               const Ring<T>& ring, const int32_t* in_len, const int32_t* out_len) {
  const int64_t per_seq = (T_ + kRows - 1) / kRows;
  const int64_t lo_tap = std::min<int64_t>(0, sign * (K - 1)), hi_tap = std::max<int64_t>(0, sign * (K - 1));
#pragma omp parallel for schedule(static)
  for (int64_t task = 0; task < B * per_seq; ++task) {
    T* acc = mine(scratch);
    const int64_t b = task / per_seq, s0 = task % per_seq * kRows, s1 = std::min(T_, s0 + kRows);
    const int64_t end = in_len ? in_len[b] : T_, out_end = out_len ? out_len[b] : T_;
    T* o = out + (b * T_ + s0) * C;
    if (s1 - s0 == kRows && C % kLanes == 0 && s0 + shift + lo_tap >= 0 && s1 - 1 + shift + hi_tap < end &&
        s1 <= out_end) {
      correlate_block(o, in + (b * T_ + s0) * C, wt, bias, C, K, shift, sign, accumulate);
      continue;
    }
    for (int64_t s = s0; s < s1; ++s, o += C) {
      if (s >= out_end) {
        if (!accumulate) std::fill(o, o + C, T(0));
        continue;
      }
      correlate_row(acc, o, in, wt, bias, b, s, T_, C, K, shift, sign, accumulate, ring, end);
    }
  }
}

// Positions per run sum of the parameter gradients; channels per task at most.
constexpr int64_t kGradRun = 64, kGradChannelsMax = 64;

// sums[j][c] = sum over the run's n positions t (ascending) of g[t][c] x[t + j][c], for the TG
// taps j and CB channels c: rows are C apart in g and x.
template <class T, int64_t CB, int64_t TG>
void tap_group_sums(const T* g, const T* x, int64_t C, int64_t n, T* sums) {
  constexpr int64_t kTapGroup = TG;
  if constexpr (std::is_same_v<T, float> && simd::kLanes > 1 && CB % simd::kLanes == 0) {
    using simd::VF;
    constexpr int64_t NV = CB / simd::kLanes;
    VF v[kTapGroup][NV];
    for (int64_t j = 0; j < kTapGroup; ++j)
      for (int64_t q = 0; q < NV; ++q) v[j][q] = VF(0.f);
    for (int64_t t = 0; t < n; ++t) {
      const float* gr = g + t * C;
      const float* xr = x + t * C;
      VF gv[NV];
      for (int64_t q = 0; q < NV; ++q) gv[q] = simd::load(gr + q * simd::kLanes);
      for (int64_t j = 0; j < kTapGroup; ++j)
        for (int64_t q = 0; q < NV; ++q)
          v[j][q] = simd::fma_f(gv[q], simd::load(xr + j * C + q * simd::kLanes), v[j][q]);
    }
    for (int64_t j = 0; j < kTapGroup; ++j)
      for (int64_t q = 0; q < NV; ++q) simd::store(sums + j * CB + q * simd::kLanes, v[j][q]);
    return;
  }
  T v[kTapGroup][CB] = {};
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < kTapGroup; ++j)
      for (int64_t c = 0; c < CB; ++c) v[j][c] = fma_f(g[t * C + c], x[(t + j) * C + c], v[j][c]);
  for (int64_t j = 0; j < kTapGroup; ++j) std::copy(v[j], v[j] + CB, sums + j * CB);
}

// The weight and bias gradients in tasks of CB channels (taps in groups of TG over whole runs).
template <class T, int64_t CB, int64_t TG>
void conv_param_grads(const DepthwiseConvBwd& a, const T* dy, const int32_t* len, const PerThread<T>& run_all,
                      const PerThread<double>& tot_all) {
  constexpr int64_t kTapGroup = TG;
  constexpr int64_t RUN = kGradRun;
  const int64_t B = a.x.dim(0), T_ = a.x.dim(1), C = a.x.dim(2), K = a.w.dim(1);
  const int64_t o = conv_offset(K, a.causal);
  const T* x = a.x.ptr<T>();
  T* dw = a.dw.defined() ? a.dw.ptr<T>() : nullptr;
  T* db = a.db.defined() ? a.db.ptr<T>() : nullptr;
  const int64_t nblocks = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t c0 = blk * CB, nc = std::min(CB, C - c0);
    T* run = mine(run_all);       // [K, CB] tap sums, then [CB] the bias sum
    double* tot = mine(tot_all);  // the same, over all runs
    std::fill(tot, tot + (K + 1) * CB, 0.0);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t end = len ? len[b] : T_;
      for (int64_t t0 = 0; t0 < T_; t0 += RUN) {
        std::fill(run, run + (K + 1) * CB, T(0));
        const int64_t t1 = std::min(T_, t0 + RUN);
        T* rb = run + K * CB;
        for (int64_t t = t0; t < t1; ++t) {
          const T* g = dy + (b * T_ + t) * C + c0;
          for (int64_t c = 0; c < nc; ++c) rb[c] += g[c];
        }
        // Tap by tap, the sum over the run's positions whose input row s = t - o + i is in [0, end)
        // (for each tap and channel: t ascending, as a position-major loop would add them).
        // Runs where kTapGroup successive taps all cover the whole run take them together:
        // independent sums per channel (each still t ascending), not one chain of dependent adds.
        const auto whole = [&](int64_t i) { return o - i <= t0 && end + o - i >= t1; };
        int64_t i0 = 0;
        if (nc == CB)
          for (; i0 + kTapGroup <= K && whole(i0) && whole(i0 + kTapGroup - 1); i0 += kTapGroup)
            tap_group_sums<T, CB, TG>(dy + (b * T_ + t0) * C + c0, x + (b * T_ + t0 - o + i0) * C + c0, C,
                                      t1 - t0, run + i0 * CB);
        for (int64_t i = i0; i < K; ++i) {
          const int64_t ta = std::max(t0, o - i), tb = std::min(t1, end + o - i);
          T* aw = run + i * CB;
          if (nc == CB) {
            T v[CB] = {};
            for (int64_t t = ta; t < tb; ++t) {
              const T* g = dy + (b * T_ + t) * C + c0;
              const T* xr = x + (b * T_ + t - o + i) * C + c0;
              for (int64_t c = 0; c < CB; ++c) v[c] = fma_f(g[c], xr[c], v[c]);
            }
            std::copy(v, v + CB, aw);
          } else {
            for (int64_t t = ta; t < tb; ++t) {
              const T* g = dy + (b * T_ + t) * C + c0;
              const T* xr = x + (b * T_ + t - o + i) * C + c0;
              for (int64_t c = 0; c < nc; ++c) aw[c] = fma_f(g[c], xr[c], aw[c]);
            }
          }
        }
        for (int64_t j = 0; j < (K + 1) * CB; ++j) tot[j] += double(run[j]);
      }
    }
    for (int64_t c = 0; c < nc; ++c) {
      if (db) db[c0 + c] += T(tot[K * CB + c]);
      if (dw)
        for (int64_t i = 0; i < K; ++i) dw[(c0 + c) * K + i] += T(tot[i * CB + c]);
    }
  }
}

}  // namespace

template <class T>
void depthwise_conv_fwd(Ctx& ctx, const DepthwiseConvFwd& a) {
  const int64_t B = a.x.dim(0), T_ = a.x.dim(1), C = a.x.dim(2), K = a.w.dim(1), W = K - 1;
  const bool ring = a.window.defined() && W > 0;
  T* wt = ctx.take<T>(K * C);
  const auto acc = ctx.per_thread<T>(C);
  if (ctx.planning() || B * T_ * C == 0) return;
  transpose_w(a.w, wt);
  Ring<T> r;
  if (ring) r = Ring<T>{a.window.ptr<T>(), W, a.pos0};
  const int32_t* len = a.lengths.defined() ? checked_lengths("depthwise_conv_fwd", a.lengths, T_) : nullptr;
  correlate(acc, a.y.ptr<T>(), a.x.ptr<T>(), wt, a.b.defined() ? a.b.ptr<T>() : nullptr, B, T_, C, K,
            -conv_offset(K, a.causal), 1, false, r, len, nullptr);
}

template <class T>
void depthwise_conv_window(Ctx&, const DepthwiseConvWindow& a) {
  // The chunk's last min(T, W) inputs replace the oldest rows of the ring.
  const int64_t B = a.x.dim(0), T_ = a.x.dim(1), C = a.x.dim(2), W = a.window.dim(1);
  const T* x = a.x.ptr<T>();
  T* win = a.window.ptr<T>();
  const int64_t keep = std::min(T_, W);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = T_ - keep; t < T_; ++t)
      std::copy(x + (b * T_ + t) * C, x + (b * T_ + t + 1) * C, win + (b * W + (a.pos0 + t) % W) * C);
}

template <class T>
void depthwise_conv_bwd(Ctx& ctx, const DepthwiseConvBwd& a) {
  const int64_t B = a.x.dim(0), T_ = a.x.dim(1), C = a.x.dim(2), K = a.w.dim(1);
  const int64_t o = conv_offset(K, a.causal);
  constexpr int64_t CB = kGradChannelsMax;  // channels per task of the parameter gradients (at most)
  const bool params = a.dw.defined() || a.db.defined();
  T* wt = a.dx.defined() ? ctx.take<T>(K * C) : nullptr;
  const auto acc = ctx.per_thread<T>(a.dx.defined() ? C : 0);
  const auto run_all = ctx.per_thread<T>(params ? (K + 1) * CB : 0);
  const auto tot_all = ctx.per_thread<double>(params ? (K + 1) * CB : 0);
  if (ctx.planning() || B * T_ * C == 0) return;
  const T* dy = a.dy.ptr<T>();
  const int32_t* len = a.lengths.defined() ? checked_lengths("depthwise_conv_bwd", a.lengths, T_) : nullptr;
  if (a.dx.defined()) {
    transpose_w(a.w, wt);
    correlate(acc, a.dx.ptr<T>(), dy, wt, static_cast<const T*>(nullptr), B, T_, C, K, o, -1, a.accumulate_dx,
              Ring<T>{}, nullptr, len);
  }
  if (!params) return;
  // Channels per task: the widest of 64, 32, 16 that still gives every thread two tasks (wider
  // blocks read dy and x in longer pieces of each row). The sums do not depend on it.
  const int64_t per = 2 * int64_t(omp_get_max_threads());
  if (C % 64 == 0 && C / 64 >= per)
    conv_param_grads<T, 64, 4>(a, dy, len, run_all, tot_all);
  else if (C % 32 == 0 && C / 32 >= per)
    conv_param_grads<T, 32, 8>(a, dy, len, run_all, tot_all);
  else
    conv_param_grads<T, 16, 8>(a, dy, len, run_all, tot_all);
}

template <class T>
void depthwise_conv_step(Ctx& ctx, const DepthwiseConvStep& a) {
  const int64_t C = a.x.dim(0), K = a.w.dim(1), W = K - 1;
  T* acc = ctx.take<T>(C);
  if (ctx.planning()) return;
  const T* w = a.w.ptr<T>();
  const T* x = a.x.ptr<T>();
  const T* bias = a.b.defined() ? a.b.ptr<T>() : nullptr;
  for (int64_t c = 0; c < C; ++c) acc[c] = bias ? bias[c] : T(0);
  for (int64_t i = 0; i < K; ++i) {
    const int64_t t = a.pos - W + i;  // input position of tap i
    if (t < 0) continue;
    const T* row = i == W ? x : a.window.ptr<T>() + (t % W) * C;
    for (int64_t c = 0; c < C; ++c) acc[c] = fma_f(w[c * K + i], row[c], acc[c]);
  }
  std::copy(acc, acc + C, a.y.ptr<T>());
  if (W > 0) std::copy(x, x + C, a.window.ptr<T>() + (a.pos % W) * C);
}

template void depthwise_conv_step<float>(Ctx&, const DepthwiseConvStep&);
template void depthwise_conv_step<double>(Ctx&, const DepthwiseConvStep&);
template void depthwise_conv_fwd<float>(Ctx&, const DepthwiseConvFwd&);
template void depthwise_conv_fwd<double>(Ctx&, const DepthwiseConvFwd&);
template void depthwise_conv_window<float>(Ctx&, const DepthwiseConvWindow&);
template void depthwise_conv_window<double>(Ctx&, const DepthwiseConvWindow&);
template void depthwise_conv_bwd<float>(Ctx&, const DepthwiseConvBwd&);
template void depthwise_conv_bwd<double>(Ctx&, const DepthwiseConvBwd&);

}  // namespace wersa::cpu

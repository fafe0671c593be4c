// CUDA causal stationary Haar analysis, gated synthesis and the fused gated filter (formulas and
// adjoints: include/wersa/ops/haar.h; arithmetic as the CPU kernels, src/kernels/cpu/haar.cpp):
//   analysis   a_l[t] = (a_{l-1}[t] + a_{l-1}[t - delta]) k,  d_l[t] = (a_{l-1}[t] - a_{l-1}[t - delta]) k
//              (delta = 2^(l-1), k = T(1/sqrt 2), a_0 = x; positions before 0 hold 0 or the state)
//   adjoint    da_{l-1}[t] = (da_l[t] + dd_l[t] + da_l[t + delta] - dd_l[t + delta]) k, l = L..1
//   synthesis  r = gamma_L a_L; r = (r + gamma_{l-1} d_l) k for l = L..1; y = r
//   its adjoint dcoef_lvl = T(gamma_lvl T(s_lvl)) dy, dgamma_lvl = T(s_lvl sum_c dy coef_lvl (double)),
//              s_lvl = 2^(-(lvl+1)/2) (lvl < L), s_L = 2^(-L/2)
//
// The analysis is a recurrence in time per channel: each thread owns one channel c of one sequence
// b and walks the positions of a time chunk in order, keeping a_{l-1} of the last 2^(l-1) positions
// of every level in a private ring (the same ring layout as the history state: level l in rows
// [2^(l-1) - 1, 2^l - 1)). A block is 32..128 consecutive channels of one sequence and chunk
// (coalesced rows); blocks cover (channel slab, chunk, sequence). A chunk [t0, t1) starts its walk
// P = 2^L - 1 positions early (a halo: d_l[t], a_l[t] read x[t - 2^l + 1 .. t] only), so every
// coefficient it writes is computed by the same operations in the same order as the CPU's, bitwise
// (the halo's own values, made from zeros, are never used). Chunks are at least max(64, 4P) long.
// The adjoint is the same walk backwards in time (da_{l-1}[t] reads t + delta): a halo of P
// positions after the chunk, a ring of da_l and dd_l.
// The ring lives in dynamic shared memory (one column per thread: no barrier needed) when it fits,
// else in scratch (large L). Levels whose delta is not below the longest walk never reuse a ring
// entry and keep none.
//
// One walk kernel serves (MODE):
//   kCoef     haar_analysis_fwd: writes d_l and a_L; with a state, positions before 0 read the ring
//             of the state (read only here)
//   kAdvance  then, in a second launch (after every chunk has read the old state), a walk over the
//             last P positions per channel writes the state's new rows in place, as haar_step does
//   kFilter   haar_filter_fwd: the synthesis at each position from the walk's d_l and a_L (held in
//             registers): no coefficient ever reaches global memory
//   kDgamma   haar_filter_bwd's dgamma: at each position, dy * coef_lvl in double summed over the
//             warp (shuffle tree), the warps' sums kept in shared memory for batches of kBatch
//             positions and added in warp order; one channel slab: dgamma written at once, else
//             per-slab sums to scratch and dgamma_finish adds the slabs in order
// and the backward walk kernel serves haar_analysis_bwd (dd_l, da_L read from dcoef) and the dx of
// haar_filter_bwd (dd_l and da_L made from dy and gamma, as the synthesis adjoint stores them).
// Synthesis: a thread per element (forward); a block per row (b, t) with block_sum for dgamma
// (backward). haar_step: a thread per channel (the CPU's recurrence, O(L)).
// Every sum runs in a fixed order: bitwise reproducible; no atomics.
#include <algorithm>

#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/haar.h"

#if defined(__CUDACC__)
#define HAAR_UNROLL _Pragma("unroll")
#else
#define HAAR_UNROLL
#endif

namespace wersa::cuda {

namespace {

constexpr int kMaxL = 16;
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr int kBatch = 16;                   // positions per flush of the dgamma sums
constexpr int64_t kTargetThreads = 1 << 18;  // enough chunks to fill a GPU
constexpr size_t kSmem = 40 * 1024;          // dynamic shared memory without opting in

enum Mode { kCoef, kAdvance, kFilter, kDgamma };

// The synthesis adjoint's scale of each coefficient level, multiplied up as on the CPU.
struct Scales {
  double s[kMaxL + 1];
};
Scales level_scales(int L) {
  Scales r{};
  double sc = 1.0;
  for (int l = 1; l <= L + 1; ++l) {
    if (l <= L) sc *= kInvSqrt2;
    r.s[l - 1] = sc;
  }
  return r;
}

// How a walk is cut: NT channels per block, nslab blocks across C, nchunk chunks of TT positions;
// Lr levels keep a ring (R = 2^Lr - 1 rows).
struct Walk {
  int NT = 32, Lr = 0;
  int64_t nslab = 0, nchunk = 0, TT = 0, R = 0;
  int64_t blocks(int64_t B) const { return B * nslab * nchunk; }
};

Walk plan_walk(int64_t B, int64_t T, int64_t C, int L, bool advance) {
  Walk w;
  w.NT = C <= 32 ? 32 : C <= 64 ? 64 : 128;
  w.nslab = (C + w.NT - 1) / w.NT;
  const int64_t P = (int64_t(1) << L) - 1;
  int64_t W;  // the longest walk
  if (advance) {
    w.nchunk = 1;
    w.TT = T;
    W = std::min(T, P);
  } else {
    const int64_t min_tt = std::max<int64_t>(64, 4 * P);
    const int64_t most = std::max<int64_t>(1, (T + min_tt - 1) / min_tt);
    const int64_t lanes = std::max<int64_t>(1, B * w.nslab * w.NT);
    const int64_t want = std::max<int64_t>(1, (kTargetThreads + lanes - 1) / lanes);
    const int64_t n = std::min(most, want);
    w.TT = std::max<int64_t>(1, (T + n - 1) / n);
    w.nchunk = std::max<int64_t>(1, (T + w.TT - 1) / w.TT);
    W = std::min(T, w.TT + P);
  }
  while (w.Lr < L && (int64_t(1) << w.Lr) < W) ++w.Lr;  // levels l = Lr + 1 with delta = 2^Lr < W
  w.R = (int64_t(1) << w.Lr) - 1;
  return w;
}

// Where a walk's ring goes: shared memory after `fixed` bytes when it fits, else scratch.
template <class T>
struct RingPlace {
  T* global = nullptr;
  size_t smem = 0;
};
template <class T>
RingPlace<T> place_ring(Ctx& ctx, const Walk& w, int64_t B, int rings, size_t fixed) {
  RingPlace<T> p;
  const size_t per_block = size_t(rings) * size_t(w.R) * size_t(w.NT) * sizeof(T);
  if (fixed + per_block <= kSmem) {
    p.smem = fixed + per_block;
  } else {
    p.global = ctx.take<T>(w.blocks(B) * rings * w.R * w.NT);
    p.smem = fixed;
  }
  return p;
}

template <class T>
struct FwdArgs {
  const T* x;
  const T* gamma;  // kFilter
  const T* dy;     // kDgamma
  T* coef;         // kCoef
  T* y;            // kFilter
  T* state;        // kCoef (read), kAdvance (read and written); may be null
  double* part;    // kDgamma with several slabs: [nslab, B, T, L+1]
  T* dgamma;       // kDgamma with one slab
  T* ring_g;       // the rings in scratch, or null (shared memory)
  int64_t B, Tn, C, TT, nchunk, nslab, pos0;
  int L, Lr;
  bool acc;  // dgamma added to
  Scales sc;
};

template <class T, int MODE>
__global__ void haar_fwd_walk(FwdArgs<T> a) {
  WERSA_DYNAMIC_SHARED(double, smem);  // kDgamma: [kBatch][L+1][warps] sums; then the rings
  const int64_t blk = blockIdx.x;
  const int64_t slab = blk % a.nslab, chunk = blk / a.nslab % a.nchunk, b = blk / (a.nslab * a.nchunk);
  const int tid = threadIdx.x, NT = blockDim.x, nw = NT / 32, L = a.L, Lr = a.Lr;
  const int64_t T_ = a.Tn, C = a.C, c = slab * NT + tid, P = (int64_t(1) << L) - 1,
                R = (int64_t(1) << Lr) - 1;
  const bool live = c < C;
  const int64_t t0 = MODE == kAdvance ? T_ : chunk * a.TT;
  const int64_t t1 = MODE == kAdvance ? T_ : (t0 + a.TT < T_ ? t0 + a.TT : T_);
  const int64_t s = t0 - P > 0 ? t0 - P : 0;
  const int64_t plane = a.B * T_ * C;
  const int64_t nG = a.B * T_ * (L + 1);
  const int wsum_n = MODE == kDgamma ? kBatch * (L + 1) * nw : 0;
  double* wsum = smem;
  T* ring = (a.ring_g ? a.ring_g + blk * R * NT : reinterpret_cast<T*>(smem + wsum_n)) + tid;
  T* st = a.state && live ? a.state + b * P * C + c : nullptr;  // this channel's history column
  const T k = T(kInvSqrt2);
  T xn = live && s < t1 ? a.x[(b * T_ + s) * C + c] : T(0);  // x one position ahead (loads in flight)
  for (int64_t t = s; t < t1; ++t) {
    const int64_t row = (b * T_ + t) * C + c;
    T u = xn;
    if (live && t + 1 < t1) xn = a.x[row + C];
    T d[kMaxL] = {};
    HAAR_UNROLL
    for (int l = 1; l <= kMaxL; ++l) {
      if (l > L) break;
      const int64_t delta = int64_t(1) << (l - 1), q = t - delta;
      T* slot = ring + (delta - 1 + (t & (delta - 1))) * NT;  // a_{l-1} at t - delta, then at t
      T* hist = st ? st + (delta - 1 + ((a.pos0 + t) & (delta - 1))) * C : nullptr;
      T p = T(0);
      if (l <= Lr && q >= s)
        p = *slot;
      else if (q < 0 && hist)
        p = *hist;
      d[l - 1] = (u - p) * k;
      if (l <= Lr) *slot = u;
      if (MODE == kAdvance && hist && t >= T_ - delta) *hist = u;
      if (MODE == kCoef && live && t >= t0) a.coef[(l - 1) * plane + row] = d[l - 1];
      u = (u + p) * k;
    }
    if (t < t0) continue;  // the halo (the same for the whole block)
    if (MODE == kCoef && live) a.coef[L * plane + row] = u;
    if (MODE == kFilter && live) {
      const T* gm = a.gamma + (b * T_ + t) * (L + 1);
      T r = gm[L] * u;
      HAAR_UNROLL
      for (int l = kMaxL; l >= 1; --l)
        if (l <= L) r = (r + gm[l - 1] * d[l - 1]) * k;
      a.y[row] = r;
    }
    if (MODE == kDgamma) {
      const int i = int((t - t0) % kBatch), lane = tid % 32, warp = tid / 32;
      const double g = live ? double(a.dy[row]) : 0.0;
      HAAR_UNROLL
      for (int lvl = 0; lvl <= kMaxL; ++lvl) {
        if (lvl > L) break;
        double v = g * double(lvl < L ? d[lvl < kMaxL ? lvl : 0] : u);
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) wsum[(i * (L + 1) + lvl) * nw + warp] = v;
      }
      if (i == kBatch - 1 || t == t1 - 1) {  // flush: the warps' sums in order
        __syncthreads();
        const int n = (i + 1) * (L + 1);
        for (int j = tid; j < n; j += NT) {
          double sum = 0;
          for (int w = 0; w < nw; ++w) sum += wsum[j * nw + w];
          const int lvl = j % (L + 1);
          const int64_t gi = (b * T_ + t - i + j / (L + 1)) * (L + 1) + lvl;
          if (a.part)
            a.part[slab * nG + gi] = sum;
          else
            a.dgamma[gi] = T(sum * a.sc.s[lvl] + (a.acc ? double(a.dgamma[gi]) : 0.0));
        }
        __syncthreads();
      }
    }
  }
}

// dgamma[e] = T(s_lvl sum_j part[j, e] + dgamma[e] (acc)), slabs j in order.
template <class T>
__global__ void dgamma_finish(T* dgamma, const double* part, int64_t nslab, int64_t n, int L, bool acc,
                              Scales sc) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    double s = 0;
    for (int64_t j = 0; j < nslab; ++j) s += part[j * n + e];
    dgamma[e] = T(s * sc.s[e % (L + 1)] + (acc ? double(dgamma[e]) : 0.0));
  }
}

template <class T>
struct BwdArgs {
  T* dx;
  const T* dcoef;  // analysis adjoint; null: from dy and gamma
  const T* dy;
  const T* gamma;
  T* ring_g;
  int64_t B, Tn, C, TT, nchunk, nslab;
  int L, Lr;
  bool acc;  // dx added to
  Scales sc;
};

template <class T>
__global__ void haar_bwd_walk(BwdArgs<T> a) {
  WERSA_DYNAMIC_SHARED(T, smem);  // the rings: da_l [R], then dd_l [R], a column per thread
  const int64_t blk = blockIdx.x;
  const int64_t slab = blk % a.nslab, chunk = blk / a.nslab % a.nchunk, b = blk / (a.nslab * a.nchunk);
  const int tid = threadIdx.x, NT = blockDim.x, L = a.L, Lr = a.Lr;
  const int64_t T_ = a.Tn, C = a.C, c = slab * NT + tid, P = (int64_t(1) << L) - 1,
                R = (int64_t(1) << Lr) - 1;
  const bool live = c < C;
  const int64_t t0 = chunk * a.TT, t1 = t0 + a.TT < T_ ? t0 + a.TT : T_;
  const int64_t e = t1 + P < T_ ? t1 + P : T_;
  const int64_t plane = a.B * T_ * C;
  T* ra = (a.ring_g ? a.ring_g + blk * 2 * R * NT : smem) + tid;
  T* rd = ra + R * NT;
  const T k = T(kInvSqrt2);
  const bool from_dy = !a.dcoef;
  T gn = live && from_dy && e > t0 ? a.dy[(b * T_ + e - 1) * C + c] : T(0);  // dy one position ahead
  for (int64_t t = e - 1; t >= t0; --t) {
    const int64_t row = (b * T_ + t) * C + c;
    const T* gm = from_dy ? a.gamma + (b * T_ + t) * (L + 1) : nullptr;
    const T g = gn;
    if (live && from_dy && t > t0) gn = a.dy[row - C];
    T cur = !live ? T(0) : a.dcoef ? a.dcoef[L * plane + row] : gm[L] * T(a.sc.s[L]) * g;
    HAAR_UNROLL
    for (int l = kMaxL; l >= 1; --l) {
      if (l > L) continue;
      const int64_t delta = int64_t(1) << (l - 1), j = (delta - 1 + (t & (delta - 1))) * NT;
      const T dd = !live ? T(0) : a.dcoef ? a.dcoef[(l - 1) * plane + row] : gm[l - 1] * T(a.sc.s[l - 1]) * g;
      T nv;
      if (l <= Lr && t + delta < e)
        nv = (cur + dd + ra[j] - rd[j]) * k;  // da_l, dd_l at t + delta
      else
        nv = (cur + dd) * k;
      if (l <= Lr) {
        ra[j] = cur;
        rd[j] = dd;
      }
      cur = nv;
    }
    if (t < t1 && live) a.dx[row] = a.acc ? a.dx[row] + cur : cur;
  }
}

template <class T>
__global__ void synthesis_fwd_kernel(T* y, const T* coef, const T* gamma, int64_t n, int64_t C, int L) {
  const T k = T(kInvSqrt2);
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const T* gm = gamma + e / C * (L + 1);
    T r = gm[L] * coef[L * n + e];
    for (int l = L; l >= 1; --l) r = (r + gm[l - 1] * coef[(l - 1) * n + e]) * k;
    y[e] = r;
  }
}

// A block per row (b, t): dcoef = T(gamma_lvl T(s_lvl)) dy; dgamma by block_sum in double.
template <class T>
__global__ void synthesis_bwd_kernel(T* dcoef, T* dgamma, const T* dy, const T* coef, const T* gamma,
                                     int64_t N, int64_t C, int L, bool acc, Scales sc) {
  __shared__ double red[32];
  const int64_t plane = N * C;
  for (int64_t bt = blockIdx.x; bt < N; bt += gridDim.x) {
    const T* gm = gamma + bt * (L + 1);
    const T* dyr = dy + bt * C;
    for (int lvl = 0; lvl <= L; ++lvl) {
      const int64_t off = lvl * plane + bt * C;
      if (dcoef) {
        const T kk = gm[lvl] * T(sc.s[lvl]);
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dcoef[off + c] = kk * dyr[c];
      }
      if (dgamma) {  // the same for the whole block
        double s = 0;
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += double(dyr[c]) * double(coef[off + c]);
        s = block_sum(s, red);
        if (threadIdx.x == 0) {
          T& dst = dgamma[bt * (L + 1) + lvl];
          dst = T(s * sc.s[lvl] + (acc ? double(dst) : 0.0));
        }
      }
    }
  }
}

template <class T>
__global__ void step_kernel(T* y, T* state, const T* x, const T* gamma, int64_t C, int L, int64_t pos) {
  const T k = T(kInvSqrt2);
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C;
       c += int64_t(blockDim.x) * gridDim.x) {
    T u = x[c];
    T d[kMaxL] = {};
    HAAR_UNROLL
    for (int l = 1; l <= kMaxL; ++l) {
      if (l > L) break;
      const int64_t delta = int64_t(1) << (l - 1);
      T& slot = state[(delta - 1 + (pos & (delta - 1))) * C + c];  // a_{l-1}[pos - delta]
      const T p = slot;
      d[l - 1] = (u - p) * k;
      slot = u;
      u = (u + p) * k;
    }
    if (!y) continue;
    T r = gamma[L] * u;
    HAAR_UNROLL
    for (int l = kMaxL; l >= 1; --l)
      if (l <= L) r = (r + gamma[l - 1] * d[l - 1]) * k;
    y[c] = r;
  }
}

int row_threads(int64_t C) {
  int t = 32;
  while (t < 256 && int64_t(t) * 4 < C) t *= 2;
  return t;
}

template <class T>
FwdArgs<T> fwd_args(const Walk& w, const T* x, int64_t B, int64_t T_, int64_t C, int L) {
  FwdArgs<T> f{};
  f.x = x;
  f.B = B;
  f.Tn = T_;
  f.C = C;
  f.TT = w.TT;
  f.nchunk = w.nchunk;
  f.nslab = w.nslab;
  f.L = L;
  f.Lr = w.Lr;
  f.sc = level_scales(L);
  return f;
}

template <class T>
void launch_bwd_walk(Ctx& ctx, const Walk& w, const RingPlace<T>& rp, T* dx, const T* dcoef, const T* dy,
                     const T* gamma, int64_t B, int64_t T_, int64_t C, int L, bool acc) {
  if (w.blocks(B) == 0 || T_ == 0) return;
  const BwdArgs<T> g{dx,      dcoef, dy,   gamma, rp.global,      B, T_, C, w.TT, w.nchunk,
                     w.nslab, L,     w.Lr, acc,   level_scales(L)};
  WERSA_LAUNCH(haar_bwd_walk<T>, unsigned(w.blocks(B)), w.NT, rp.smem, stream(ctx), g);
}

}  // namespace

void haar_analysis_fwd(Ctx& ctx, const HaarAnalysisFwd& a) {
  const int L = a.levels;
  const int64_t B = a.x.dim(0), T_ = a.x.dim(1), C = a.x.dim(2);
  by_dtype(a.x.dtype, "haar_analysis_fwd", [&](auto tag) {
    using T = decltype(tag);
    const bool has_state = a.state.defined();
    const Walk w = plan_walk(B, T_, C, L, false);
    const Walk wa = plan_walk(B, T_, C, L, true);
    const RingPlace<T> rp = place_ring<T>(ctx, w, B, 1, 0);
    const RingPlace<T> ra = has_state ? place_ring<T>(ctx, wa, B, 1, 0) : RingPlace<T>{};
    if (ctx.planning() || B * T_ * C == 0) return;
    FwdArgs<T> f = fwd_args<T>(w, a.x.ptr<T>(), B, T_, C, L);
    f.coef = a.coef.ptr<T>();
    f.state = has_state ? a.state.ptr<T>() : nullptr;
    f.pos0 = a.pos0;
    f.ring_g = rp.global;
    WERSA_LAUNCH((haar_fwd_walk<T, kCoef>), unsigned(w.blocks(B)), w.NT, rp.smem, stream(ctx), f);
    if (!has_state) return;
    // Every chunk has read the old history; now its new rows (the last positions of each level).
    FwdArgs<T> v = fwd_args<T>(wa, a.x.ptr<T>(), B, T_, C, L);
    v.state = a.state.ptr<T>();
    v.pos0 = a.pos0;
    v.ring_g = ra.global;
    WERSA_LAUNCH((haar_fwd_walk<T, kAdvance>), unsigned(wa.blocks(B)), wa.NT, ra.smem, stream(ctx), v);
  });
}

void haar_analysis_bwd(Ctx& ctx, const HaarAnalysisBwd& a) {
  const int64_t B = a.dx.dim(0), T_ = a.dx.dim(1), C = a.dx.dim(2);
  by_dtype(a.dx.dtype, "haar_analysis_bwd", [&](auto tag) {
    using T = decltype(tag);
    const Walk w = plan_walk(B, T_, C, a.levels, false);
    const RingPlace<T> rp = place_ring<T>(ctx, w, B, 2, 0);
    if (ctx.planning()) return;
    launch_bwd_walk<T>(ctx, w, rp, a.dx.ptr<T>(), a.dcoef.ptr<T>(), nullptr, nullptr, B, T_, C, a.levels,
                       a.accumulate_dx);
  });
}

void haar_synthesis_fwd(Ctx& ctx, const HaarSynthesisFwd& a) {
  const int64_t n = a.y.numel();
  if (n == 0) return;
  by_dtype(a.y.dtype, "haar_synthesis_fwd", [&](auto tag) {
    using T = decltype(tag);
    WERSA_LAUNCH(synthesis_fwd_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.y.ptr<T>(),
                 a.coef.ptr<T>(), a.gamma.ptr<T>(), n, a.y.dim(2), a.levels);
  });
}

void haar_synthesis_bwd(Ctx& ctx, const HaarSynthesisBwd& a) {
  const int64_t N = a.dy.dim(0) * a.dy.dim(1), C = a.dy.dim(2);
  if (N == 0 || (!a.dcoef.defined() && !a.dgamma.defined())) return;
  by_dtype(a.dy.dtype, "haar_synthesis_bwd", [&](auto tag) {
    using T = decltype(tag);
    const unsigned grid = unsigned(N < (int64_t(1) << 20) ? N : (int64_t(1) << 20));
    WERSA_LAUNCH(synthesis_bwd_kernel<T>, grid, row_threads(C), 0, stream(ctx),
                 a.dcoef.defined() ? a.dcoef.ptr<T>() : nullptr,
                 a.dgamma.defined() ? a.dgamma.ptr<T>() : nullptr, a.dy.ptr<T>(), a.coef.ptr<T>(),
                 a.gamma.ptr<T>(), N, C, a.levels, a.accumulate_dgamma, level_scales(a.levels));
  });
}

void haar_step(Ctx& ctx, const HaarStep& a) {
  const int64_t C = a.x.dim(0);
  if (C == 0) return;
  by_dtype(a.x.dtype, "haar_step", [&](auto tag) {
    using T = decltype(tag);
    const bool y = a.y.defined();
    WERSA_LAUNCH(step_kernel<T>, blocks_for(C, 128), 128, 0, stream(ctx), y ? a.y.ptr<T>() : nullptr,
                 a.state.ptr<T>(), a.x.ptr<T>(), y ? a.gamma.ptr<T>() : nullptr, C, a.levels, a.pos);
  });
}

void haar_filter_fwd(Ctx& ctx, const HaarFilterFwd& a) {
  // Plain: a continued sequence (a state) is routed by the op layer to haar_step or to the analysis
  // and synthesis kernels.
  const int L = a.levels;
  const int64_t B = a.x.dim(0), T_ = a.x.dim(1), C = a.x.dim(2);
  by_dtype(a.x.dtype, "haar_filter_fwd", [&](auto tag) {
    using T = decltype(tag);
    const Walk w = plan_walk(B, T_, C, L, false);
    const RingPlace<T> rp = place_ring<T>(ctx, w, B, 1, 0);
    if (ctx.planning() || B * T_ * C == 0) return;
    FwdArgs<T> f = fwd_args<T>(w, a.x.ptr<T>(), B, T_, C, L);
    f.gamma = a.gamma.ptr<T>();
    f.y = a.y.ptr<T>();
    f.ring_g = rp.global;
    WERSA_LAUNCH((haar_fwd_walk<T, kFilter>), unsigned(w.blocks(B)), w.NT, rp.smem, stream(ctx), f);
  });
}

void haar_filter_bwd(Ctx& ctx, const HaarFilterBwd& a) {
  const int L = a.levels;
  const int64_t B = a.x.dim(0), T_ = a.x.dim(1), C = a.x.dim(2);
  const bool want_dx = a.dx.defined(), want_dg = a.dgamma.defined();
  by_dtype(a.x.dtype, "haar_filter_bwd", [&](auto tag) {
    using T = decltype(tag);
    const Walk w = plan_walk(B, T_, C, L, false);
    const size_t wsum = size_t(kBatch) * size_t(L + 1) * size_t(w.NT / 32) * sizeof(double);
    const RingPlace<T> rg = want_dg ? place_ring<T>(ctx, w, B, 1, wsum) : RingPlace<T>{};
    double* part = want_dg && w.nslab > 1 ? ctx.take<double>(w.nslab * B * T_ * (L + 1)) : nullptr;
    const RingPlace<T> rx = want_dx ? place_ring<T>(ctx, w, B, 2, 0) : RingPlace<T>{};
    if (ctx.planning() || B * T_ == 0) return;
    if (want_dg && C > 0) {
      FwdArgs<T> f = fwd_args<T>(w, a.x.ptr<T>(), B, T_, C, L);
      f.dy = a.dy.ptr<T>();
      f.part = part;
      f.dgamma = a.dgamma.ptr<T>();
      f.acc = a.accumulate_dgamma;
      f.ring_g = rg.global;
      WERSA_LAUNCH((haar_fwd_walk<T, kDgamma>), unsigned(w.blocks(B)), w.NT, rg.smem, stream(ctx), f);
    }
    if (want_dg && (part || C == 0)) {  // the slabs' sums in order (none: C = 0)
      const int64_t n = B * T_ * (L + 1);
      WERSA_LAUNCH(dgamma_finish<T>, blocks_for(n), kThreads, 0, stream(ctx), a.dgamma.ptr<T>(),
                   static_cast<const double*>(part), w.nslab, n, L, a.accumulate_dgamma, level_scales(L));
    }
    if (want_dx)
      launch_bwd_walk<T>(ctx, w, rx, a.dx.ptr<T>(), nullptr, a.dy.ptr<T>(), a.gamma.ptr<T>(), B, T_, C, L,
                         false);
  });
}

}  // namespace wersa::cuda

// CUDA depthwise convolution along time (formulas and derivatives: include/wersa/ops/conv.h; the
// CPU reference src/kernels/cpu/conv.cpp). With o = K-1 (causal) or (K-1)/2 (centred):
//   forward   y[b,t,c]  = bias[c] + sum_{i=0..K-1} w[c,i] x[b, t-o+i, c]      (y overwritten)
//   backward  dx[b,s,c] = sum_i w[c,i] dy[b, s+o-i, c]           (overwritten, or added: accumulate_dx)
//             dw[c,i]  += sum_{b,t} dy[b,t,c] x[b, t-o+i, c]     (accumulated)
//             db[c]    += sum_{b,t} dy[b,t,c]                    (accumulated)
// Positions outside [0, T) read 0; with lengths, input rows >= n_b read 0, dx rows >= n_b are 0
// (left unchanged when accumulating) and dw skips input rows >= n_b (db sums every row, as the CPU).
// Every output of the forward, dx and the step is bias (or 0), then the taps i = 0..K-1 in order,
// each one fma (one rounding, as the CPU's native build): the CPU's sums in the CPU's order.
//
// Kernels:
//   correlate      forward and dx: a thread per output element: grid (rows, channel blocks), the
//                  rows r = b T + t grid-strided, consecutive threads on consecutive channels
//                  (coalesced rows); the K taps re-read neighbouring rows from cache. A causal
//                  forward with a window reads the taps before the chunk from the ring
//                  [B, K-1, C] (it does not change it).
//   param_partials dw, db pass 1: grid (channel block, row chunk); the B T rows r = b T + t are cut
//                  into G fixed chunks (G a function of B T and C only); thread c of a chunk sums,
//                  for its channel, dy x over the chunk's rows in order in double, for the taps in
//                  groups of kTapGroup held in registers (the bias as tap K), into scratch
//                  part[G, K+1, C].
//   param_finish   pass 2: one thread per (c, i): the G partials in chunk order, dw[c,i] += T(sum)
//                  (db[c] likewise). No atomics: bitwise reproducible.
//   step           generation: one thread per channel: y[c] from the ring [K-1, C] and x, then x
//                  stored in the ring's row pos mod (K-1) (each thread only its own channel).
//   window         one thread per element of the chunk's last min(T, K-1) rows, copied into the
//                  ring rows (pos0 + t) mod (K-1) (distinct rows: no two threads write one place).
// Scratch: part [G, K+1, C] doubles (backward, when dw or db is defined).
// Bad lengths (outside [1, T]; on the device, so no error can be raised): that sequence's rows of
// y (forward) or of dx (backward, also when accumulating) are NaN, and NaN is added to every
// element of dw and db; no access depends on the length's value.
#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/conv.h"

namespace wersa::cuda {

namespace {

int64_t conv_offset(int64_t K, bool causal) { return causal ? K - 1 : (K - 1) / 2; }

__device__ inline float fma_t(float a, float b, float c) { return fmaf(a, b, c); }
__device__ inline double fma_t(double a, double b, double c) { return fma(a, b, c); }
__device__ inline float nan_t(float) { return nanf(""); }
__device__ inline double nan_t(double) { return nan(""); }

// out[b,s,c] (=|+=) bias[c] + sum_i w[c,i] in[b, s + shift + sign i, c]: the forward has
// (shift, sign) = (-o, +1), dx (o, -1). Taps outside [0, end_b) are skipped, where end_b =
// in_len[b] (or T); taps before the chunk read the ring (forward with a window: ring_rows != null,
// absolute position pos0 + t >= 0). Rows s >= out_len[b] are 0 (left when accumulating).
template <class T>
__global__ void correlate(T* out, const T* in, const T* w, const T* bias, const T* ring_rows, int64_t W,
                          int64_t pos0, const int32_t* in_len, const int32_t* out_len, int64_t B, int64_t Tn,
                          int64_t C, int64_t K, int64_t shift, int64_t sign, bool accumulate) {
  const int64_t c = blockIdx.y * int64_t(blockDim.x) + threadIdx.x, R = B * Tn;
  if (c >= C) return;
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const int64_t s = r % Tn, b = r / Tn, e = r * C + c;
    int64_t end = Tn, out_end = Tn;
    if (in_len || out_len) {
      const int64_t nb = in_len ? in_len[b] : out_len[b];
      if (nb < 1 || nb > Tn) {
        out[e] = nan_t(T(0));
        continue;
      }
      if (in_len) end = nb;
      if (out_len) out_end = nb;
    }
    if (s >= out_end) {
      if (!accumulate) out[e] = T(0);
      continue;
    }
    T acc = bias ? bias[c] : T(0);
    const T* wc = w + c * K;
    for (int64_t i = 0; i < K; ++i) {
      const int64_t t = s + shift + sign * i;
      if (t >= end) continue;
      T v;
      if (t >= 0)
        v = in[(b * Tn + t) * C + c];
      else if (ring_rows && pos0 + t >= 0)
        v = ring_rows[(b * W + (pos0 + t) % W) * C + c];
      else
        continue;
      acc = fma_t(wc[i], v, acc);
    }
    out[e] = accumulate ? out[e] + acc : acc;
  }
}

constexpr int kTapGroup = 8;        // taps summed together per pass over a chunk's rows (registers)
constexpr int kParamThreads = 128;  // channels per block of param_partials (at most)

// Rows per chunk of the parameter gradients: about 512 blocks in all, at least 32 rows a chunk.
// A function of the row count R = B T and C only, so the summation order is too.
int64_t param_rows(int64_t R, int64_t C) {
  const int64_t col_blocks = C > kParamThreads ? (C + kParamThreads - 1) / kParamThreads : 1;
  int64_t chunks = 512 / col_blocks;
  if (chunks < 1) chunks = 1;
  const int64_t rows = (R + chunks - 1) / chunks;
  return rows < 32 ? 32 : rows;
}

// part[j, i, c] for chunk j = blockIdx.y (rows r in [j rows, (j+1) rows) of the B T rows), tap i in
// [0, K] (K: the bias), channel c: sum over the chunk's rows r = b T + t (ascending) of
// dy[r, c] x[b, t-o+i, c] over input rows in [0, end_b), in double (i = K: dy[r, c] alone).
template <class T>
__global__ void param_partials(double* part, const T* dy, const T* x, const int32_t* len, int64_t B,
                               int64_t Tn, int64_t C, int64_t K, int64_t o, int64_t rows) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const int64_t j = blockIdx.y, R = B * Tn, r0 = j * rows, r1 = r0 + rows < R ? r0 + rows : R;
  double* pj = part + j * (K + 1) * C;
  for (int64_t i0 = 0; i0 <= K; i0 += kTapGroup) {
    double acc[kTapGroup];  // constant trip counts below: the compiler keeps acc in registers
    for (int q = 0; q < kTapGroup; ++q) acc[q] = 0;
    bool bad = false;
    int64_t b = r0 / Tn, t = r0 % Tn;  // of row r
    for (int64_t r = r0; r < r1; ++r, ++t) {
      if (t == Tn) {
        t = 0;
        ++b;
      }
      int64_t end = Tn;
      if (len) {
        const int64_t nb = len[b];
        if (nb < 1 || nb > Tn) {
          bad = true;
          continue;
        }
        end = nb;
      }
      const double g = double(dy[r * C + c]);
      const T* xb = x + b * Tn * C + c;
      for (int q = 0; q < kTapGroup; ++q) {
        const int64_t i = i0 + q, s = t - o + i;
        if (i == K)
          acc[q] += g;
        else if (i < K && s >= 0 && s < end)
          acc[q] += g * double(xb[s * C]);
      }
    }
    for (int q = 0; q < kTapGroup && i0 + q <= K; ++q) pj[(i0 + q) * C + c] = bad ? nan("") : acc[q];
  }
}

// dw[c, i] += T(sum_j part[j, i, c]) (i < K, when dw) and db[c] += T(sum_j part[j, K, c]) (when db),
// the chunks j in order; one thread per (c, i).
template <class T>
__global__ void param_finish(T* dw, T* db, const double* part, int64_t chunks, int64_t C, int64_t K) {
  const int64_t n = C * (K + 1);
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const int64_t c = e / (K + 1), i = e % (K + 1);
    if (i < K ? !dw : !db) continue;
    double s = 0;
    for (int64_t j = 0; j < chunks; ++j) s += part[(j * (K + 1) + i) * C + c];
    if (i < K)
      dw[c * K + i] += T(s);
    else
      db[c] += T(s);
  }
}

// One position pos of one sequence: y[c] = bias[c] + sum_i w[c,i] x_(pos-W+i)[c] (x_pos = x, the
// earlier ones from the ring, positions < 0 skipped), then ring row pos mod W = x.
template <class T>
__global__ void step_kernel(T* y, T* ring, const T* x, const T* w, const T* bias, int64_t C, int64_t K,
                            int64_t pos) {
  const int64_t W = K - 1;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C;
       c += int64_t(blockDim.x) * gridDim.x) {
    T acc = bias ? bias[c] : T(0);
    for (int64_t i = 0; i < K; ++i) {
      const int64_t t = pos - W + i;
      if (t < 0) continue;
      const T v = i == W ? x[c] : ring[(t % W) * C + c];
      acc = fma_t(w[c * K + i], v, acc);
    }
    y[c] = acc;
    if (W > 0) ring[(pos % W) * C + c] = x[c];  // read above by this thread only (tap 0)
  }
}

// ring[b, (pos0 + t) mod W, c] = x[b, t, c] for the chunk's last `keep` rows t.
template <class T>
__global__ void window_kernel(T* ring, const T* x, int64_t B, int64_t Tn, int64_t C, int64_t W, int64_t keep,
                              int64_t pos0) {
  const int64_t n = B * keep * C;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const int64_t c = e % C, r = e / C, t = Tn - keep + r % keep, b = r / keep;
    ring[(b * W + (pos0 + t) % W) * C + c] = x[(b * Tn + t) * C + c];
  }
}

// correlate's launch: threads over channels (32 to 256), a grid of rows by channel blocks.
int row_threads(int64_t C) { return C < 256 ? int((C + 31) / 32 * 32) : 256; }
dim3 row_grid(int64_t R, int64_t C) {
  const int t = row_threads(C);
  return dim3(unsigned(R < (int64_t(1) << 20) ? R : (int64_t(1) << 20)), unsigned((C + t - 1) / t));
}

template <class T>
const T* opt_ptr(const Tensor& t) {
  return t.defined() ? t.ptr<T>() : nullptr;
}

}  // namespace

void depthwise_conv_fwd(Ctx& ctx, const DepthwiseConvFwd& a) {
  const int64_t B = a.x.dim(0), Tn = a.x.dim(1), C = a.x.dim(2), K = a.w.dim(1), W = K - 1;
  const int64_t n = B * Tn * C;
  if (n == 0) return;
  by_dtype(a.y.dtype, "depthwise_conv_fwd", [&](auto tag) {
    using T = decltype(tag);
    const T* ring = W > 0 ? opt_ptr<T>(a.window) : nullptr;
    WERSA_LAUNCH(correlate<T>, row_grid(B * Tn, C), row_threads(C), 0, stream(ctx), a.y.ptr<T>(),
                 a.x.ptr<T>(), a.w.ptr<T>(), opt_ptr<T>(a.b), ring, W, a.pos0, opt_ptr<int32_t>(a.lengths),
                 nullptr, B, Tn, C, K, -conv_offset(K, a.causal), 1, false);
  });
}

void depthwise_conv_bwd(Ctx& ctx, const DepthwiseConvBwd& a) {
  const int64_t B = a.x.dim(0), Tn = a.x.dim(1), C = a.x.dim(2), K = a.w.dim(1);
  const int64_t R = B * Tn, n = R * C, o = conv_offset(K, a.causal);
  const bool params = a.dw.defined() || a.db.defined();
  const int64_t rows = param_rows(R, C), chunks = (R + rows - 1) / rows;
  double* part = params && n > 0 ? ctx.take<double>(chunks * (K + 1) * C) : nullptr;
  if (ctx.planning() || n == 0) return;
  const int32_t* len = opt_ptr<int32_t>(a.lengths);
  by_dtype(a.dy.dtype, "depthwise_conv_bwd", [&](auto tag) {
    using T = decltype(tag);
    const T* dy = a.dy.ptr<T>();
    if (a.dx.defined())
      WERSA_LAUNCH(correlate<T>, row_grid(R, C), row_threads(C), 0, stream(ctx), a.dx.ptr<T>(), dy,
                   a.w.ptr<T>(), nullptr, nullptr, 0, 0, nullptr, len, B, Tn, C, K, o, -1, a.accumulate_dx);
    if (!params) return;
    const int threads = C < kParamThreads ? int((C + 31) / 32 * 32) : kParamThreads;
    const dim3 grid(unsigned((C + threads - 1) / threads), unsigned(chunks));
    WERSA_LAUNCH(param_partials<T>, grid, threads, 0, stream(ctx), part, dy, a.x.ptr<T>(), len, B, Tn, C, K,
                 o, rows);
    WERSA_LAUNCH(param_finish<T>, blocks_for(C * (K + 1)), kThreads, 0, stream(ctx),
                 a.dw.defined() ? a.dw.ptr<T>() : nullptr, a.db.defined() ? a.db.ptr<T>() : nullptr, part,
                 chunks, C, K);
  });
}

void depthwise_conv_step(Ctx& ctx, const DepthwiseConvStep& a) {
  const int64_t C = a.x.dim(0), K = a.w.dim(1);
  if (C == 0) return;
  by_dtype(a.y.dtype, "depthwise_conv_step", [&](auto tag) {
    using T = decltype(tag);
    WERSA_LAUNCH(step_kernel<T>, blocks_for(C), kThreads, 0, stream(ctx), a.y.ptr<T>(),
                 K > 1 ? a.window.ptr<T>() : nullptr, a.x.ptr<T>(), a.w.ptr<T>(), opt_ptr<T>(a.b), C, K,
                 a.pos);
  });
}

void depthwise_conv_window(Ctx& ctx, const DepthwiseConvWindow& a) {
  const int64_t B = a.x.dim(0), Tn = a.x.dim(1), C = a.x.dim(2), W = a.window.dim(1);
  const int64_t keep = Tn < W ? Tn : W, n = B * keep * C;
  if (n == 0) return;
  by_dtype(a.x.dtype, "depthwise_conv_window", [&](auto tag) {
    using T = decltype(tag);
    WERSA_LAUNCH(window_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.window.ptr<T>(), a.x.ptr<T>(),
                 B, Tn, C, W, keep, a.pos0);
  });
}

}  // namespace wersa::cuda

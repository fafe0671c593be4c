// CUDA exact softmax attention, forward side (math: include/wersa/ops/softmax_attention.h; the CPU
// reference is src/kernels/cpu/softmax_attention.cpp):
//   s[t][j] = (scale q[t]) . k[j] over keys j < lim(t),  m = max_j s,  l = sum_j exp(s - m),
//   o[t] = sum_j exp(s[t][j] - m) v[j] / l,  lse[t] = m + log l
//   (the derivatives are in softmax_attention_bwd.cu).
// attend_kernel, flash style (the T x T scores are never stored): a block owns a tile of BR query
// rows of one (sequence b, kv head g), rows i = t rep + r over the rep = H / Hkv heads sharing g
// (softmax_attention.cuh), and one split of the keys (blockIdx.z = b S + s). It walks the key tiles
// of kKeys keys through shared memory (K transposed, V by rows, zeros past the last key read), and
// per tile:
//   scores    warp w takes rows w R .. w R + R - 1, lane j key j0 + j: s = sum_e qs[e] k[j][e] in
//             ascending e (qs = scale q rounded, as the CPU), -inf where masked (causal, lengths);
//   softmax   thread r of the block owns row r's running max m and sum l (fp32 for f32):
//             m' = max(m, max_j s), p = exp(s - m'), l = l exp(m - m') + sum_j p, in key order;
//   values    lane c takes columns c, c + 32, ..: acc = acc exp(m - m') + sum_j p[j] v[j][c].
// Tiles past every row's last key are skipped (causal, padding). Final mode (forward, and prefill
// or decode with one split): o = acc / l, lse = m + log l. Split mode (prefill, decode over a long
// cache): the partial (m, l, acc) of each split into scratch, then combine_kernel adds the splits in
// order per element: M = max_s m_s, o = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M).
// Every sum runs in a fixed order: bitwise reproducible, no atomics.
// Bad lengths (outside [1, T]; on the device, unchecked): o and lse of that sequence are NaN.
// kv_cache_append: a grid-stride copy of k and v into the cache rows pos0 ..; nothing where k or v
// already is those rows. Scratch: prefill and decode with S > 1 splits take the partials
// [S, rows, d] + 2 [S, rows].
#include "kernels.h"
#include "softmax_attention.cuh"
#include "wersa/ops/softmax_attention.h"

namespace wersa::cuda {

namespace {

// Query rows per warp and per block of attend_kernel (the accumulators: R DC registers a lane).
__host__ __device__ constexpr int fwd_rows_per_warp(int dc) { return dc <= 4 ? 16 : 8; }
__host__ __device__ constexpr int fwd_block_rows(int dc) { return kWarps * fwd_rows_per_warp(dc); }

template <class T>
size_t fwd_smem(int dc, int64_t d) {
  const int64_t br = fwd_block_rows(dc);
  return size_t(br * d + d * kLd + kKeys * d + br * kKeys + 2 * br) * sizeof(T);
}

template <class T>
struct AttnArgs {
  const T *q, *k, *v;        // q [B, T, H, d]; k, v rows of Hkv d, kb elements between sequences
  T *o, *lse;                // final mode: [B, T, H, d], [B, T, H] (lse may be null)
  T *pacc, *pm, *pl;         // split mode (pacc non-null): [S, B T H, d], [S, B T H], [S, B T H]
  int64_t B, Tn, H, Hkv, d;  // queries per sequence T
  int64_t kb;                // elements between the k (v) of two sequences
  int64_t split;             // keys per split (a multiple of kKeys); S = gridDim.z / B
  KeyRange keys;
  T scale;
};

template <class T, int DC>
__global__ void attend_kernel(AttnArgs<T> a) {
  constexpr int R = fwd_rows_per_warp(DC), BR = fwd_block_rows(DC);
  WERSA_DYNAMIC_SHARED(T, sm);
  const int64_t d = a.d, rep = a.H / a.Hkv, rows = a.Tn * rep, S = gridDim.z / a.B;
  const int64_t g = blockIdx.y, b = blockIdx.z / S, split = blockIdx.z % S;
  const int64_t i0 = int64_t(blockIdx.x) * BR;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, tid = threadIdx.x;
  T* Qs = sm;               // [BR][d] scaled query rows
  T* KT = Qs + BR * d;      // [d][kLd] keys transposed
  T* Vs = KT + d * kLd;     // [kKeys][d] values
  T* Ps = Vs + kKeys * d;   // [BR][kKeys] scores, then probabilities
  T* As = Ps + BR * kKeys;  // [BR] rescale factors, at the end l
  T* Ms = As + BR;          // [BR] m at the end
  // The flattened row i of this (b, g): its global row (b, t, h) of [B, T, H].
  auto grow = [&](int64_t i) { return (b * a.Tn + i / rep) * a.H + g * rep + i % rep; };
  const int64_t nrows = imin(BR, rows - i0);  // rows of this block
  const int64_t nb = a.keys.seq(b);
  if (a.keys.lengths && (nb < 1 || nb > a.Tn)) {  // the whole block: no barrier is skipped by some only
    for (int64_t x = tid; x < nrows * d; x += blockDim.x) set_nan(a.o[grow(i0 + x / d) * d + x % d]);
    if (a.lse)
      for (int64_t x = tid; x < nrows; x += blockDim.x) set_nan(a.lse[grow(i0 + x)]);
    return;
  }
  const T* kbase = a.k + b * a.kb + g * d;
  const T* vbase = a.v + b * a.kb + g * d;
  const int64_t kstride = a.Hkv * d;
  const int64_t ks = split * a.split;
  // Keys this block reads: its split, up to the last row's limit (rows ascend in t).
  const int64_t kend = imin(imin(ks + a.split, nb), a.keys.lim(nb, (i0 + nrows - 1) / rep));
  for (int64_t x = tid; x < BR * d; x += blockDim.x) {
    const int64_t r = x / d, e = x % d;
    Qs[x] = r < nrows ? a.scale * a.q[grow(i0 + r) * d + e] : T(0);
  }
  // Row statistics, owned by thread `tid` for row tid < nrows.
  T m = T(-INFINITY), l = T(0);
  const int64_t my_lim = tid < nrows ? a.keys.lim(nb, (i0 + tid) / rep) : 0;
  // This warp's rows: w R + r for r < wr.
  const int wr = int(imax(0, imin(R, nrows - int64_t(warp) * R)));
  T acc[R][DC];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < DC; ++c) acc[r][c] = T(0);
  for (int64_t j0 = ks; j0 < kend; j0 += kKeys) {
    __syncthreads();  // the previous tile's readers are done (and Qs written, the first time)
    const int jn = int(imin(kKeys, kend - j0));
    for (int64_t x = tid; x < kKeys * d; x += blockDim.x) {
      const int j = int(x / d);
      const int64_t e = x % d;
      const bool in = j < jn;
      KT[e * kLd + j] = in ? kbase[(j0 + j) * kstride + e] : T(0);
      Vs[x] = in ? vbase[(j0 + j) * kstride + e] : T(0);
    }
    __syncthreads();
    // The rows of this warp that read keys of this tile (rows before their first key skip it).
    bool live[R];
    for (int r = 0; r < R; ++r) live[r] = r < wr && j0 < a.keys.lim(nb, (i0 + warp * R + r) / rep);
    {  // scores: lane = key j0 + lane
      T s[R];
      for (int r = 0; r < R; ++r) s[r] = T(0);
      const T* qw = Qs + int64_t(warp) * R * d;
      for (int64_t e = 0; e < d; ++e) {
        const T kv = KT[e * kLd + lane];
        for (int r = 0; r < R; ++r)
          if (live[r]) s[r] += qw[r * d + e] * kv;
      }
      for (int r = 0; r < R; ++r)
        if (live[r]) {
          const int row = warp * R + r;
          const int64_t lim = a.keys.lim(nb, (i0 + row) / rep);
          Ps[row * kKeys + lane] = lane < jn && j0 + lane < lim ? s[r] : T(-INFINITY);
        }
    }
    __syncthreads();
    if (tid < nrows && j0 < my_lim) {  // online softmax of row tid (the live rows)
      T* p = Ps + tid * kKeys;
      T mt = m;
      for (int j = 0; j < jn; ++j) mt = p[j] > mt ? p[j] : mt;
      const T alpha = m == T(-INFINITY) ? T(0) : exp_of(m - mt);
      T sum = T(0);
      for (int j = 0; j < jn; ++j) {
        const T e = p[j] == T(-INFINITY) ? T(0) : exp_of(p[j] - mt);
        p[j] = e;
        sum += e;
      }
      l = l * alpha + sum;
      m = mt;
      As[tid] = alpha;
    }
    __syncthreads();
    {  // values: the live rows, acc = acc alpha + sum_j p[j] v[j] (masked keys: p = 0, v = 0)
      for (int r = 0; r < R; ++r)
        if (live[r]) {
          const T al = As[warp * R + r];
          for (int c = 0; c < DC; ++c) acc[r][c] *= al;
        }
      for (int j = 0; j < jn; ++j) {
        T vv[DC];
        for (int c = 0; c < DC; ++c) {
          const int64_t col = lane + 32 * c;
          vv[c] = col < d ? Vs[j * d + col] : T(0);
        }
        for (int r = 0; r < R; ++r)
          if (live[r]) {
            const T p = Ps[(warp * R + r) * kKeys + j];
            for (int c = 0; c < DC; ++c) acc[r][c] += p * vv[c];
          }
      }
    }
  }
  __syncthreads();
  if (tid < nrows) {
    As[tid] = l;
    Ms[tid] = m;
  }
  __syncthreads();
  for (int r = 0; r < R; ++r)
    if (r < wr) {
      const int row = warp * R + r;
      const int64_t gr = grow(i0 + row);
      const T lr = As[row];
      for (int c = 0; c < DC; ++c) {
        const int64_t col = lane + 32 * c;
        if (col >= d) continue;
        if (a.pacc)
          a.pacc[(split * a.B * a.Tn * a.H + gr) * d + col] = acc[r][c];
        else
          a.o[gr * d + col] = acc[r][c] / lr;
      }
      if (lane == 0) {
        if (a.pacc) {
          a.pm[split * a.B * a.Tn * a.H + gr] = Ms[row];
          a.pl[split * a.B * a.Tn * a.H + gr] = lr;
        } else if (a.lse) {
          a.lse[gr] = Ms[row] + log_of(lr);
        }
      }
    }
}

// o[x] for x over rows d elements: the S partials of its row added in split order.
template <class T>
__global__ void combine_kernel(T* o, const T* pacc, const T* pm, const T* pl, int64_t rows, int64_t d,
                               int64_t S) {
  for (int64_t x = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; x < rows * d;
       x += int64_t(blockDim.x) * gridDim.x) {
    const int64_t row = x / d;
    T M = T(-INFINITY);
    for (int64_t s = 0; s < S; ++s) M = pm[s * rows + row] > M ? pm[s * rows + row] : M;
    T L = T(0), acc = T(0);
    for (int64_t s = 0; s < S; ++s) {
      const T ms = pm[s * rows + row];
      const T w = ms == T(-INFINITY) ? T(0) : exp_of(ms - M);
      L += pl[s * rows + row] * w;
      acc += pacc[s * rows * d + x] * w;
    }
    o[x] = acc / L;
  }
}

// Keys per split for nkeys keys and `blocks` blocks per split: about 256 blocks in all, at least 8
// key tiles a split. A function of the shapes only (the combination order follows from it).
int64_t split_keys(int64_t nkeys, int64_t blocks) {
  constexpr int64_t kTargetBlocks = 256, kMinKeys = 8 * kKeys;
  int64_t S = imax(1, (kTargetBlocks + blocks - 1) / blocks);
  S = imax(1, imin(S, (nkeys + kMinKeys - 1) / kMinKeys));
  const int64_t per = (nkeys + S - 1) / S;
  return (per + kKeys - 1) / kKeys * kKeys;
}

// Runs attend_kernel over q [B, Tq, H, d] (queries of sequence b at q + b Tq H d); with split < nkeys
// (cache ops) through scratch partials and combine_kernel.
template <class T>
void attend(Ctx& ctx, AttnArgs<T> a, int64_t nkeys_max, bool splittable) {
  const int64_t rows = a.B * a.Tn * a.H;
  const int64_t rep = a.H / a.Hkv;
  int64_t S = 1;
  by_cols(a.d, [&](auto dc) {
    constexpr int DC = decltype(dc)::value;
    const int64_t tiles = (a.Tn * rep + fwd_block_rows(DC) - 1) / fwd_block_rows(DC);
    a.split =
        splittable ? split_keys(nkeys_max, tiles * a.Hkv * a.B) : (nkeys_max + kKeys - 1) / kKeys * kKeys;
    S = (nkeys_max + a.split - 1) / a.split;
    if (S > 1) {
      a.pacc = ctx.take<T>(S * rows * a.d);
      a.pm = ctx.take<T>(S * rows);
      a.pl = ctx.take<T>(S * rows);
    }
    if (ctx.planning() || rows == 0) return;
    const size_t smem = fwd_smem<T>(DC, a.d);
    allow_smem(attend_kernel<T, DC>, smem);
    WERSA_LAUNCH((attend_kernel<T, DC>), dim3(unsigned(tiles), unsigned(a.Hkv), unsigned(a.B * S)),
                 kWarps * 32, smem, stream(ctx), a);
    if (S > 1)
      WERSA_LAUNCH(combine_kernel<T>, blocks_for(rows * a.d), kThreads, 0, stream(ctx), a.o,
                   static_cast<const T*>(a.pacc), static_cast<const T*>(a.pm), static_cast<const T*>(a.pl),
                   rows, a.d, S);
  });
}

template <class T>
__global__ void append_kernel(T* kc, T* vc, const T* k, const T* v, int64_t n) {
  for (int64_t x = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; x < n;
       x += int64_t(blockDim.x) * gridDim.x) {
    if (k) kc[x] = k[x];
    if (v) vc[x] = v[x];
  }
}

}  // namespace

void softmax_attention_fwd(Ctx& ctx, const SoftmaxAttnFwd& a) {
  // A KV cache is routed by the op (kv_cache_append, then decode or prefill): never seen here.
  const int64_t B = a.q.dim(0), T_ = a.q.dim(1), H = a.q.dim(2), Hkv = a.k.dim(2), d = a.q.dim(3);
  by_dtype(a.q.dtype, "softmax_attention_fwd", [&](auto tag) {
    using T = decltype(tag);
    if (B * T_ * H == 0) return;
    check_head_dim<T>("softmax_attention_fwd", d);
    AttnArgs<T> p{};
    p.q = a.q.ptr<T>(), p.k = a.k.ptr<T>(), p.v = a.v.ptr<T>();
    p.o = a.o.ptr<T>(), p.lse = a.lse.defined() ? a.lse.ptr<T>() : nullptr;
    p.B = B, p.Tn = T_, p.H = H, p.Hkv = Hkv, p.d = d, p.kb = T_ * Hkv * d;
    p.keys.lengths = a.lengths.defined() ? a.lengths.ptr<int32_t>() : nullptr;
    p.keys.nkeys = T_, p.keys.causal = a.causal;
    p.scale = T(a.scale);
    attend(ctx, p, T_, false);
  });
}

void softmax_attention_prefill(Ctx& ctx, const SoftmaxAttnPrefill& a) {
  const int64_t Tq = a.q.dim(0), H = a.q.dim(1), d = a.q.dim(2), Hkv = a.kcache.dim(1);
  by_dtype(a.q.dtype, "softmax_attention_prefill", [&](auto tag) {
    using T = decltype(tag);
    if (Tq * H == 0) return;
    check_head_dim<T>("softmax_attention_prefill", d);
    AttnArgs<T> p{};
    p.q = a.q.ptr<T>(), p.k = a.kcache.ptr<T>(), p.v = a.vcache.ptr<T>(), p.o = a.o.ptr<T>();
    p.B = 1, p.Tn = Tq, p.H = H, p.Hkv = Hkv, p.d = d, p.kb = 0;
    p.keys.nkeys = a.pos0 + Tq, p.keys.off = a.pos0, p.keys.causal = true;
    p.scale = T(a.scale);
    attend(ctx, p, a.pos0 + Tq, true);
  });
}

void softmax_attention_decode(Ctx& ctx, const SoftmaxAttnDecode& a) {
  const int64_t H = a.q.dim(0), d = a.q.dim(1), Hkv = a.kcache.dim(1);
  by_dtype(a.q.dtype, "softmax_attention_decode", [&](auto tag) {
    using T = decltype(tag);
    if (H == 0) return;
    check_head_dim<T>("softmax_attention_decode", d);
    AttnArgs<T> p{};
    p.q = a.q.ptr<T>(), p.k = a.kcache.ptr<T>(), p.v = a.vcache.ptr<T>(), p.o = a.o.ptr<T>();
    p.B = 1, p.Tn = 1, p.H = H, p.Hkv = Hkv, p.d = d, p.kb = 0;
    p.keys.nkeys = a.len, p.keys.causal = false;
    p.scale = T(a.scale);
    attend(ctx, p, a.len, true);
  });
}

void kv_cache_append(Ctx& ctx, const KvCacheAppend& a) {
  const int64_t row = a.k.dim(1) * a.k.dim(2), n = a.k.dim(0) * row;
  by_dtype(a.k.dtype, "kv_cache_append", [&](auto tag) {
    using T = decltype(tag);
    T* kc = a.kcache.ptr<T>() + a.pos0 * row;
    T* vc = a.vcache.ptr<T>() + a.pos0 * row;
    const T* k = a.k.ptr<T>() == kc ? nullptr : a.k.ptr<T>();
    const T* v = a.v.ptr<T>() == vc ? nullptr : a.v.ptr<T>();
    if (n == 0 || (!k && !v)) return;
    WERSA_LAUNCH(append_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), kc, vc, k, v, n);
  });
}

}  // namespace wersa::cuda

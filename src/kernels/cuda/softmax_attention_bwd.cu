// CUDA exact softmax attention, backward (math: include/wersa/ops/softmax_attention.h; the CPU
// reference is src/kernels/cpu/softmax_attention.cpp). With p[t][j] = exp(s[t][j] - lse[t])
// recomputed from q, k and the forward's lse (s as in the forward), Dl[t] = dout[t] . o[t] and
// ds[t][j] = p[t][j] (dout[t] . v[j] - Dl[t]):
//   dq[t] = scale sum_j ds[t][j] k[j],  dk[j] = sum_t (scale ds[t][j]) q[t],  dv[j] = sum_t p[t][j] dout[t]
// (dk, dv summed over the rep = H / Hkv query heads of kv head g; all three overwritten). Three
// kernels, no atomics, every sum in a fixed order (bitwise reproducible):
//   rowdot_kernel  Dl per row (b, t, h): a thread per row, sum over e in ascending order in double,
//                  rounded once, as the CPU; into scratch [B T H].
//   dq_kernel      a block owns BR query rows of (b, g) (rows i = t rep + r, as the forward) and
//                  walks the key tiles up to its last row's limit through shared memory (K and V
//                  transposed): lane j forms s and dout . v of key j0 + j for the warp's rows,
//                  then ds; lane c accumulates sum_j ds k[j][c] over the keys in ascending order.
//   dkv_kernel     a block owns kKeys keys of (b, g) (K and V in shared memory) and walks the query
//                  rows: head r = 0 .. rep - 1, then tiles of BR tokens from the first that reads
//                  these keys (causal: t >= j0); per tile lane j forms p and ds of key j, then warp
//                  w accumulates dv, dk of its keys with lanes over columns, rows in ascending order
//                  (the CPU's order: heads, then tokens).
// Keys j >= n_b (padded) get dk = dv = 0 and are never read. Bad lengths (outside [1, T]; on the
// device, unchecked): dq, dk, dv of that sequence are NaN. Scratch: Dl, [B T H] elements.
#include "kernels.h"
#include "softmax_attention.cuh"
#include "wersa/ops/softmax_attention.h"

namespace wersa::cuda {

namespace {

constexpr int kBwdRows = 32;  // query rows per tile of both kernels

__host__ __device__ constexpr int dq_rows_per_warp() { return kBwdRows / kWarps; }
// dkv_kernel: warps per block (more for wide heads: fewer accumulators a lane), keys per warp.
__host__ __device__ constexpr int dkv_warps(int dc) { return dc >= 4 ? 8 : 4; }

template <class T>
size_t bwd_smem(int64_t d, bool two_row_tiles) {
  // [BR][d] q and dout, [d][kLd] K and V transposed, [BR][kKeys] ds (and p), [BR] lse and Dl.
  return size_t(2 * kBwdRows * d + 2 * d * kLd + (two_row_tiles ? 2 : 1) * kBwdRows * kKeys + 2 * kBwdRows) *
         sizeof(T);
}

template <class T>
struct BwdArgs {
  T *dq, *dk, *dv;
  const T *dout, *o, *lse, *q, *k, *v;
  const T* D;  // Dl [B, T, H]
  int64_t B, Tn, H, Hkv, d;
  KeyRange keys;
  T scale;
};

template <class T>
__global__ void rowdot_kernel(T* D, const T* dout, const T* o, int64_t rows, int64_t d) {
  for (int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; r < rows;
       r += int64_t(blockDim.x) * gridDim.x) {
    double s = 0;
    for (int64_t e = 0; e < d; ++e) s += double(dout[r * d + e]) * double(o[r * d + e]);
    D[r] = T(s);
  }
}

// Loads the [d][kLd] transposed tiles of kv head g's keys j0 .. j0 + jn - 1 (zeros up to kKeys).
template <class T>
__device__ void load_kv_t(T* KT, T* VT, const T* k, const T* v, int64_t kstride, int64_t j0, int jn,
                          int64_t d) {
  for (int64_t x = threadIdx.x; x < kKeys * d; x += blockDim.x) {
    const int j = int(x / d);
    const int64_t e = x % d;
    const bool in = j < jn;
    KT[e * kLd + j] = in ? k[(j0 + j) * kstride + e] : T(0);
    VT[e * kLd + j] = in ? v[(j0 + j) * kstride + e] : T(0);
  }
}

template <class T, int DC>
__global__ void dq_kernel(BwdArgs<T> a) {
  constexpr int R = dq_rows_per_warp(), BR = kBwdRows;
  WERSA_DYNAMIC_SHARED(T, sm);
  const int64_t d = a.d, rep = a.H / a.Hkv, rows = a.Tn * rep;
  const int64_t g = blockIdx.y, b = blockIdx.z, i0 = int64_t(blockIdx.x) * BR;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, tid = threadIdx.x;
  T* Qs = sm;               // [BR][d] scaled q
  T* Os = Qs + BR * d;      // [BR][d] dout
  T* KT = Os + BR * d;      // [d][kLd]
  T* VT = KT + d * kLd;     // [d][kLd]
  T* Ds = VT + d * kLd;     // [BR][kKeys] ds
  T* Ls = Ds + BR * kKeys;  // [BR] lse
  T* Dl = Ls + BR;          // [BR] Dl
  auto grow = [&](int64_t i) { return (b * a.Tn + i / rep) * a.H + g * rep + i % rep; };
  const int64_t nrows = imin(BR, rows - i0);
  const int64_t nb = a.keys.seq(b);
  if (a.keys.lengths && (nb < 1 || nb > a.Tn)) {
    for (int64_t x = tid; x < nrows * d; x += blockDim.x) set_nan(a.dq[grow(i0 + x / d) * d + x % d]);
    return;
  }
  const T* kbase = a.k + (b * a.Tn * a.Hkv + g) * d;
  const T* vbase = a.v + (b * a.Tn * a.Hkv + g) * d;
  const int64_t kstride = a.Hkv * d;
  const int64_t kend = a.keys.lim(nb, (i0 + nrows - 1) / rep);
  for (int64_t x = tid; x < BR * d; x += blockDim.x) {
    const int64_t r = x / d, e = x % d;
    const bool in = r < nrows;
    Qs[x] = in ? a.scale * a.q[grow(i0 + r) * d + e] : T(0);
    Os[x] = in ? a.dout[grow(i0 + r) * d + e] : T(0);
  }
  for (int64_t x = tid; x < BR; x += blockDim.x) {
    Ls[x] = x < nrows ? a.lse[grow(i0 + x)] : T(0);
    Dl[x] = x < nrows ? a.D[grow(i0 + x)] : T(0);
  }
  const int wr = int(imax(0, imin(R, nrows - int64_t(warp) * R)));
  T acc[R][DC];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < DC; ++c) acc[r][c] = T(0);
  for (int64_t j0 = 0; j0 < kend; j0 += kKeys) {
    __syncthreads();  // the previous tile's readers are done (the row tiles written, the first time)
    const int jn = int(imin(kKeys, kend - j0));
    load_kv_t(KT, VT, kbase, vbase, kstride, j0, jn, d);
    __syncthreads();
    bool live[R];
    for (int r = 0; r < R; ++r) live[r] = r < wr && j0 < a.keys.lim(nb, (i0 + warp * R + r) / rep);
    {  // lane = key j0 + lane: s and dout . v, then ds (0 where masked)
      T s[R], dp[R];
      for (int r = 0; r < R; ++r) s[r] = dp[r] = T(0);
      const T* qw = Qs + int64_t(warp) * R * d;
      const T* ow = Os + int64_t(warp) * R * d;
      for (int64_t e = 0; e < d; ++e) {
        const T kv = KT[e * kLd + lane], vv = VT[e * kLd + lane];
        for (int r = 0; r < R; ++r)
          if (live[r]) {
            s[r] += qw[r * d + e] * kv;
            dp[r] += ow[r * d + e] * vv;
          }
      }
      for (int r = 0; r < R; ++r)
        if (live[r]) {
          const int row = warp * R + r;
          const int64_t lim = a.keys.lim(nb, (i0 + row) / rep);
          T ds = T(0);
          if (lane < jn && j0 + lane < lim) {
            const T p = exp_of(s[r] - Ls[row]);
            ds = p * (dp[r] - Dl[row]);
          }
          Ds[row * kKeys + lane] = ds;
        }
    }
    __syncthreads();
    for (int j = 0; j < jn; ++j) {  // acc[r][c] += ds[r][j] k[j][c], keys ascending
      T kk[DC];
      for (int c = 0; c < DC; ++c) {
        const int64_t col = lane + 32 * c;
        kk[c] = col < d ? KT[col * kLd + j] : T(0);
      }
      for (int r = 0; r < R; ++r)
        if (live[r]) {
          const T ds = Ds[(warp * R + r) * kKeys + j];
          for (int c = 0; c < DC; ++c) acc[r][c] += ds * kk[c];
        }
    }
  }
  for (int r = 0; r < R; ++r)
    if (r < wr) {
      const int64_t gr = grow(i0 + warp * R + r);
      for (int c = 0; c < DC; ++c) {
        const int64_t col = lane + 32 * c;
        if (col < d) a.dq[gr * d + col] = a.scale * acc[r][c];
      }
    }
}

template <class T, int DC>
__global__ void dkv_kernel(BwdArgs<T> a) {
  constexpr int NW = dkv_warps(DC), BR = kBwdRows, RW = BR / NW, KW = kKeys / NW;
  WERSA_DYNAMIC_SHARED(T, sm);
  const int64_t d = a.d, rep = a.H / a.Hkv;
  const int64_t g = blockIdx.y, b = blockIdx.z, j0 = int64_t(blockIdx.x) * kKeys;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, tid = threadIdx.x;
  T* Qs = sm;               // [BR][d] q
  T* Os = Qs + BR * d;      // [BR][d] dout
  T* KT = Os + BR * d;      // [d][kLd]
  T* VT = KT + d * kLd;     // [d][kLd]
  T* Ps = VT + d * kLd;     // [BR][kKeys] p
  T* Ds = Ps + BR * kKeys;  // [BR][kKeys] scale ds
  T* Ls = Ds + BR * kKeys;  // [BR] lse
  T* Dl = Ls + BR;          // [BR] Dl
  const int64_t kstride = a.Hkv * d;
  T* dkb = a.dk + (b * a.Tn * a.Hkv + g) * d;
  T* dvb = a.dv + (b * a.Tn * a.Hkv + g) * d;
  const int64_t nkt = imin(kKeys, a.Tn - j0);  // keys of this block
  const int64_t nb = a.keys.seq(b);
  if (a.keys.lengths && (nb < 1 || nb > a.Tn)) {
    for (int64_t x = tid; x < nkt * d; x += blockDim.x) {
      set_nan(dkb[(j0 + x / d) * kstride + x % d]);
      set_nan(dvb[(j0 + x / d) * kstride + x % d]);
    }
    return;
  }
  const int jn = int(imax(0, imin(nkt, nb - j0)));  // keys read (padded keys: gradients 0)
  if (jn > 0)
    load_kv_t(KT, VT, a.k + (b * a.Tn * a.Hkv + g) * d, a.v + (b * a.Tn * a.Hkv + g) * d, kstride, j0, jn, d);
  T dk[KW][DC], dv[KW][DC];
  for (int k = 0; k < KW; ++k)
    for (int c = 0; c < DC; ++c) dk[k][c] = dv[k][c] = T(0);
  // Tokens that read these keys: t >= j0 when causal (and every token when not).
  const int64_t tstart = jn == 0 ? a.Tn : (a.keys.causal ? j0 : 0);
  for (int64_t r = 0; r < rep; ++r) {
    const int64_t h = g * rep + r;
    for (int64_t t0 = tstart; t0 < a.Tn; t0 += BR) {
      const int64_t nt = imin(BR, a.Tn - t0);
      auto grow = [&](int64_t i) { return (b * a.Tn + t0 + i) * a.H + h; };
      __syncthreads();  // the previous tile's readers are done
      for (int64_t x = tid; x < BR * d; x += blockDim.x) {
        const int64_t i = x / d, e = x % d;
        const bool in = i < nt;
        Qs[x] = in ? a.q[grow(i) * d + e] : T(0);
        Os[x] = in ? a.dout[grow(i) * d + e] : T(0);
      }
      for (int64_t x = tid; x < BR; x += blockDim.x) {
        Ls[x] = x < nt ? a.lse[grow(x)] : T(0);
        Dl[x] = x < nt ? a.D[grow(x)] : T(0);
      }
      __syncthreads();
      {  // lane = key j0 + lane, warp w rows w RW ..: p and scale ds (0 where masked)
        const int wr = int(imax(0, imin(RW, nt - int64_t(warp) * RW)));
        T s[RW], dp[RW];
        for (int i = 0; i < RW; ++i) s[i] = dp[i] = T(0);
        const T* qw = Qs + int64_t(warp) * RW * d;
        const T* ow = Os + int64_t(warp) * RW * d;
        for (int64_t e = 0; e < d; ++e) {
          const T kv = KT[e * kLd + lane], vv = VT[e * kLd + lane];
          for (int i = 0; i < RW; ++i)
            if (i < wr) {
              s[i] += (a.scale * qw[i * d + e]) * kv;
              dp[i] += ow[i * d + e] * vv;
            }
        }
        for (int i = 0; i < RW; ++i)
          if (i < wr) {
            const int row = warp * RW + i;
            const int64_t lim = a.keys.lim(nb, t0 + row);
            T p = T(0), ds = T(0);
            if (lane < jn && j0 + lane < lim) {
              p = exp_of(s[i] - Ls[row]);
              ds = a.scale * (p * (dp[i] - Dl[row]));
            }
            Ps[row * kKeys + lane] = p;
            Ds[row * kKeys + lane] = ds;
          }
      }
      __syncthreads();
      for (int i = 0; i < nt; ++i) {  // warp w: keys w KW + k; lanes over columns; rows ascending
        T qq[DC], oo[DC];
        for (int c = 0; c < DC; ++c) {
          const int64_t col = lane + 32 * c;
          qq[c] = col < d ? Qs[i * d + col] : T(0);
          oo[c] = col < d ? Os[i * d + col] : T(0);
        }
        for (int k = 0; k < KW; ++k) {
          const T p = Ps[i * kKeys + warp * KW + k], ds = Ds[i * kKeys + warp * KW + k];
          for (int c = 0; c < DC; ++c) {
            dv[k][c] += p * oo[c];
            dk[k][c] += ds * qq[c];
          }
        }
      }
    }
  }
  for (int k = 0; k < KW; ++k) {
    const int64_t j = warp * KW + k;
    if (j >= nkt) continue;
    for (int c = 0; c < DC; ++c) {
      const int64_t col = lane + 32 * c;
      if (col >= d) continue;
      dkb[(j0 + j) * kstride + col] = j < jn ? dk[k][c] : T(0);
      dvb[(j0 + j) * kstride + col] = j < jn ? dv[k][c] : T(0);
    }
  }
}

}  // namespace

void softmax_attention_bwd(Ctx& ctx, const SoftmaxAttnBwd& a) {
  const int64_t B = a.q.dim(0), T_ = a.q.dim(1), H = a.q.dim(2), Hkv = a.k.dim(2), d = a.q.dim(3);
  by_dtype(a.q.dtype, "softmax_attention_bwd", [&](auto tag) {
    using T = decltype(tag);
    const int64_t rows = B * T_ * H;
    T* D = ctx.take<T>(rows);
    if (ctx.planning() || rows == 0) return;
    check_head_dim<T>("softmax_attention_bwd", d);
    BwdArgs<T> p{};
    p.dq = a.dq.ptr<T>(), p.dk = a.dk.ptr<T>(), p.dv = a.dv.ptr<T>();
    p.dout = a.dout.ptr<T>(), p.o = a.o.ptr<T>(), p.lse = a.lse.ptr<T>();
    p.q = a.q.ptr<T>(), p.k = a.k.ptr<T>(), p.v = a.v.ptr<T>(), p.D = D;
    p.B = B, p.Tn = T_, p.H = H, p.Hkv = Hkv, p.d = d;
    p.keys.lengths = a.lengths.defined() ? a.lengths.ptr<int32_t>() : nullptr;
    p.keys.nkeys = T_, p.keys.causal = a.causal;
    p.scale = T(a.scale);
    WERSA_LAUNCH(rowdot_kernel<T>, blocks_for(rows), kThreads, 0, stream(ctx), D, p.dout, p.o, rows, d);
    by_cols(d, [&](auto dc) {
      constexpr int DC = decltype(dc)::value;
      const int64_t rep = H / Hkv;
      const size_t sq = bwd_smem<T>(d, false), skv = bwd_smem<T>(d, true);
      allow_smem(dq_kernel<T, DC>, sq);
      allow_smem(dkv_kernel<T, DC>, skv);
      const unsigned qt = unsigned((T_ * rep + kBwdRows - 1) / kBwdRows),
                     kt = unsigned((T_ + kKeys - 1) / kKeys);
      WERSA_LAUNCH((dq_kernel<T, DC>), dim3(qt, unsigned(Hkv), unsigned(B)), kWarps * 32, sq, stream(ctx), p);
      WERSA_LAUNCH((dkv_kernel<T, DC>), dim3(kt, unsigned(Hkv), unsigned(B)), dkv_warps(DC) * 32, skv,
                   stream(ctx), p);
    });
  });
}

}  // namespace wersa::cuda

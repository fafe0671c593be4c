// CUDA linear attention (the math and its derivatives: include/wersa/ops/linear_attention.h; the
// reference: src/kernels/cpu/linear_attention.cpp). Per (b, query head h), kv head g = h / rep,
// v' = [v, 1] (d+1 wide) and S' = [S, z] (m x (d+1)):
//   forward   [num[t], den[t] - eps] = phiq[t] S'_t,  o[t] = num[t] / den[t]
//             S'_t = sum_{s<=t} phik[s]^T v'[s] (causal) or over all s (bidirectional), + [S0, z0]
//   backward  g[t] = [dout[t] / den[t], -(dout[t] . o[t]) / den[t]],  R_s = sum_{t>=s} phiq[t]^T g[t]
//             dphiq[t] = g[t] S'_t^T,  dphik[s] = R_s v'[s] (summed over the group's query heads),
//             dv[s] = phik[s] R_s[:, :d] (summed likewise); all three overwritten
// The sums run over chunks of C rows along T (C = 64 for f32, 32 for f64: the f64 tiles then fit
// the same 48 KiB of shared memory; the op's `chunk` is the CPU's work split and is not used here):
//   chunk_sums   P_c = sum over the chunk's rows (and the heads of a group) of X^T Y, per chunk in
//                parallel: a block per (64 x 64 tile of P, chunk, b and head); 256 threads, 4 x 4
//                outputs each, the rows in order through shared memory tiles
//   chunk_scan   the states at the chunk starts, in place over the P_c: an exclusive prefix
//                (forward, from [S0, z0] or zero), an exclusive suffix (R, backward) or the total
//                (bidirectional; the state op): a thread per state element, the chunks in order
//   chunk_attn   per (64-column tile of the output, chunk, b and head), in parallel over chunks:
//                out_c = mask(X_c Y_c^T) Z_c + X_c W_state, the masked scores in shared memory
//                (lower: s <= t; upper: s >= t), the normaliser (forward) as an extra column of Z
//                and W computed by the first C threads; without `intra` (bidirectional) only
//                X_c W_total
// Forward: chunk_sums(phik, v') -> prefix -> chunk_attn(phiq, phik, v', S'). Backward: the rows g
// into scratch (grad_rows, dout . o in double in the CPU's order), then chunk_sums(phik, v') ->
// prefix -> chunk_attn(g, v', phik, S'^T) = dphiq; chunk_sums(phiq, g over the group's heads) ->
// suffix -> chunk_attn(v', g, phiq, R^T) = dphik and chunk_attn(phik, phiq, g, R) = dv, the group's
// heads summed in order inside the block. The chunk states are recomputed by the backward (one
// per chunk, never one per position). Scratch: the chunk states B Hkv ceil(T/C) m (d+1) in the
// tensors' type (about (d+1)/C times the size of phik), the backward also g, B H T (d+1). All sums
// run in a fixed order, no atomics: bitwise reproducible. A small B H still fills the GPU: every
// pass is parallel over chunks except the scan, which is parallel over state elements (so no
// separate split of T is needed). Accumulation in the tensors' type, as the CPU's (fp32 states
// for f32).
// linear_attention_step: update (a thread per element of S'[g]: S[g] += phik^T v, z += phik,
// zeros of phik skipped as on the CPU), then query (a block per head, a thread per output column,
// the sums over m in order). linear_attention_state: chunk_sums(phik, v') then the total into
// (S, z), added to them with `accumulate`.
#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/linear_attention.h"

namespace wersa::cuda {

namespace {

constexpr int kTile = 256;  // threads of the tiled kernels: 16 x 16, each 4 columns x C/16 rows
constexpr int BK = 32;      // reduction tile
constexpr int BN = 64;      // output columns per block

template <class T>
struct Chunk {
  static constexpr int C = sizeof(T) == 4 ? 64 : 32;
};

// Rows of one (b, head) of a [B, T, heads, cols]-like tensor (or of scratch), read with bounds.
// The head of block head u and summed head j is (u / hdiv) * hmul + j * jmul. Element (r, c) is
// base[r rs + c cs] for c < cols, 1 in column `ones` (v' = [v, 1]), else 0.
template <class T>
struct View {
  const T* p;
  int64_t bs, hs, rs, cs;
  int hdiv, hmul, jmul;
  int cols, ones;
  __device__ const T* at(int64_t b, int u, int j) const {
    return p + b * bs + int64_t(u / hdiv * hmul + j * jmul) * hs;
  }
  __device__ T get(const T* base, int64_t r, int c) const {
    return c < cols ? base[r * rs + int64_t(c) * cs] : (c == ones ? T(1) : T(0));
  }
};

template <class T>
View<T> view(const T* p, int64_t bs, int64_t hs, int64_t rs, int cols, int ones = -1) {
  return View<T>{p, bs, hs, rs, 1, 1, 1, 0, cols, ones};
}
template <class T>
View<T> heads(View<T> v, int hdiv, int hmul, int jmul) {
  v.hdiv = hdiv, v.hmul = hmul, v.jmul = jmul;
  return v;
}

template <class T>
struct Out {
  T* p;
  int64_t bs, hs, rs;
};

// ---- chunk_sums: P_c = sum_j sum_{t in chunk c} X_j[t]^T Y_j[t]  ([a x w] per chunk) ------------

template <class T>
struct SumArgs {
  View<T> X, Y;
  T* out;  // [B U, nch, a, w]
  int64_t Tn, nch;
  int a, w, U, nsum, tiles_w;
};

template <class T>
size_t sums_smem() {
  return size_t(2 * BK * (BN + 1)) * sizeof(T);
}

template <class T>
__global__ void chunk_sums_kernel(SumArgs<T> p) {
  constexpr int C = Chunk<T>::C, L = BN + 1;
  WERSA_DYNAMIC_SHARED(T, smem);
  T* Xs = smem;           // [BK][L]: rows of the chunk, columns r0.. of X
  T* Ys = smem + BK * L;  // [BK][L]: columns c0.. of Y
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t b = blockIdx.z / p.U;
  const int u = int(blockIdx.z % p.U);
  const int64_t c = blockIdx.y, t0 = c * C;
  const int n = int(p.Tn - t0 < C ? p.Tn - t0 : C);
  const int r0 = int(blockIdx.x / p.tiles_w) * BN, c0 = int(blockIdx.x % p.tiles_w) * BN;
  T acc[4][4] = {};
  for (int j = 0; j < p.nsum; ++j) {
    const T* xb = p.X.at(b, u, j) + t0 * p.X.rs;
    const T* yb = p.Y.at(b, u, j) + t0 * p.Y.rs;
    for (int s0 = 0; s0 < n; s0 += BK) {
      __syncthreads();  // the previous tile is read
      for (int i = tid; i < BK * BN; i += blockDim.x) {
        const int r = i / BN, cc = i % BN;
        const bool in = s0 + r < n;
        Xs[r * L + cc] = in && r0 + cc < p.a ? p.X.get(xb, s0 + r, r0 + cc) : T(0);
        Ys[r * L + cc] = in && c0 + cc < p.w ? p.Y.get(yb, s0 + r, c0 + cc) : T(0);
      }
      __syncthreads();
      const int kn = n - s0 < BK ? n - s0 : BK;
      for (int kk = 0; kk < kn; ++kk) {
        T x[4], y[4];
        for (int i = 0; i < 4; ++i) x[i] = Xs[kk * L + ty + 16 * i];
        for (int jj = 0; jj < 4; ++jj) y[jj] = Ys[kk * L + tx + 16 * jj];
        for (int i = 0; i < 4; ++i)
          for (int jj = 0; jj < 4; ++jj) acc[i][jj] += x[i] * y[jj];
      }
    }
  }
  T* ob = p.out + (int64_t(blockIdx.z) * p.nch + c) * p.a * p.w;
  for (int i = 0; i < 4; ++i)
    for (int jj = 0; jj < 4; ++jj) {
      const int r = r0 + ty + 16 * i, col = c0 + tx + 16 * jj;
      if (r < p.a && col < p.w) ob[int64_t(r) * p.w + col] = acc[i][jj];
    }
}

// ---- chunk_scan: the states at the chunk starts (or the total), per state element -------------

enum ScanMode { kPrefix = 0, kSuffix = 1, kTotal = 2 };

// buf [B U, nch, m, d+1]. init (S0 [B U, m, d], z0 [B U, m]) or zero. kTotal writes the total to
// (Sout, zout) when given, else to chunk 0 of buf.
template <class T>
__global__ void chunk_scan_kernel(T* buf, int64_t nch, int m, int d, int mode, const T* S0, const T* z0,
                                  T* Sout, T* zout) {
  const int dp = d + 1;
  const int64_t elems = int64_t(m) * dp;
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= elems) return;
  const int64_t bu = blockIdx.y, k = e / dp;
  const int col = int(e % dp);
  T acc = T(0);
  if (S0) acc = col < d ? S0[(bu * m + k) * d + col] : z0[bu * m + k];
  T* q = buf + bu * nch * elems + e;
  if (mode == kPrefix) {
    for (int64_t c = 0; c < nch; ++c) {
      const T x = q[c * elems];
      q[c * elems] = acc;
      acc += x;
    }
  } else if (mode == kSuffix) {
    for (int64_t c = nch - 1; c >= 0; --c) {
      const T x = q[c * elems];
      q[c * elems] = acc;
      acc += x;
    }
  } else {
    for (int64_t c = 0; c < nch; ++c) acc += q[c * elems];
    if (!Sout)
      q[0] = acc;
    else if (col < d)
      Sout[(bu * m + k) * d + col] = acc;
    else
      zout[bu * m + k] = acc;
  }
}

// ---- chunk_attn: out_c = sum_j mask(X_c Y_jc^T) Z_jc + X_c W  ------------------------------------

template <class T>
struct AttnArgs {
  View<T> X, Y, Z, W;  // X, Y [n x a] rows of the chunk; Z [n x w]; W [a x w] a state
  int64_t wslot;       // elements between the states of successive chunks in W
  Out<T> out, den;     // out [n x w]; den.p: the forward's normaliser (else null)
  int xcol;            // the column of Z and W whose product is the normaliser (with den)
  T eps;
  int64_t Tn;
  int a, w, U, nsum;
  bool intra, upper;  // intra: the masked in-chunk term and W of this chunk (causal); else W of slot 0
};

template <class T>
size_t attn_smem() {
  constexpr int C = Chunk<T>::C;
  const int ys = C * (BK + 1) > BK * (BN + 1) ? C * (BK + 1) : BK * (BN + 1);
  return size_t(C * (C + 1) + C * (BK + 1) + ys) * sizeof(T);
}

template <class T>
__global__ void chunk_attn_kernel(AttnArgs<T> p) {
  constexpr int C = Chunk<T>::C, RI = C / 16, LA = C + 1, LX = BK + 1, LW = BN + 1;
  WERSA_DYNAMIC_SHARED(T, smem);
  T* As = smem;         // [C][LA]: the masked scores
  T* Xs = As + C * LA;  // [C][LX]: a tile of X
  T* Ys = Xs + C * LX;  // [C][LX]: a tile of Y; or [BK][LW]: a tile of Z or W (column BN: xcol)
  const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
  const int64_t b = blockIdx.z / p.U;
  const int u = int(blockIdx.z % p.U);
  const int64_t c = blockIdx.y, t0 = c * C;
  const int n = int(p.Tn - t0 < C ? p.Tn - t0 : C);
  const int col0 = int(blockIdx.x) * BN;
  const bool norm = p.den.p != nullptr;
  const T* xb = p.X.at(b, u, 0) + t0 * p.X.rs;
  T acc[RI][4] = {};
  T dacc = T(0);  // threads tid < C: the normaliser of row tid
  // Loads a C x BK tile of X's columns [k0, k0 + BK) (zero outside) into Xs.
  auto load_x = [&](int k0) {
    for (int i = tid; i < C * BK; i += blockDim.x) {
      const int r = i / BK, kk = i % BK;
      Xs[r * LX + kk] = r < n && k0 + kk < p.a ? p.X.get(xb, r, k0 + kk) : T(0);
    }
  };
  // Loads rows [r0, r0 + BK) of M (rows below rmax) in the block's columns, and xcol, into Ys.
  auto load_cols = [&](const View<T>& M, const T* base, int r0, int rmax) {
    for (int i = tid; i < BK * LW; i += blockDim.x) {
      int r, cc;
      if (M.cs == 1) {
        r = i / LW, cc = i % LW;
      } else {  // a transposed state: consecutive threads along its contiguous rows
        cc = i / BK, r = i % BK;
      }
      const int col = cc < BN ? col0 + cc : p.xcol;
      const bool in = r0 + r < rmax && (cc < BN ? col < p.w : norm);
      Ys[r * LW + cc] = in ? M.get(base, r0 + r, col) : T(0);
    }
  };
  // acc += L[rows][k] Ys[k][cols] over k < kn, L row-major with leading dimension ld.
  auto mma = [&](const T* L, int ld, int kn) {
    for (int kk = 0; kk < kn; ++kk) {
      T x[RI], y[4];
      for (int i = 0; i < RI; ++i) x[i] = L[(ty + 16 * i) * ld + kk];
      for (int jj = 0; jj < 4; ++jj) y[jj] = Ys[kk * LW + tx + 16 * jj];
      for (int i = 0; i < RI; ++i)
        for (int jj = 0; jj < 4; ++jj) acc[i][jj] += x[i] * y[jj];
    }
    if (norm && tid < C)
      for (int kk = 0; kk < kn; ++kk) dacc += L[tid * ld + kk] * Ys[kk * LW + BN];
  };
  if (p.intra) {
    for (int j = 0; j < p.nsum; ++j) {
      const T* yb = p.Y.at(b, u, j) + t0 * p.Y.rs;
      const T* zb = p.Z.at(b, u, j) + t0 * p.Z.rs;
      T s[RI][RI] = {};  // scores: rows ty + 16 i, columns tx + 16 jj
      for (int k0 = 0; k0 < p.a; k0 += BK) {
        __syncthreads();  // the previous tiles are read
        load_x(k0);
        for (int i = tid; i < C * BK; i += blockDim.x) {
          const int r = i / BK, kk = i % BK;
          Ys[r * LX + kk] = r < n && k0 + kk < p.a ? p.Y.get(yb, r, k0 + kk) : T(0);
        }
        __syncthreads();
        const int kn = p.a - k0 < BK ? p.a - k0 : BK;
        for (int kk = 0; kk < kn; ++kk) {
          T x[RI], y[RI];
          for (int i = 0; i < RI; ++i) x[i] = Xs[(ty + 16 * i) * LX + kk];
          for (int jj = 0; jj < RI; ++jj) y[jj] = Ys[(tx + 16 * jj) * LX + kk];
          for (int i = 0; i < RI; ++i)
            for (int jj = 0; jj < RI; ++jj) s[i][jj] += x[i] * y[jj];
        }
      }
      __syncthreads();  // the previous head's scores are read
      for (int i = 0; i < RI; ++i)
        for (int jj = 0; jj < RI; ++jj) {
          const int r = ty + 16 * i, q = tx + 16 * jj;
          const bool keep = r < n && q < n && (p.upper ? q >= r : q <= r);
          As[r * LA + q] = keep ? s[i][jj] : T(0);
        }
      for (int s0 = 0; s0 < n; s0 += BK) {  // + A Z over the chunk's rows
        __syncthreads();
        load_cols(p.Z, zb, s0, n);
        __syncthreads();
        mma(As + s0, LA, n - s0 < BK ? n - s0 : BK);
      }
    }
  }
  // + X W: the state at the chunk's start (intra) or the total.
  const T* wb = p.W.at(b, u, 0) + (p.intra ? c : 0) * p.wslot;
  for (int k0 = 0; k0 < p.a; k0 += BK) {
    __syncthreads();
    load_x(k0);
    load_cols(p.W, wb, k0, p.a);
    __syncthreads();
    mma(Xs, LX, p.a - k0 < BK ? p.a - k0 : BK);
  }
  __syncthreads();
  T* dn = Xs;  // [C]: the normalisers
  if (norm && tid < C) dn[tid] = dacc + p.eps;
  __syncthreads();
  T* ob = p.out.p + b * p.out.bs + u * p.out.hs + t0 * p.out.rs;
  for (int i = 0; i < RI; ++i)
    for (int jj = 0; jj < 4; ++jj) {
      const int r = ty + 16 * i, col = col0 + tx + 16 * jj;
      if (r < n && col < p.w) ob[r * p.out.rs + col] = norm ? acc[i][jj] / dn[r] : acc[i][jj];
    }
  if (norm && blockIdx.x == 0 && tid < n)
    p.den.p[b * p.den.bs + u * p.den.hs + (t0 + tid) * p.den.rs] = dn[tid];
}

// ---- backward rows g = [dout / den, -(dout . o) / den] into G [B, H, T, d+1] -------------------

// A warp per row (b, t, h). dout . o in double as the CPU's lane_sum: lane j < 16 sums the
// products of columns j, j + 16, ... in order, then the 16 partial sums are added in lane order.
template <class T>
__global__ void grad_rows_kernel(T* G, const T* dout, const T* o, const T* den, int64_t rows, int64_t Tn,
                                 int H, int d) {
  const int lane = threadIdx.x % 32;
  const int64_t nw = int64_t(gridDim.x) * blockDim.x / 32;
  for (int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32; row < rows; row += nw) {
    const T* dr = dout + row * d;
    const T* orow = o + row * d;
    double part = 0;
    if (lane < 16)
      for (int e = lane; e < d; e += 16) part += double(dr[e]) * double(orow[e]);
    double dot = 0;
    for (int j = 0; j < 16; ++j) dot += __shfl_sync(0xffffffffu, part, j);
    const T dnv = den[row], inv = T(1) / dnv;
    const int64_t h = row % H, bt = row / H, t = bt % Tn, b = bt / Tn;
    T* g = G + ((b * H + h) * Tn + t) * (d + 1);
    for (int e = lane; e < d; e += 32) g[e] = dr[e] * inv;
    if (lane == 0) g[d] = T(-dot / double(dnv));
  }
}

// ---- generation ----------------------------------------------------------------------------------

// S[g] += phik[g]^T v[g], z[g] += phik[g]: a thread per element of [S, z] ([Hkv, m, d+1]).
template <class T>
__global__ void step_update_kernel(T* S, T* z, const T* phik, const T* v, int64_t elems, int m, int d) {
  const int dp = d + 1;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < elems;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t gk = i / dp, g = gk / m;
    const int e = int(i % dp);
    const T kv = phik[gk];
    if (kv == T(0)) continue;
    if (e < d)
      S[gk * d + e] += kv * v[g * d + e];
    else
      z[gk] += kv;
  }
}

// o[h] = phiq[h] S[g] / den, den = phiq[h] . z[g] + eps: a block per (head, 128 columns), each
// thread a column (the sums over m in order, zeros of phiq skipped, as on the CPU).
template <class T>
__global__ void step_query_kernel(T* o, T* den, const T* S, const T* z, const T* phiq, int rep, int m, int d,
                                  T eps) {
  const int h = blockIdx.x, g = h / rep;
  const int e = int(blockIdx.y * blockDim.x + threadIdx.x);
  const T* q = phiq + int64_t(h) * m;
  const T* Sg = S + int64_t(g) * m * d;
  const T* zg = z + int64_t(g) * m;
  T num = T(0), dn = T(0);
  for (int k = 0; k < m; ++k) {
    const T qk = q[k];
    if (qk == T(0)) continue;
    if (e < d) num += qk * Sg[int64_t(k) * d + e];
    dn += qk * zg[k];
  }
  dn += eps;
  if (e < d) o[int64_t(h) * d + e] = num / dn;
  if (den && e == 0) den[h] = dn;
}

// ---- host side -----------------------------------------------------------------------------------

struct Dims {
  int64_t B, T, H, Hkv;
  int m, d;
  int rep() const { return int(H / Hkv); }
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// P_c for every chunk (X, Y: U heads of B sequences, nsum summed per block) into buf.
template <class T>
void launch_sums(Ctx& ctx, const View<T>& X, const View<T>& Y, T* buf, int64_t B, int64_t Tn, int U, int nsum,
                 int a, int w) {
  const int64_t nch = ceil_div(Tn, Chunk<T>::C);
  const int tiles_w = int(ceil_div(w, BN));
  const int64_t tiles = ceil_div(a, BN) * tiles_w;
  if (tiles == 0 || nch == 0 || B * U == 0) return;
  WERSA_CHECK(nch <= 65535 && B * U <= 65535, "linear attention: ", nch, " chunks of ", B * U,
              " heads exceed a CUDA grid");
  const SumArgs<T> p{X, Y, buf, Tn, nch, a, w, U, nsum, tiles_w};
  WERSA_LAUNCH(chunk_sums_kernel<T>, dim3(unsigned(tiles), unsigned(nch), unsigned(B * U)), dim3(kTile),
               sums_smem<T>(), stream(ctx), p);
}

template <class T>
void launch_scan(Ctx& ctx, T* buf, int64_t BU, int64_t nch, int m, int d, ScanMode mode,
                 const T* S0 = nullptr, const T* z0 = nullptr, T* Sout = nullptr, T* zout = nullptr) {
  const int64_t elems = int64_t(m) * (d + 1);
  if (elems == 0 || BU == 0) return;
  WERSA_LAUNCH(chunk_scan_kernel<T>, dim3(unsigned(ceil_div(elems, kThreads)), unsigned(BU)), dim3(kThreads),
               0, stream(ctx), buf, nch, m, d, int(mode), S0, z0, Sout, zout);
}

template <class T>
void launch_attn(Ctx& ctx, AttnArgs<T> p, int64_t B) {
  const int64_t nch = ceil_div(p.Tn, Chunk<T>::C);
  const int64_t tiles = p.w > 0 ? ceil_div(p.w, BN) : 1;  // one block still writes den when d = 0
  WERSA_CHECK(nch <= 65535 && B * p.U <= 65535, "linear attention: ", nch, " chunks of ", B * p.U,
              " heads exceed a CUDA grid");
  if (nch == 0 || B * p.U == 0) return;
  WERSA_LAUNCH(chunk_attn_kernel<T>, dim3(unsigned(tiles), unsigned(nch), unsigned(B * p.U)), dim3(kTile),
               attn_smem<T>(), stream(ctx), p);
}

// The views of the inputs: phiq [B,T,H,m], phik [B,T,Hkv,m], v' = [v, 1] from v [B,T,Hkv,d].
template <class T>
View<T> q_view(const Dims& D, const T* phiq) {
  return view(phiq, D.T * D.H * D.m, D.m, D.H * D.m, D.m);
}
template <class T>
View<T> k_view(const Dims& D, const T* phik) {
  return view(phik, D.T * D.Hkv * D.m, D.m, D.Hkv * D.m, D.m);
}
template <class T>
View<T> v1_view(const Dims& D, const T* v) {
  return view(v, D.T * D.Hkv * D.d, D.d, D.Hkv * D.d, D.d, D.d);
}
// The chunk states [B Hkv, nch, m, d+1] (a state per kv head and chunk); transposed: [d+1, m].
template <class T>
View<T> state_view(const Dims& D, const T* buf, int64_t nch, bool transposed) {
  const int dp = D.d + 1;
  View<T> s = view(buf, D.Hkv * nch * D.m * dp, nch * D.m * dp, dp, dp);
  if (transposed) s.rs = 1, s.cs = dp, s.cols = D.m;
  return s;
}

Dims dims(const Tensor& phiq, const Tensor& phik, const Tensor& v) {
  return Dims{phiq.dim(0), phiq.dim(1), phiq.dim(2), phik.dim(2), int(phiq.dim(3)), int(v.dim(3))};
}

}  // namespace

void linear_attention_fwd(Ctx& ctx, const LinearAttnFwd& a) {
  const Dims D = dims(a.phiq, a.phik, a.v);
  by_dtype(a.phiq.dtype, "linear_attention_fwd", [&](auto tag) {
    using T = decltype(tag);
    const int64_t nch = ceil_div(D.T, Chunk<T>::C), dp = D.d + 1;
    const int64_t n_state = D.B * D.Hkv * nch * D.m * dp;
    T* buf = ctx.take<T>(n_state > 0 ? n_state : 1);
    if (ctx.planning()) return;
    if (D.B * D.T * D.H == 0) return;
    const int rep = D.rep();
    launch_sums<T>(ctx, k_view(D, a.phik.ptr<T>()), v1_view(D, a.v.ptr<T>()), buf, D.B, D.T, int(D.Hkv), 1,
                   D.m, int(dp));
    const bool s0 = a.S0.defined();
    launch_scan<T>(ctx, buf, D.B * D.Hkv, nch, D.m, D.d, a.causal ? kPrefix : kTotal,
                   s0 ? a.S0.ptr<T>() : nullptr, s0 ? a.z0.ptr<T>() : nullptr);
    AttnArgs<T> p{};
    p.X = q_view(D, a.phiq.ptr<T>());
    p.Y = heads(k_view(D, a.phik.ptr<T>()), rep, 1, 0);
    p.Z = heads(v1_view(D, a.v.ptr<T>()), rep, 1, 0);
    p.W = heads(state_view(D, buf, nch, false), rep, 1, 0);
    p.wslot = D.m * dp;
    p.out = Out<T>{a.o.ptr<T>(), D.T * D.H * D.d, D.d, D.H * D.d};
    p.den = Out<T>{a.den.ptr<T>(), D.T * D.H, 1, D.H};
    p.xcol = D.d;
    p.eps = T(a.eps);
    p.Tn = D.T;
    p.a = D.m, p.w = D.d, p.U = int(D.H), p.nsum = 1;
    p.intra = a.causal, p.upper = false;
    launch_attn(ctx, p, D.B);
  });
}

void linear_attention_bwd(Ctx& ctx, const LinearAttnBwd& a) {
  const Dims D = dims(a.phiq, a.phik, a.v);
  by_dtype(a.phiq.dtype, "linear_attention_bwd", [&](auto tag) {
    using T = decltype(tag);
    const int64_t nch = ceil_div(D.T, Chunk<T>::C), dp = D.d + 1;
    const int64_t n_state = D.B * D.Hkv * nch * D.m * dp, n_g = D.B * D.H * D.T * dp;
    T* buf = ctx.take<T>(n_state > 0 ? n_state : 1);
    T* G = ctx.take<T>(n_g > 0 ? n_g : 1);
    if (ctx.planning()) return;
    if (D.B * D.T * D.H == 0) return;
    const int rep = D.rep();
    const int64_t rows = D.B * D.T * D.H;
    WERSA_LAUNCH(grad_rows_kernel<T>, dim3(blocks_for(rows * 32)), dim3(kThreads), 0, stream(ctx), G,
                 a.dout.ptr<T>(), a.o.ptr<T>(), a.den.ptr<T>(), rows, D.T, int(D.H), D.d);
    const View<T> Q = q_view(D, a.phiq.ptr<T>()), K = k_view(D, a.phik.ptr<T>()),
                  V1 = v1_view(D, a.v.ptr<T>());
    const View<T> Gv = view<T>(G, D.H * D.T * dp, D.T * dp, dp, int(dp));
    // dphiq: the states S' at the chunk starts, then g S'^T (+ the masked in-chunk term).
    launch_sums<T>(ctx, K, V1, buf, D.B, D.T, int(D.Hkv), 1, D.m, int(dp));
    launch_scan<T>(ctx, buf, D.B * D.Hkv, nch, D.m, D.d, a.causal ? kPrefix : kTotal);
    AttnArgs<T> p{};
    p.wslot = D.m * dp;
    p.den = Out<T>{nullptr, 0, 0, 0};
    p.xcol = -1;
    p.eps = T(0);
    p.Tn = D.T;
    p.intra = a.causal;
    p.X = Gv;
    p.Y = heads(V1, rep, 1, 0);
    p.Z = heads(K, rep, 1, 0);
    p.W = heads(state_view(D, buf, nch, true), rep, 1, 0);
    p.out = Out<T>{a.dphiq.ptr<T>(), D.T * D.H * D.m, D.m, D.H * D.m};
    p.a = int(dp), p.w = D.m, p.U = int(D.H), p.nsum = 1, p.upper = false;
    launch_attn(ctx, p, D.B);
    // dphik, dv: R after each chunk (summed over the group's query heads), over buf.
    launch_sums<T>(ctx, heads(Q, 1, rep, 1), heads(Gv, 1, rep, 1), buf, D.B, D.T, int(D.Hkv), rep, D.m,
                   int(dp));
    launch_scan<T>(ctx, buf, D.B * D.Hkv, nch, D.m, D.d, a.causal ? kSuffix : kTotal);
    p.U = int(D.Hkv), p.nsum = rep, p.upper = true;
    p.X = V1;  // dphik = sum_j mask(v' g_j^T) phiq_j + v' R^T
    p.Y = heads(Gv, 1, rep, 1);
    p.Z = heads(Q, 1, rep, 1);
    p.W = state_view(D, buf, nch, true);
    p.out = Out<T>{a.dphik.ptr<T>(), D.T * D.Hkv * D.m, D.m, D.Hkv * D.m};
    p.a = int(dp), p.w = D.m;
    launch_attn(ctx, p, D.B);
    p.X = K;  // dv = sum_j mask(phik phiq_j^T) g_j[:, :d] + phik R[:, :d]
    p.Y = heads(Q, 1, rep, 1);
    p.Z = heads(Gv, 1, rep, 1);
    p.W = state_view(D, buf, nch, false);
    p.out = Out<T>{a.dv.ptr<T>(), D.T * D.Hkv * D.d, D.d, D.Hkv * D.d};
    p.a = D.m, p.w = D.d;
    launch_attn(ctx, p, D.B);
  });
}

void linear_attention_step(Ctx& ctx, const LinearAttnStep& a) {
  const int64_t H = a.phiq.dim(0), Hkv = a.phik.dim(0);
  const int m = int(a.phiq.dim(1)), d = int(a.v.dim(1));
  if (H == 0) return;
  by_dtype(a.phiq.dtype, "linear_attention_step", [&](auto tag) {
    using T = decltype(tag);
    const int64_t elems = Hkv * m * (d + 1);
    if (elems > 0)
      WERSA_LAUNCH(step_update_kernel<T>, dim3(blocks_for(elems)), dim3(kThreads), 0, stream(ctx),
                   a.S.ptr<T>(), a.z.ptr<T>(), a.phik.ptr<T>(), a.v.ptr<T>(), elems, m, d);
    constexpr int threads = 128;
    const unsigned cols = unsigned(d > 0 ? ceil_div(d, threads) : 1);
    WERSA_LAUNCH(step_query_kernel<T>, dim3(unsigned(H), cols), dim3(threads), 0, stream(ctx), a.o.ptr<T>(),
                 a.den.defined() ? a.den.ptr<T>() : nullptr, a.S.ptr<T>(), a.z.ptr<T>(), a.phiq.ptr<T>(),
                 int(H / Hkv), m, d, T(a.eps));
  });
}

void linear_attention_state(Ctx& ctx, const LinearAttnState& a) {
  const int64_t B = a.phik.dim(0), Tn = a.phik.dim(1), Hkv = a.phik.dim(2);
  const int m = int(a.phik.dim(3)), d = int(a.v.dim(3));
  by_dtype(a.phik.dtype, "linear_attention_state", [&](auto tag) {
    using T = decltype(tag);
    const int64_t nch = ceil_div(Tn, Chunk<T>::C), dp = d + 1;
    const int64_t n_state = B * Hkv * nch * m * dp;
    T* buf = ctx.take<T>(n_state > 0 ? n_state : 1);
    if (ctx.planning()) return;
    const Dims D{B, Tn, Hkv, Hkv, m, d};
    launch_sums<T>(ctx, k_view(D, a.phik.ptr<T>()), v1_view(D, a.v.ptr<T>()), buf, B, Tn, int(Hkv), 1, m,
                   int(dp));
    T* S = a.S.ptr<T>();
    T* z = a.z.ptr<T>();
    launch_scan<T>(ctx, buf, B * Hkv, nch, m, d, kTotal, a.accumulate ? S : nullptr,
                   a.accumulate ? z : nullptr, S, z);
  });
}

}  // namespace wersa::cuda

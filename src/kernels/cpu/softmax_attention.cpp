// CPU exact softmax attention (see include/wersa/ops/softmax_attention.h for the math).
// Layout q [B,T,H,d], k, v [B,T,Hkv,d]. A thread copies the keys (and values) of its kv head into
// a transposed [d x T] scratch and processes kQ queries at a time: scores are register tiles of
// kQ queries x kW keys accumulated over d, weighted sums of rows are tiles of kQ queries x kW
// columns accumulated over keys. Every sum runs in a fixed order (keys ascending, then heads,
// then query blocks), so results do not depend on the thread count. Scratch is O(T d) per thread,
// never O(T^2). A causal query row t reads keys j <= t only; with lengths (padded batches), the
// rows of sequence b read keys j < n_b only (the transposed copies hold zeros past them).
// A sequence continued over a KV cache is routed by the op layer (src/ops/softmax_attention.cpp):
// kv_cache_append, then the decode kernel (one position) or the prefill kernel (a chunk); the
// forward kernel here never sees a cache.
// Scratch: one slice per thread holding the buffers of one task (Work below).
#include "wersa/ops/softmax_attention.h"

#include <algorithm>
#include <cmath>

#include "gemv.h"
#include "kernels.h"
#include "lengths.h"
#include "parallel.h"
#include "reduce.h"

namespace wersa::cpu {

namespace {

constexpr int kQ = 4;  // query rows per block
constexpr int kW = 8;  // keys or columns per register tile

// Below this many multiply-adds an op runs on one thread: a parallel region costs more.
constexpr int64_t kParallelWork = int64_t(1) << 16;

struct Geo {
  int64_t B, T, H, Hkv, d;
  int64_t rep() const { return H / Hkv; }
  int64_t work() const { return B * H * T * T * d; }
  int64_t ldt() const { return (T + kW - 1) / kW * kW; }  // padded row length of transposed K, V
};

// The per-thread buffers of one task, carved from one scratch slice: KT, VT [d x ld] (keys and
// values transposed), P, dS [kQ x ld] (probabilities, score gradients), qs, acc, qr, dor [kQ x d],
// dKa, dVa [T x d] (the kv head's gradient accumulators). The forward and prefill use KT, P, qs, acc.
template <class T>
struct Work {
  T *KT = nullptr, *VT = nullptr, *P = nullptr, *dS = nullptr, *qs = nullptr, *acc = nullptr;
  T *qr = nullptr, *dor = nullptr, *dKa = nullptr, *dVa = nullptr;
};
int64_t fwd_work(int64_t d, int64_t ld) { return d * ld + kQ * ld + 2 * kQ * d; }
int64_t bwd_work(int64_t d, int64_t ld, int64_t T) {
  return 2 * d * ld + 2 * kQ * ld + 4 * kQ * d + 2 * T * d;
}
template <class T>
Work<T> carve(T* p, int64_t d, int64_t ld, int64_t T_, bool bwd) {
  Work<T> w;
  w.KT = p, p += d * ld;
  w.P = p, p += kQ * ld;
  w.qs = p, p += kQ * d;
  w.acc = p, p += kQ * d;
  if (!bwd) return w;
  w.VT = p, p += d * ld;
  w.dS = p, p += kQ * ld;
  w.qr = p, p += kQ * d;
  w.dor = p, p += kQ * d;
  w.dKa = p, p += T_ * d;
  w.dVa = p;
  return w;
}

// XT [d x ldt] = the first n rows of kv head g of x [B,T,Hkv,d] for batch b, transposed; the
// columns from n on zeroed (rows j >= n are not read).
template <class T>
void load_transposed(const Geo& G, const T* x, int64_t b, int64_t g, T* XT, int64_t n) {
  const T* base = x + (b * G.T * G.Hkv + g) * G.d;
  const int64_t ld = G.ldt();
  for (int64_t j = 0; j < n; ++j) {
    const T* r = base + j * G.Hkv * G.d;
    for (int64_t e = 0; e < G.d; ++e) XT[e * ld + j] = r[e];
  }
  for (int64_t e = 0; e < G.d; ++e) std::fill(XT + e * ld + n, XT + (e + 1) * ld, T(0));
}

// The keys sequence b may read: its length with lengths (checked by the caller), else T.
inline int64_t keys_of(const Geo& G, const Tensor& lengths, int64_t b) {
  return lengths.defined() ? int64_t(lengths.ptr<int32_t>()[b]) : G.T;
}

// out[r][j] = sum_e a[r][e] XT[e][j] for j < n rounded up to kW (XT padded that far);
// a is R x d, out has rows of ldo. Each element sums over e in ascending order.
template <class T, int R>
void dot_rows_t(int64_t d, const T* a, const T* XT, int64_t ldx, int64_t n, T* out, int64_t ldo) {
  for (int64_t j0 = 0; j0 < n; j0 += kW) {
    T acc[R][kW] = {};
    for (int64_t e = 0; e < d; ++e) {
      const T* x = XT + e * ldx + j0;
      for (int r = 0; r < R; ++r) {
        const T ar = a[r * d + e];
#pragma omp simd
        for (int jj = 0; jj < kW; ++jj) acc[r][jj] += ar * x[jj];
      }
    }
    for (int r = 0; r < R; ++r)
      for (int jj = 0; jj < kW; ++jj) out[r * ldo + j0 + jj] = acc[r][jj];
  }
}

// out[r][e] = sum_{j < n[r]} w[r][j] X[j][e] (e < d), X rows ldx apart, w rows ldw apart, out R x d.
// Each element sums over j in ascending order.
template <class T, int R>
void weighted_rows(int64_t d, const T* w, int64_t ldw, const int64_t* n, const T* X, int64_t ldx, T* out) {
  int64_t nmin = n[0];
  for (int r = 1; r < R; ++r) nmin = std::min(nmin, n[r]);
  int64_t e0 = 0;
  for (; e0 + kW <= d; e0 += kW) {
    T acc[R][kW] = {};
    for (int64_t j = 0; j < nmin; ++j) {
      const T* x = X + j * ldx + e0;
      for (int r = 0; r < R; ++r) {
        const T wr = w[r * ldw + j];
#pragma omp simd
        for (int jj = 0; jj < kW; ++jj) acc[r][jj] += wr * x[jj];
      }
    }
    for (int r = 0; r < R; ++r)
      for (int jj = 0; jj < kW; ++jj) out[r * d + e0 + jj] = acc[r][jj];
  }
  if (e0 < d) {
    for (int r = 0; r < R; ++r) std::fill(out + r * d + e0, out + (r + 1) * d, T(0));
    for (int64_t j = 0; j < nmin; ++j)
      for (int r = 0; r < R; ++r) axpy_row(d - e0, w[r * ldw + j], X + j * ldx + e0, out + r * d + e0);
  }
  for (int r = 0; r < R; ++r)
    for (int64_t j = nmin; j < n[r]; ++j) axpy_row(d, w[r * ldw + j], X + j * ldx, out + r * d);
}

// acc[j][e] += sum_{r : j < n[r]} (c w[r][j]) y[r][e]   (e < d; y is R x d; acc rows of d).
// Each element adds the rows r in ascending order.
template <class T, int R>
void rank_update(int64_t d, const T* w, int64_t ldw, const int64_t* n, T c, const T* y, T* acc) {
  int64_t nmin = n[0], nmax = n[0];
  for (int r = 1; r < R; ++r) nmin = std::min(nmin, n[r]), nmax = std::max(nmax, n[r]);
  int64_t e0 = 0;
  for (; e0 + kW <= d; e0 += kW) {
    T yr[R][kW];
    for (int r = 0; r < R; ++r)
      for (int jj = 0; jj < kW; ++jj) yr[r][jj] = y[r * d + e0 + jj];
    for (int64_t j = 0; j < nmin; ++j) {
      T cw[R];
      for (int r = 0; r < R; ++r) cw[r] = c * w[r * ldw + j];
      T* a = acc + j * d + e0;
#pragma omp simd
      for (int jj = 0; jj < kW; ++jj) {
        T s = a[jj];
        for (int r = 0; r < R; ++r) s += cw[r] * yr[r][jj];
        a[jj] = s;
      }
    }
  }
  for (int64_t j = 0; j < nmax; ++j)
    for (int r = 0; r < R; ++r)
      if (j < n[r])
        axpy_row(j < nmin ? d - e0 : d, c * w[r * ldw + j], y + r * d + (j < nmin ? e0 : 0),
                 acc + j * d + (j < nmin ? e0 : 0));
}

// One block of R query rows starting at t0 for one (b, h): softmax probabilities into P (rows of
// G.ldt()), output rows and lse.
template <class T, int R>
void fwd_block(const Geo& G, const SoftmaxAttnFwd& a, int64_t b, int64_t h, int64_t t0, const Work<T>& w) {
  const int64_t d = G.d, ld = G.ldt(), g = h / G.rep();
  const T scale = T(a.scale);
  const T* KT = w.KT;
  T *P = w.P, *qs = w.qs, *acc = w.acc;
  int64_t n[R];
  double l[R];
  T mx[R];
  const T* q = a.q.ptr<T>() + ((b * G.T + t0) * G.H + h) * d;
  const int64_t nb = keys_of(G, a.lengths, b);
  for (int r = 0; r < R; ++r) {
    n[r] = std::min(a.causal ? t0 + r + 1 : G.T, nb);
    for (int64_t e = 0; e < d; ++e) qs[r * d + e] = scale * q[r * G.H * d + e];
  }
  dot_rows_t<T, R>(d, qs, KT, ld, n[R - 1], P, ld);
  for (int r = 0; r < R; ++r) {
    T* p = P + r * ld;
    mx[r] = *std::max_element(p, p + n[r]);
    l[r] = 0;
    for (int64_t j = 0; j < n[r]; ++j) {
      p[j] = std::exp(p[j] - mx[r]);
      l[r] += p[j];
    }
  }
  const T* v = a.v.ptr<T>() + (b * G.T * G.Hkv + g) * d;
  weighted_rows<T, R>(d, P, ld, n, v, G.Hkv * d, acc);
  for (int r = 0; r < R; ++r) {
    T* o = a.o.ptr<T>() + ((b * G.T + t0 + r) * G.H + h) * d;
    for (int64_t e = 0; e < d; ++e) o[e] = T(acc[r * d + e] / l[r]);
    a.lse.ptr<T>()[(b * G.T + t0 + r) * G.H + h] = T(double(mx[r]) + std::log(l[r]));
  }
}

// One block of R chunk queries t0.. of head h over the first pos0 + t0 + R cache rows (prefill):
// like fwd_block with the keys shifted by pos0; KT holds the cache rows transposed.
template <class T, int R>
void prefill_block(const SoftmaxAttnPrefill& a, int64_t Hkv, int64_t ld, int64_t h, int64_t t0,
                   const Work<T>& w) {
  const int64_t H = a.q.dim(1), d = a.q.dim(2), g = h / (H / Hkv);
  const T scale = T(a.scale);
  const T* KT = w.KT;
  T *P = w.P, *qs = w.qs, *acc = w.acc;
  int64_t n[R];
  double l[R];
  const T* q = a.q.ptr<T>() + (t0 * H + h) * d;
  for (int r = 0; r < R; ++r) {
    n[r] = a.pos0 + t0 + r + 1;
    for (int64_t e = 0; e < d; ++e) qs[r * d + e] = scale * q[r * H * d + e];
  }
  dot_rows_t<T, R>(d, qs, KT, ld, n[R - 1], P, ld);
  for (int r = 0; r < R; ++r) {
    T* p = P + r * ld;
    const T mx = *std::max_element(p, p + n[r]);
    l[r] = 0;
    for (int64_t j = 0; j < n[r]; ++j) {
      p[j] = std::exp(p[j] - mx);
      l[r] += p[j];
    }
  }
  weighted_rows<T, R>(d, P, ld, n, a.vcache.ptr<T>() + g * d, Hkv * d, acc);
  for (int r = 0; r < R; ++r) {
    T* o = a.o.ptr<T>() + ((t0 + r) * H + h) * d;
    for (int64_t e = 0; e < d; ++e) o[e] = T(acc[r * d + e] / l[r]);
  }
}

// One block of R query rows of head h: dq rows, and the block's share of dK, dV (accumulated).
template <class T, int R>
void bwd_block(const Geo& G, const SoftmaxAttnBwd& a, int64_t b, int64_t h, int64_t t0, const Work<T>& w) {
  const int64_t d = G.d, ld = G.ldt(), g = h / G.rep();
  const T scale = T(a.scale);
  const T *KT = w.KT, *VT = w.VT;
  T *P = w.P, *qs = w.qs, *acc = w.acc, *dS = w.dS, *qr = w.qr, *dor = w.dor, *dKa = w.dKa, *dVa = w.dVa;
  int64_t n[R];
  const int64_t row0 = (b * G.T + t0) * G.H + h;
  const int64_t nb = keys_of(G, a.lengths, b);
  for (int r = 0; r < R; ++r) {
    n[r] = std::min(a.causal ? t0 + r + 1 : G.T, nb);
    const int64_t off = (row0 + r * G.H) * d;
    for (int64_t e = 0; e < d; ++e) {
      qr[r * d + e] = a.q.ptr<T>()[off + e];
      qs[r * d + e] = scale * qr[r * d + e];
      dor[r * d + e] = a.dout.ptr<T>()[off + e];
    }
  }
  dot_rows_t<T, R>(d, qs, KT, ld, n[R - 1], P, ld);
  dot_rows_t<T, R>(d, dor, VT, ld, n[R - 1], dS, ld);
  for (int r = 0; r < R; ++r) {
    const T lse = a.lse.ptr<T>()[row0 + r * G.H];
    const T* o = a.o.ptr<T>() + (row0 + r * G.H) * d;
    double Dl = 0;
    for (int64_t e = 0; e < d; ++e) Dl += double(dor[r * d + e]) * double(o[e]);
    T* p = P + r * ld;
    T* ds = dS + r * ld;
    for (int64_t j = 0; j < n[r]; ++j) {
      p[j] = std::exp(p[j] - lse);
      ds[j] = p[j] * (ds[j] - T(Dl));
    }
  }
  const T* k = a.k.ptr<T>() + (b * G.T * G.Hkv + g) * d;
  weighted_rows<T, R>(d, dS, ld, n, k, G.Hkv * d, acc);
  for (int r = 0; r < R; ++r) {
    T* dq = a.dq.ptr<T>() + (row0 + r * G.H) * d;
    for (int64_t e = 0; e < d; ++e) dq[e] = scale * acc[r * d + e];
  }
  rank_update<T, R>(d, dS, ld, n, scale, qr, dKa);
  rank_update<T, R>(d, P, ld, n, T(1), dor, dVa);
}

// Runs F<T, R> for the block of rows [t0, t0 + R), R = min(kQ, T - t0).
#define WERSA_BLOCK_ROWS(F, RR, ...) \
  switch (RR) {                      \
    case 4:                          \
      F<T, 4>(__VA_ARGS__);          \
      break;                         \
    case 3:                          \
      F<T, 3>(__VA_ARGS__);          \
      break;                         \
    case 2:                          \
      F<T, 2>(__VA_ARGS__);          \
      break;                         \
    default:                         \
      F<T, 1>(__VA_ARGS__);          \
  }

}  // namespace

template <class T>
void softmax_attention_prefill(Ctx& ctx, const SoftmaxAttnPrefill& a) {
  const int64_t Tq = a.q.dim(0), H = a.q.dim(1), d = a.q.dim(2), Hkv = a.kcache.dim(1);
  const Geo G{1, a.pos0 + Tq, H, Hkv, d};  // the cache rows in use, read as one sequence
  const int64_t ld = G.ldt();
  const auto work = ctx.per_thread<T>(fwd_work(d, ld));
  if (ctx.planning()) return;
  parallel_for(H, H * Tq * G.T * d > kParallelWork, [&](int64_t h) {
    const Work<T> w = carve(mine(work), d, ld, G.T, false);
    load_transposed(G, a.kcache.ptr<T>(), 0, h / G.rep(), w.KT, G.T);
    for (int64_t t0 = 0; t0 < Tq; t0 += kQ) {
      const int64_t R = std::min<int64_t>(kQ, Tq - t0);
      WERSA_BLOCK_ROWS(prefill_block, R, a, Hkv, ld, h, t0, w);
    }
  });
}

template <class T>
void softmax_attention_fwd(Ctx& ctx, const SoftmaxAttnFwd& a) {
  const Geo G{a.q.dim(0), a.q.dim(1), a.q.dim(2), a.k.dim(2), a.q.dim(3)};
  const auto work = ctx.per_thread<T>(fwd_work(G.d, G.ldt()));
  if (ctx.planning()) return;
  if (a.lengths.defined()) checked_lengths("softmax_attention_fwd", a.lengths, G.T);
  const int64_t nbh = G.B * G.H;
  parallel_for(nbh, G.work() > kParallelWork, [&](int64_t bh) {
    const int64_t b = bh / G.H, h = bh % G.H;
    const Work<T> w = carve(mine(work), G.d, G.ldt(), G.T, false);
    load_transposed(G, a.k.ptr<T>(), b, h / G.rep(), w.KT, keys_of(G, a.lengths, b));
    for (int64_t t0 = 0; t0 < G.T; t0 += kQ) {
      const int64_t R = std::min<int64_t>(kQ, G.T - t0);
      WERSA_BLOCK_ROWS(fwd_block, R, G, a, b, h, t0, w);
    }
  });
}

template <class T>
void softmax_attention_bwd(Ctx& ctx, const SoftmaxAttnBwd& a) {
  const Geo G{a.q.dim(0), a.q.dim(1), a.q.dim(2), a.k.dim(2), a.q.dim(3)};
  const int64_t nbg = G.B * G.Hkv, d = G.d;
  const auto work = ctx.per_thread<T>(bwd_work(d, G.ldt(), G.T));
  if (ctx.planning()) return;
  if (a.lengths.defined()) checked_lengths("softmax_attention_bwd", a.lengths, G.T);
  parallel_for(nbg, G.work() > kParallelWork, [&](int64_t bg) {
    const int64_t b = bg / G.Hkv, g = bg % G.Hkv;
    const Work<T> w = carve(mine(work), d, G.ldt(), G.T, true);
    const int64_t nb = keys_of(G, a.lengths, b);
    load_transposed(G, a.k.ptr<T>(), b, g, w.KT, nb);
    load_transposed(G, a.v.ptr<T>(), b, g, w.VT, nb);
    std::fill(w.dKa, w.dKa + G.T * d, T(0));
    std::fill(w.dVa, w.dVa + G.T * d, T(0));
    for (int64_t r = 0; r < G.rep(); ++r)
      for (int64_t t0 = 0; t0 < G.T; t0 += kQ) {
        const int64_t R = std::min<int64_t>(kQ, G.T - t0);
        WERSA_BLOCK_ROWS(bwd_block, R, G, a, b, g * G.rep() + r, t0, w);
      }
    T* dk = a.dk.ptr<T>() + (b * G.T * G.Hkv + g) * d;
    T* dv = a.dv.ptr<T>() + (b * G.T * G.Hkv + g) * d;
    for (int64_t j = 0; j < G.T; ++j) {
      std::copy(w.dKa + j * d, w.dKa + (j + 1) * d, dk + j * G.Hkv * d);
      std::copy(w.dVa + j * d, w.dVa + (j + 1) * d, dv + j * G.Hkv * d);
    }
  });
}

#undef WERSA_BLOCK_ROWS

template <class T>
void softmax_attention_decode(Ctx& ctx, const SoftmaxAttnDecode& a) {
  const int64_t H = a.q.dim(0), d = a.q.dim(1), Hkv = a.kcache.dim(1), n = a.len;
  const int64_t rep = H / Hkv;
  // Per thread: scores sc [rep x n], acc and qs [rep x d]; the softmax sums [rep] in double.
  const auto work = ctx.per_thread<T>(rep * n + 2 * rep * d);
  const auto sums = ctx.per_thread<double>(rep);
  if (ctx.planning()) return;
  const T scale = T(a.scale);
  // Per kv head: the scores of its rep query heads in one pass over the key rows, the outputs in
  // one pass over the value rows (gemv.h: vectorised, fixed order).
  parallel_for(Hkv, H * n * d > kParallelWork, [&](int64_t g) {
    T* sc = mine(work);
    T* acc = sc + rep * n;
    T* qs = acc + rep * d;
    const T* q = a.q.ptr<T>() + g * rep * d;
    for (int64_t e = 0; e < rep * d; ++e) qs[e] = scale * q[e];
    dot_rows_multi(n, d, a.kcache.ptr<T>() + g * d, Hkv * d, qs, int(rep), sc);
    double* lsum = mine(sums);
    for (int64_t r = 0; r < rep; ++r) {
      T* s = sc + r * n;
      const T mx = *std::max_element(s, s + n);
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        s[j] = std::exp(s[j] - mx);
        sum += s[j];
      }
      lsum[r] = sum;
    }
    gemv_t_multi(n, d, a.vcache.ptr<T>() + g * d, Hkv * d, sc, int(rep), acc);
    for (int64_t r = 0; r < rep; ++r) {
      T* o = a.o.ptr<T>() + (g * rep + r) * d;
      for (int64_t e = 0; e < d; ++e) o[e] = T(acc[r * d + e] / lsum[r]);
    }
  });
}

template <class T>
void kv_cache_append(Ctx&, const KvCacheAppend& a) {
  const int64_t T_ = a.k.dim(0), row = a.k.dim(1) * a.k.dim(2);
  T* kc = a.kcache.ptr<T>() + a.pos0 * row;
  T* vc = a.vcache.ptr<T>() + a.pos0 * row;
  if (a.k.ptr<T>() != kc) std::copy(a.k.ptr<T>(), a.k.ptr<T>() + T_ * row, kc);
  if (a.v.ptr<T>() != vc) std::copy(a.v.ptr<T>(), a.v.ptr<T>() + T_ * row, vc);
}

template void softmax_attention_fwd<float>(Ctx&, const SoftmaxAttnFwd&);
template void softmax_attention_fwd<double>(Ctx&, const SoftmaxAttnFwd&);
template void softmax_attention_bwd<float>(Ctx&, const SoftmaxAttnBwd&);
template void softmax_attention_bwd<double>(Ctx&, const SoftmaxAttnBwd&);
template void softmax_attention_decode<float>(Ctx&, const SoftmaxAttnDecode&);
template void softmax_attention_decode<double>(Ctx&, const SoftmaxAttnDecode&);
template void softmax_attention_prefill<float>(Ctx&, const SoftmaxAttnPrefill&);
template void softmax_attention_prefill<double>(Ctx&, const SoftmaxAttnPrefill&);
template void kv_cache_append<float>(Ctx&, const KvCacheAppend&);
template void kv_cache_append<double>(Ctx&, const KvCacheAppend&);

}  // namespace wersa::cpu

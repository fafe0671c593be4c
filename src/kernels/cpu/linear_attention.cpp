// CPU chunked linear attention (see include/wersa/ops/linear_attention.h for the math).
// Layout: phiq [B,T,H,m], phik [B,T,Hkv,m], v [B,T,Hkv,d]: a row of one head is contiguous, rows of
// successive positions are H*m (or Hkv*m, Hkv*d) apart, so a chunk of one head is a strided matrix
// that BLAS reads in place. Each (b, head) task runs its chunks as single-threaded GEMMs (the task
// loop is the parallel region; OpenMP OpenBLAS runs a call inside it on the calling thread):
//   forward    A = Qc Kc^T (masked i >= s),  Out = A V1c + Qc S,  S += Kc^T V1c
//   dphiq      B = Gc V1c^T (masked),        dQc = B Kc + Gc S^T
//   dphik, dv  reverse sweep with R = sum over later chunks of Qc^T Gc:
//              dKc += B^T Qc + V1c R^T,  dVc += A^T Gc[:, :d] + Kc R[:, :d],  then R += Qc^T Gc
// with V1c = [v, 1] of the chunk (its last column carries z and the denominator) and Gc the rows
// g = [dout / den, -(dout . o) / den]. The full C x C products are formed and their upper triangle
// zeroed: twice the intra-chunk multiply-adds of a triangular loop, at GEMM speed. States are kept
// in T (fp32 for float). Scratch: one slice per thread holding the chunk buffers of one task
// (fwd_scratch, bwd_scratch elements), carved by the task.
// With (S0, z0), the forward continues from that state and leaves it unchanged: advancing it
// (`advance`: the step, or this kernel then linear_attention_state) is routed by the op layer
// (src/ops/linear_attention.cpp), not here.
// A causal float op on a build with vector instructions runs the same sweeps through the banded
// register-blocked products of linear_attention_vec.cpp instead of BLAS (double, bidirectional
// and portable builds stay here).
#include "wersa/ops/linear_attention.h"

#include <algorithm>
#include <type_traits>

#include "blas.h"
#include "kernels.h"
#include "linear_attention_impl.h"
#include "parallel.h"

namespace wersa::cpu {

namespace {

using namespace linattn;  // Geo and the row helpers

// Below this many multiply-adds an op runs on one thread: a parallel region costs more.
constexpr int64_t kParallelWork = int64_t(1) << 16;

int I(int64_t x) { return int(x); }

// S [m x (d+1)] += sum over all positions of phik^T [v, 1] (bidirectional), chunk by chunk through
// the V1 buffer.
template <class T>
void add_full_state(const Geo& G, const T* k, const T* v, T* V1, T* S) {
  const int64_t dp = G.d + 1;
  for (int64_t c0 = 0; c0 < G.T; c0 += G.C) {
    const int64_t n = std::min(G.C, G.T - c0);
    load_v1(G, v, c0, n, V1);
    gemm(true, false, I(G.m), I(dp), I(n), T(1), k + c0 * G.ks(), I(G.ks()), V1, I(dp), T(1), S, I(dp));
  }
}

// Zero the entries above the diagonal of an n x n block with leading dimension C: position i reads
// positions s <= i only (the causal mask).
template <class T>
void mask_upper(int64_t n, int64_t C, T* A) {
  for (int64_t i = 0; i + 1 < n; ++i) std::fill(A + i * C + i + 1, A + i * C + n, T(0));
}

// ---- forward -----------------------------------------------------------------------------------

// Per-thread scratch of fwd_head: V1 [C x (d+1)], S [m x (d+1)], A [C x C], Out [C x (d+1)].
int64_t fwd_scratch(const Geo& G) {
  const int64_t dp = G.d + 1;
  return 2 * G.C * dp + G.m * dp + G.C * G.C;
}

template <class T>
void fwd_head(const Geo& G, const LinearAttnFwd& a, int64_t b, int64_t h, T* work) {
  const HeadRows<T> R(G, a.phiq.ptr<T>(), a.phik.ptr<T>(), a.v.ptr<T>(), b, h);
  T* o = a.o.ptr<T>() + (b * G.T * G.H + h) * G.d;
  T* den = a.den.ptr<T>() + b * G.T * G.H + h;
  const T eps = T(a.eps);
  const int64_t m = G.m, dp = G.d + 1, C = G.C;
  T* V1 = work;
  T* S = V1 + C * dp;
  T* A = S + m * dp;
  T* Out = A + C * C;
  load_state(G, a, b, h, S);
  if (!a.causal) add_full_state(G, R.k, R.v, V1, S);  // S' over all positions, then every row reads it
  for (int64_t c0 = 0; c0 < G.T; c0 += C) {
    const int64_t n = std::min(C, G.T - c0);
    const T* Qc = R.q + c0 * G.qs();
    const T* Kc = R.k + c0 * G.ks();
    T beta = T(0);
    if (a.causal) {
      load_v1(G, R.v, c0, n, V1);
      gemm(false, true, I(n), I(n), I(m), T(1), Qc, I(G.qs()), Kc, I(G.ks()), T(0), A, I(C));
      mask_upper(n, C, A);
      gemm(false, false, I(n), I(dp), I(n), T(1), A, I(C), V1, I(dp), T(0), Out, I(dp));
      beta = T(1);
    }
    gemm(false, false, I(n), I(dp), I(m), T(1), Qc, I(G.qs()), S, I(dp), beta, Out, I(dp));
    for (int64_t i = 0; i < n; ++i)
      finish_row(G, Out + i * dp, eps, o + (c0 + i) * G.os(), den + (c0 + i) * G.H);
    if (a.causal) gemm(true, false, I(m), I(dp), I(n), T(1), Kc, I(G.ks()), V1, I(dp), T(1), S, I(dp));
  }
}

// ---- backward ----------------------------------------------------------------------------------

// Per-thread scratch of the backward: the larger of bwd_dq_head's Gc, V1 [C x (d+1)], S
// [m x (d+1)], Bm [C x C] and bwd_dkv_group's Gc, V1, R [m x (d+1)], Bm, Am [C x C].
int64_t bwd_scratch(const Geo& G) {
  const int64_t dp = G.d + 1, C = G.C;
  return 2 * C * dp + G.m * dp + 2 * C * C;
}

// dphiq, one forward sweep per (b, query head).
template <class T>
void bwd_dq_head(const Geo& G, const LinearAttnBwd& a, int64_t b, int64_t h, T* work) {
  const HeadRows<T> R(G, a.phiq.ptr<T>(), a.phik.ptr<T>(), a.v.ptr<T>(), b, h);
  const HeadOut<T> Y(G, a, b, h);
  T* dq = a.dphiq.ptr<T>() + (b * G.T * G.H + h) * G.m;
  const int64_t m = G.m, dp = G.d + 1, C = G.C;
  T* Gc = work;
  T* V1 = Gc + C * dp;
  T* S = V1 + C * dp;
  T* Bm = S + m * dp;
  std::fill(S, S + m * dp, T(0));
  if (!a.causal) add_full_state(G, R.k, R.v, V1, S);  // bidirectional: the state over all T first
  for (int64_t c0 = 0; c0 < G.T; c0 += C) {
    const int64_t n = std::min(C, G.T - c0);
    const T* Kc = R.k + c0 * G.ks();
    T* dQc = dq + c0 * G.qs();
    load_g(G, Y, c0, n, Gc);
    T beta = T(0);
    if (a.causal) {
      load_v1(G, R.v, c0, n, V1);
      gemm(false, true, I(n), I(n), I(dp), T(1), Gc, I(dp), V1, I(dp), T(0), Bm, I(C));
      mask_upper(n, C, Bm);
      gemm(false, false, I(n), I(m), I(n), T(1), Bm, I(C), Kc, I(G.ks()), T(0), dQc, I(G.qs()));
      beta = T(1);
    }
    gemm(false, true, I(n), I(m), I(dp), T(1), Gc, I(dp), S, I(dp), beta, dQc, I(G.qs()));
    if (a.causal) gemm(true, false, I(m), I(dp), I(n), T(1), Kc, I(G.ks()), V1, I(dp), T(1), S, I(dp));
  }
}

// dphik, dv: one reverse sweep per query head of the group, per (b, kv head).
template <class T>
void bwd_dkv_group(const Geo& G, const LinearAttnBwd& a, int64_t b, int64_t gk, T* work) {
  const int64_t m = G.m, d = G.d, dp = d + 1, C = G.C;
  T* dk = a.dphik.ptr<T>() + (b * G.T * G.Hkv + gk) * m;
  T* dv = a.dv.ptr<T>() + (b * G.T * G.Hkv + gk) * d;
  for (int64_t t = 0; t < G.T; ++t) {
    std::fill(dk + t * G.ks(), dk + t * G.ks() + m, T(0));
    std::fill(dv + t * G.vs(), dv + t * G.vs() + d, T(0));
  }
  T* Gc = work;
  T* V1 = Gc + C * dp;
  T* Rs = V1 + C * dp;  // R [m x (d+1)]
  T* Bm = Rs + m * dp;
  T* Am = Bm + C * C;
  const int64_t nch = (G.T + C - 1) / C;
  for (int64_t j = 0; j < G.rep(); ++j) {
    const int64_t h = gk * G.rep() + j;
    const HeadRows<T> R(G, a.phiq.ptr<T>(), a.phik.ptr<T>(), a.v.ptr<T>(), b, h);
    const HeadOut<T> Y(G, a, b, h);
    std::fill(Rs, Rs + m * dp, T(0));
    if (!a.causal) {  // R over all positions first; every position then reads it
      for (int64_t c0 = 0; c0 < G.T; c0 += C) {
        const int64_t n = std::min(C, G.T - c0);
        load_g(G, Y, c0, n, Gc);
        gemm(true, false, I(m), I(dp), I(n), T(1), R.q + c0 * G.qs(), I(G.qs()), Gc, I(dp), T(1), Rs, I(dp));
      }
    }
    // Causal: chunks from the last to the first, R holding the sum over later chunks.
    for (int64_t c = nch - 1; c >= 0; --c) {
      const int64_t c0 = c * C, n = std::min(C, G.T - c0);
      const T* Qc = R.q + c0 * G.qs();
      const T* Kc = R.k + c0 * G.ks();
      T* dKc = dk + c0 * G.ks();
      T* dVc = dv + c0 * G.vs();
      load_v1(G, R.v, c0, n, V1);
      if (a.causal) {
        load_g(G, Y, c0, n, Gc);
        gemm(false, true, I(n), I(n), I(dp), T(1), Gc, I(dp), V1, I(dp), T(0), Bm, I(C));
        mask_upper(n, C, Bm);
        gemm(true, false, I(n), I(m), I(n), T(1), Bm, I(C), Qc, I(G.qs()), T(1), dKc, I(G.ks()));
        gemm(false, true, I(n), I(n), I(m), T(1), Qc, I(G.qs()), Kc, I(G.ks()), T(0), Am, I(C));
        mask_upper(n, C, Am);
        gemm(true, false, I(n), I(d), I(n), T(1), Am, I(C), Gc, I(dp), T(1), dVc, I(G.vs()));
      }
      // The later chunks (causal) or all positions (bidirectional), through R.
      gemm(false, true, I(n), I(m), I(dp), T(1), V1, I(dp), Rs, I(dp), T(1), dKc, I(G.ks()));
      gemm(false, false, I(n), I(d), I(m), T(1), Kc, I(G.ks()), Rs, I(dp), T(1), dVc, I(G.vs()));
      if (a.causal && c > 0)  // R gains this chunk for the earlier ones
        gemm(true, false, I(m), I(dp), I(n), T(1), Qc, I(G.qs()), Gc, I(dp), T(1), Rs, I(dp));
    }
  }
}

}  // namespace

template <class T>
void linear_attention_fwd(Ctx& ctx, const LinearAttnFwd& a) {
  const Geo G = geo(a.phiq, a.phik, a.v, a.chunk);
  // Causal float on a vector build: linear_attention_vec.cpp.
  constexpr bool vec = linattn::kVecEnabled && std::is_same_v<T, float>;
  const auto work =
      ctx.per_thread<T>(vec ? std::max(fwd_scratch(G), linattn::vec_fwd_scratch(G)) : fwd_scratch(G));
  if (ctx.planning()) return;
  const int64_t n = G.B * G.H;
  parallel_for(n, G.work() > kParallelWork, [&](int64_t bh) {
    if constexpr (vec) {
      if (a.causal) return linattn::vec_fwd_head(G, a, bh / G.H, bh % G.H, mine(work));
    }
    fwd_head<T>(G, a, bh / G.H, bh % G.H, mine(work));
  });
}

template <class T>
void linear_attention_bwd(Ctx& ctx, const LinearAttnBwd& a) {
  const Geo G = geo(a.phiq, a.phik, a.v, a.chunk);
  constexpr bool vec = linattn::kVecEnabled && std::is_same_v<T, float>;
  const auto work =
      ctx.per_thread<T>(vec ? std::max(bwd_scratch(G), linattn::vec_bwd_scratch(G)) : bwd_scratch(G));
  if (ctx.planning()) return;
  const int64_t nq = G.B * G.H, nk = G.B * G.Hkv;
  const bool par = G.work() > kParallelWork;
  parallel_for(nq, par, [&](int64_t bh) {
    if constexpr (vec) {
      if (a.causal) return linattn::vec_bwd_dq_head(G, a, bh / G.H, bh % G.H, mine(work));
    }
    bwd_dq_head<T>(G, a, bh / G.H, bh % G.H, mine(work));
  });
  parallel_for(nk, par, [&](int64_t bg) {
    if constexpr (vec) {
      if (a.causal) return linattn::vec_bwd_dkv_group(G, a, bg / G.Hkv, bg % G.Hkv, mine(work));
    }
    bwd_dkv_group<T>(G, a, bg / G.Hkv, bg % G.Hkv, mine(work));
  });
}

template <class T>
void linear_attention_step(Ctx& ctx, const LinearAttnStep& a) {
  const int64_t H = a.phiq.dim(0), m = a.phiq.dim(1), Hkv = a.phik.dim(0), d = a.v.dim(1);
  const auto nums = ctx.per_thread<T>(d);
  if (ctx.planning()) return;
  const int64_t rep = H / Hkv;
  T* S = a.S.ptr<T>();
  T* z = a.z.ptr<T>();
  const T* phik = a.phik.ptr<T>();
  const T* v = a.v.ptr<T>();
  T* den = a.den.defined() ? a.den.ptr<T>() : nullptr;
  // One decode-team job (team.h) per step: each kv group's state update, then its query heads'
  // read-out of the updated state.
  team_for(Hkv, H * m * d > kParallelWork, [&](int64_t g) {
    const T* kr = phik + g * m;
    for (int64_t kk = 0; kk < m; ++kk) {
      if (kr[kk] == T(0)) continue;
      axpy_row(d, kr[kk], v + g * d, S + (g * m + kk) * d);
      z[g * m + kk] += kr[kk];
    }
    for (int64_t h = g * rep; h < (g + 1) * rep; ++h) {
      const T* q = a.phiq.ptr<T>() + h * m;
      T* num = mine(nums);
      std::fill(num, num + d, T(0));
      T dn = T(0);
      for (int64_t kk = 0; kk < m; ++kk) {
        if (q[kk] == T(0)) continue;
        axpy_row(d, q[kk], S + (g * m + kk) * d, num);
        dn += q[kk] * z[g * m + kk];
      }
      dn += T(a.eps);
      if (den) den[h] = dn;
      T* o = a.o.ptr<T>() + h * d;
      for (int64_t e = 0; e < d; ++e) o[e] = num[e] / dn;
    }
  });
}

template <class T>
void linear_attention_state(Ctx&, const LinearAttnState& a) {
  const int64_t B = a.phik.dim(0), Tn = a.phik.dim(1), Hkv = a.phik.dim(2), m = a.phik.dim(3);
  const int64_t d = a.v.dim(3);
  const int64_t n = B * Hkv;
  parallel_for(n, n * Tn * m * d > kParallelWork, [&](int64_t bg) {
    const int64_t b = bg / Hkv, g = bg % Hkv;
    T* S = a.S.ptr<T>() + bg * m * d;
    T* z = a.z.ptr<T>() + bg * m;
    if (!a.accumulate) {
      std::fill(S, S + m * d, T(0));
      std::fill(z, z + m, T(0));
    }
    const T* k = a.phik.ptr<T>() + (b * Tn * Hkv + g) * m;
    const T* v = a.v.ptr<T>() + (b * Tn * Hkv + g) * d;
    for (int64_t t = 0; t < Tn; ++t) {
      const T* kr = k + t * Hkv * m;
      const T* vr = v + t * Hkv * d;
      for (int64_t kk = 0; kk < m; ++kk) {
        if (kr[kk] == T(0)) continue;
        axpy_row(d, kr[kk], vr, S + kk * d);
        z[kk] += kr[kk];
      }
    }
  });
}

template void linear_attention_fwd<float>(Ctx&, const LinearAttnFwd&);
template void linear_attention_fwd<double>(Ctx&, const LinearAttnFwd&);
template void linear_attention_bwd<float>(Ctx&, const LinearAttnBwd&);
template void linear_attention_bwd<double>(Ctx&, const LinearAttnBwd&);
template void linear_attention_step<float>(Ctx&, const LinearAttnStep&);
template void linear_attention_step<double>(Ctx&, const LinearAttnStep&);
template void linear_attention_state<float>(Ctx&, const LinearAttnState&);
template void linear_attention_state<double>(Ctx&, const LinearAttnState&);

}  // namespace wersa::cpu

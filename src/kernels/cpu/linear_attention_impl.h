// Internal to the CPU linear attention (linear_attention.cpp, linear_attention_vec.cpp): the
// problem's geometry and the row helpers both kernels share (see linear_attention.cpp for the
// chunked algorithm and include/wersa/ops/linear_attention.h for the math).
#pragma once
#include <algorithm>
#include <cstdint>

#include "reduce.h"
#include "simd.h"
#include "wersa/ops/linear_attention.h"

namespace wersa::cpu::linattn {

struct Geo {
  int64_t B, T, H, Hkv, m, d, C;
  int64_t rep() const { return H / Hkv; }
  int64_t work() const { return B * H * T * (C + m) * (d + 1); }
  // Row strides between successive positions.
  int64_t qs() const { return H * m; }
  int64_t ks() const { return Hkv * m; }
  int64_t vs() const { return Hkv * d; }
  int64_t os() const { return H * d; }
};

inline Geo geo(const Tensor& phiq, const Tensor& phik, const Tensor& v, int chunk) {
  // A chunk longer than the sequence computes the same thing as one of length T; clamping it keeps
  // the scratch O(T).
  const int64_t T = phiq.dim(1);
  return Geo{phiq.dim(0),
             T,
             phiq.dim(2),
             phik.dim(2),
             phiq.dim(3),
             v.dim(3),
             std::min<int64_t>(chunk, std::max<int64_t>(T, 1))};
}

// Pointers to the first row of (b, query head h) and of its kv head.
template <class T>
struct HeadRows {
  const T *q, *k, *v;
  HeadRows(const Geo& G, const T* q0, const T* k0, const T* v0, int64_t b, int64_t h) {
    const int64_t g = h / G.rep();
    q = q0 + (b * G.T * G.H + h) * G.m;
    k = k0 + (b * G.T * G.Hkv + g) * G.m;
    v = v0 + (b * G.T * G.Hkv + g) * G.d;
  }
};

// V1 [n x (d+1)] = [v, 1] of positions [c0, c0+n).
template <class T>
void load_v1(const Geo& G, const T* v, int64_t c0, int64_t n, T* V1) {
  const int64_t d = G.d, dp = d + 1;
  for (int64_t s = 0; s < n; ++s) {
    const T* vr = v + (c0 + s) * G.vs();
    std::copy(vr, vr + d, V1 + s * dp);
    V1[s * dp + d] = T(1);
  }
}

// o = num / den from the augmented row out = [num, den - eps].
template <class T>
void finish_row(const Geo& G, const T* out, T eps, T* o, T* den) {
  const T dn = out[G.d] + eps;
  *den = dn;
  for (int64_t e = 0; e < G.d; ++e) o[e] = out[e] / dn;
}

// g = [dout / den, -(dout . o) / den], d+1 wide.
template <class T>
void grad_row(int64_t d, const T* dout, const T* o, T den, T* g) {
  const double dot = lane_sum(d, [&](int64_t e) { return double(dout[e]) * double(o[e]); });
  const T inv = T(1) / den;  // one division per row; the elements multiply by it
  for (int64_t e = 0; e < d; ++e) g[e] = dout[e] * inv;
  g[d] = T(-dot / double(den));
}

// The forward's outputs and their gradient in the rows of (b, query head h): dout and o rows H*d
// apart, den H apart (what load_g reads).
template <class T>
struct HeadOut {
  const T *dout, *o, *den;
  HeadOut(const Geo& G, const LinearAttnBwd& a, int64_t b, int64_t h)
      : dout(a.dout.ptr<T>() + (b * G.T * G.H + h) * G.d),
        o(a.o.ptr<T>() + (b * G.T * G.H + h) * G.d),
        den(a.den.ptr<T>() + b * G.T * G.H + h) {}
};

// Gc [n x (d+1)]: the g rows of positions [c0, c0+n) of one query head.
template <class T>
void load_g(const Geo& G, const HeadOut<T>& y, int64_t c0, int64_t n, T* Gc) {
  const int64_t dp = G.d + 1;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = c0 + i;
    grad_row(G.d, y.dout + t * G.os(), y.o + t * G.os(), y.den[t * G.H], Gc + i * dp);
  }
}

// S' [m x (d+1)] at the start of a forward for query head h: zero, or [S0, z0] of its kv head
// (a sequence continued from a state).
template <class T>
void load_state(const Geo& G, const LinearAttnFwd& a, int64_t b, int64_t h, T* S) {
  const int64_t m = G.m, dp = G.d + 1;
  std::fill(S, S + m * dp, T(0));
  if (!a.S0.defined()) return;
  const int64_t g = h / G.rep();
  const T* S0 = a.S0.ptr<T>() + (b * G.Hkv + g) * m * G.d;
  const T* z0 = a.z0.ptr<T>() + (b * G.Hkv + g) * m;
  for (int64_t kk = 0; kk < m; ++kk) {
    std::copy(S0 + kk * G.d, S0 + (kk + 1) * G.d, S + kk * dp);
    S[kk * dp + G.d] = z0[kk];
  }
}

// The causal float kernels on the build's vectors (linear_attention_vec.cpp), where the build
// has vector instructions; the scratch each needs per thread, in floats.
constexpr bool kVecEnabled = simd::kLanes > 1;
int64_t vec_fwd_scratch(const Geo& G);
int64_t vec_bwd_scratch(const Geo& G);
void vec_fwd_head(const Geo& G, const LinearAttnFwd& a, int64_t b, int64_t h, float* work);
void vec_bwd_dq_head(const Geo& G, const LinearAttnBwd& a, int64_t b, int64_t h, float* work);
void vec_bwd_dkv_group(const Geo& G, const LinearAttnBwd& a, int64_t b, int64_t gk, float* work);

}  // namespace wersa::cpu::linattn

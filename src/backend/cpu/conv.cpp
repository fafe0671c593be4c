// CPU depthwise convolution along time: y[b,t,c] = bias[c] + sum_i w[c,i] x[b, t-o+i, c], with
// o = K-1 (causal) or (K-1)/2 (centred), x = 0 outside [0, T). Rows (b, t) run in parallel for y
// and dx; dw and db are summed per channel block in a fixed (b, t) order, so they do not depend on
// the thread count.
#include "wersa/ops/conv.h"

#include <algorithm>
#include <vector>

namespace wersa::cpu {
namespace {

int64_t conv_offset(int64_t K, bool causal) { return causal ? K - 1 : (K - 1) / 2; }

// w [C, K] transposed to [K, C] so that the inner loop over channels is contiguous.
template <class T>
const T* transpose_w(const Tensor& w) {
  static thread_local std::vector<T> wt;
  const int64_t C = w.dim(0), K = w.dim(1);
  if (int64_t(wt.size()) < C * K) wt.resize(C * K);
  const T* src = w.ptr<T>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < K; ++i) wt[i * C + c] = src[c * K + i];
  return wt.data();
}

// out[b,s,c] (=|+=) sum_i wt[i,c] * in[b, s + shift + sign*i, c] over in-range positions: the forward
// uses (shift, sign) = (-o, +1), the input gradient (o, -1).
template <class T>
void correlate(T* out, const T* in, const T* wt, const T* bias, int64_t B, int64_t T_, int64_t C, int64_t K,
               int64_t shift, int64_t sign, bool accumulate) {
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T_; ++bt) {
    static thread_local std::vector<double> acc;
    if (int64_t(acc.size()) < C) acc.resize(C);
    const int64_t b = bt / T_, s = bt % T_;
    for (int64_t c = 0; c < C; ++c) acc[c] = bias ? double(bias[c]) : 0.0;
    for (int64_t i = 0; i < K; ++i) {
      const int64_t t = s + shift + sign * i;
      if (t < 0 || t >= T_) continue;
      const T* row = in + (b * T_ + t) * C;
      const T* wr = wt + i * C;
      for (int64_t c = 0; c < C; ++c) acc[c] += double(wr[c]) * double(row[c]);
    }
    T* o = out + bt * C;
    if (accumulate)
      for (int64_t c = 0; c < C; ++c) o[c] += T(acc[c]);
    else
      for (int64_t c = 0; c < C; ++c) o[c] = T(acc[c]);
  }
}

}  // namespace

template <class T>
void depthwise_conv_fwd(const DepthwiseConvFwd& a) {
  const int64_t B = a.x.dim(0), T_ = a.x.dim(1), C = a.x.dim(2), K = a.w.dim(1);
  if (B * T_ * C == 0) return;
  const T* wt = transpose_w<T>(a.w);
  correlate(a.y.ptr<T>(), a.x.ptr<T>(), wt, a.b.defined() ? a.b.ptr<T>() : nullptr, B, T_, C, K,
            -conv_offset(K, a.causal), 1, false);
}

template <class T>
void depthwise_conv_bwd(const DepthwiseConvBwd& a) {
  const int64_t B = a.x.dim(0), T_ = a.x.dim(1), C = a.x.dim(2), K = a.w.dim(1);
  const int64_t o = conv_offset(K, a.causal);
  if (B * T_ * C == 0) return;
  const T* dy = a.dy.ptr<T>();
  if (a.dx.defined())
    correlate(a.dx.ptr<T>(), dy, transpose_w<T>(a.w), static_cast<const T*>(nullptr), B, T_, C, K, o, -1,
              a.accumulate_dx);
  if (!a.dw.defined() && !a.db.defined()) return;
  const T* x = a.x.ptr<T>();
  T* dw = a.dw.defined() ? a.dw.ptr<T>() : nullptr;
  T* db = a.db.defined() ? a.db.ptr<T>() : nullptr;
  constexpr int64_t CB = 16;  // channels per task
  const int64_t nblocks = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t c0 = blk * CB, nc = std::min(CB, C - c0);
    static thread_local std::vector<double> accw;
    if (int64_t(accw.size()) < K * CB) accw.resize(K * CB);
    std::fill(accw.begin(), accw.begin() + K * CB, 0.0);
    double accb[CB] = {};
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T_; ++t) {
        const T* g = dy + (b * T_ + t) * C + c0;
        for (int64_t c = 0; c < nc; ++c) accb[c] += double(g[c]);
        for (int64_t i = 0; i < K; ++i) {
          const int64_t s = t - o + i;
          if (s < 0 || s >= T_) continue;
          const T* xr = x + (b * T_ + s) * C + c0;
          double* aw = accw.data() + i * CB;
          for (int64_t c = 0; c < nc; ++c) aw[c] += double(g[c]) * double(xr[c]);
        }
      }
    for (int64_t c = 0; c < nc; ++c) {
      if (db) db[c0 + c] += T(accb[c]);
      if (dw)
        for (int64_t i = 0; i < K; ++i) dw[(c0 + c) * K + i] += T(accw[i * CB + c]);
    }
  }
}

template <class T>
void depthwise_conv_step(const DepthwiseConvStep& a) {
  const int64_t C = a.x.dim(0), K = a.w.dim(1), W = K - 1;
  static thread_local std::vector<double> acc;
  if (int64_t(acc.size()) < C) acc.resize(C);
  const T* w = a.w.ptr<T>();
  const T* x = a.x.ptr<T>();
  const T* bias = a.b.defined() ? a.b.ptr<T>() : nullptr;
  for (int64_t c = 0; c < C; ++c) acc[c] = bias ? double(bias[c]) : 0.0;
  for (int64_t i = 0; i < K; ++i) {
    const int64_t t = a.pos - W + i;  // input position of tap i
    if (t < 0) continue;
    const T* row = i == W ? x : a.window.ptr<T>() + (t % W) * C;
    for (int64_t c = 0; c < C; ++c) acc[c] += double(w[c * K + i]) * double(row[c]);
  }
  T* y = a.y.ptr<T>();
  for (int64_t c = 0; c < C; ++c) y[c] = T(acc[c]);
  if (W > 0) std::copy(x, x + C, a.window.ptr<T>() + (a.pos % W) * C);
}

template void depthwise_conv_step<float>(const DepthwiseConvStep&);
template void depthwise_conv_step<double>(const DepthwiseConvStep&);
template void depthwise_conv_fwd<float>(const DepthwiseConvFwd&);
template void depthwise_conv_fwd<double>(const DepthwiseConvFwd&);
template void depthwise_conv_bwd<float>(const DepthwiseConvBwd&);
template void depthwise_conv_bwd<double>(const DepthwiseConvBwd&);

}  // namespace wersa::cpu

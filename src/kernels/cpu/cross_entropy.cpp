// CPU fused softmax cross-entropy: losses[n] = logsumexp(logits[n]) - logits[n, t[n]],
// dlogits[n] = scale * (softmax(logits[n]) - onehot(t[n])). One row per iteration, rows in parallel;
// each row's sum runs in double in a fixed order, so the result does not depend on the thread count.
// Target ids are user data: both kernels first scan them serially (the first bad position is the
// one reported) and raise before writing anything. loss_sum_fwd: a serial sum in row order.
#include "wersa/ops/cross_entropy.h"

#include <cmath>

#include "kernels.h"
#include "vexp.h"

namespace wersa::cpu {
namespace {

// The maximum of a row, in 16 lanes (a loop the compiler vectorises) and then across them.
template <class T>
T row_max(const T* row, int64_t V) {
  constexpr int64_t W = 16;
  if (V < W) {
    T mx = row[0];
    for (int64_t v = 1; v < V; ++v) mx = row[v] > mx ? row[v] : mx;
    return mx;
  }
  T m[W];
  for (int64_t j = 0; j < W; ++j) m[j] = row[j];
  int64_t v = W;
  for (; v + W <= V; v += W)
    for (int64_t j = 0; j < W; ++j) m[j] = row[v + j] > m[j] ? row[v + j] : m[j];
  T mx = m[0];
  for (int64_t j = 1; j < W; ++j) mx = m[j] > mx ? m[j] : mx;
  for (; v < V; ++v) mx = row[v] > mx ? row[v] : mx;
  return mx;
}

// Sum of exp(row - max) in double; with `out`, also out[v] = exp(row[v] - max) (out may be row).
// float: the vectorised exp of vexp.h (within 2 ulp of libm's); double: std::exp.
double exp_sum(const float* row, int64_t V, float mx, float* out) {
  return out ? vexp_shift_sum(V, row, mx, out) : vexp_shift_sum(V, row, mx);
}
double exp_sum(const double* row, int64_t V, double mx, double* out) {
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) {
    const double e = std::exp(row[v] - mx);
    if (out) out[v] = e;
    sum += e;
  }
  return sum;
}

// The loss of a row from its maximum, its sum of exp(row - max) and its target's logit: one
// formula for the forward and for the backward that writes the losses too (bitwise the same).
template <class T>
T row_loss(double sum, T mx, T target_logit) {
  return T(std::log(sum) + double(mx) - double(target_logit));
}

// Every target must lie in [-1, V).
void check_target_values(const char* op, const Tensor& targets, int64_t V) {
  const int32_t* t = targets.ptr<int32_t>();
  for (int64_t n = 0; n < targets.numel(); ++n)
    WERSA_CHECK(t[n] >= -1 && t[n] < V, op, ": target id ", t[n], " at position ", n, " of ",
                targets.describe(), " is outside [-1, ", V, ") (vocabulary size ", V, ", -1 = ignored)");
}

}  // namespace

template <class T>
void cross_entropy_fwd(Ctx&, const CrossEntropyFwd& a) {
  const int64_t N = a.logits.dim(0), V = a.logits.dim(1);
  check_target_values("cross_entropy_fwd", a.targets, V);
  const T* logits = a.logits.ptr<T>();
  const int32_t* targets = a.targets.ptr<int32_t>();
  T* losses = a.losses.ptr<T>();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const int32_t t = targets[n];
    if (t < 0) {
      losses[n] = T(0);
      continue;
    }
    const T* row = logits + n * V;
    const T mx = row_max(row, V);
    const double sum = exp_sum(row, V, mx, static_cast<T*>(nullptr));
    losses[n] = row_loss(sum, mx, row[t]);
  }
}

template <class T>
void cross_entropy_bwd(Ctx&, const CrossEntropyBwd& a) {
  const int64_t N = a.logits.dim(0), V = a.logits.dim(1);
  check_target_values("cross_entropy_bwd", a.targets, V);
  const T* logits = a.logits.ptr<T>();
  const int32_t* targets = a.targets.ptr<int32_t>();
  T* dlogits = a.dlogits.ptr<T>();  // may equal logits: each row is read fully before it is written
  const T* w = a.weights.defined() ? a.weights.ptr<T>() : nullptr;
  T* losses = a.losses.defined() ? a.losses.ptr<T>() : nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const int32_t t = targets[n];
    const T* row = logits + n * V;
    T* out = dlogits + n * V;
    if (t < 0) {
      for (int64_t v = 0; v < V; ++v) out[v] = T(0);
      if (losses) losses[n] = T(0);
      continue;
    }
    const T mx = row_max(row, V);
    const T target_logit = row[t];                // before out (maybe row) is written
    const double sum = exp_sum(row, V, mx, out);  // out[v] written after row[v] read
    if (losses) losses[n] = row_loss(sum, mx, target_logit);
    const double scale = w ? a.scale * double(w[t]) : a.scale;
    const T k = T(scale / sum);
    for (int64_t v = 0; v < V; ++v) out[v] *= k;
    out[t] -= T(scale);
  }
}

template <class T>
void loss_sum_fwd(Ctx&, const LossSumFwd& a) {
  const int64_t N = a.losses.numel();
  const T* losses = a.losses.ptr<T>();
  const int32_t* t = a.targets.ptr<int32_t>();
  const T* w = a.weights.defined() ? a.weights.ptr<T>() : nullptr;
  const int64_t V = w ? a.weights.numel() : 0;
  double sum = 0, n = 0;
  for (int64_t r = 0; r < N; ++r) {
    if (t[r] < 0) continue;
    WERSA_CHECK(!w || t[r] < V, "loss_sum_fwd: target ", t[r], " at position ", r, " has no weight (", V,
                " classes)");
    const double wr = w ? double(w[t[r]]) : 1.0;
    sum += wr * double(losses[r]);
    n += wr;
  }
  double* out = a.out.ptr<double>();
  out[0] = sum;
  out[1] = n;
}

template void cross_entropy_fwd<float>(Ctx&, const CrossEntropyFwd&);
template void cross_entropy_fwd<double>(Ctx&, const CrossEntropyFwd&);
template void cross_entropy_bwd<float>(Ctx&, const CrossEntropyBwd&);
template void cross_entropy_bwd<double>(Ctx&, const CrossEntropyBwd&);
template void loss_sum_fwd<float>(Ctx&, const LossSumFwd&);
template void loss_sum_fwd<double>(Ctx&, const LossSumFwd&);

}  // namespace wersa::cpu

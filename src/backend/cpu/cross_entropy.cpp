// CPU fused softmax cross-entropy: losses[n] = logsumexp(logits[n]) - logits[n, t[n]],
// dlogits[n] = scale * (softmax(logits[n]) - onehot(t[n])). One row per iteration, rows in parallel;
// each row's sum runs serially in double, so the result does not depend on the thread count.
#include "wersa/ops/cross_entropy.h"

#include <cmath>

namespace wersa::cpu {
namespace {

// Max of a row and sum of exp(row - max), in double.
template <class T>
void row_stats(const T* row, int64_t V, T& mx, double& sum) {
  mx = row[0];
  for (int64_t v = 1; v < V; ++v) mx = row[v] > mx ? row[v] : mx;
  sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += double(std::exp(row[v] - mx));
}

}  // namespace

template <class T>
void cross_entropy_fwd(const CrossEntropyFwd& a) {
  const int64_t N = a.logits.dim(0), V = a.logits.dim(1);
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
    T mx;
    double sum;
    row_stats(row, V, mx, sum);
    losses[n] = T(std::log(sum) + double(mx) - double(row[t]));
  }
}

template <class T>
void cross_entropy_bwd(const CrossEntropyBwd& a) {
  const int64_t N = a.logits.dim(0), V = a.logits.dim(1);
  const T* logits = a.logits.ptr<T>();
  const int32_t* targets = a.targets.ptr<int32_t>();
  T* dlogits = a.dlogits.ptr<T>();  // may equal logits: each row is read fully before it is written
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const int32_t t = targets[n];
    const T* row = logits + n * V;
    T* out = dlogits + n * V;
    if (t < 0) {
      for (int64_t v = 0; v < V; ++v) out[v] = T(0);
      continue;
    }
    T mx;
    double sum;
    row_stats(row, V, mx, sum);
    const T k = T(a.scale / sum);
    for (int64_t v = 0; v < V; ++v) out[v] = k * std::exp(row[v] - mx);  // out[v] written after row[v] read
    out[t] -= T(a.scale);
  }
}

template void cross_entropy_fwd<float>(const CrossEntropyFwd&);
template void cross_entropy_fwd<double>(const CrossEntropyFwd&);
template void cross_entropy_bwd<float>(const CrossEntropyBwd&);
template void cross_entropy_bwd<double>(const CrossEntropyBwd&);

}  // namespace wersa::cpu

// CUDA fused softmax cross-entropy (include/wersa/ops/cross_entropy.h):
//   losses[n] = log(sum_v exp(logits[n, v] - max)) + max - logits[n, t[n]]
//   dlogits[n] = scale w[t[n]] (softmax(logits[n]) - onehot(t[n]))      (zero row, loss 0: t = -1)
// One block per row; the probabilities are never stored. Pass 1: the row maximum (block_max);
// pass 2: the sum of exp(logit - max) in double, each thread over v = tid, tid + blockDim, ... in
// order, then block_sum (a fixed tree): the same order on every run. The target logit is read
// before the barriers of pass 2, and pass 3 (the gradient) has every thread read and then write
// only its own elements, so dlogits may alias logits. Forward and backward are ONE kernel (the
// backward with the gradient switched on) with the same block size, so the losses the backward
// writes are bitwise those of cross_entropy_fwd.
// A target outside [-1, V) (ids stay on the device, unchecked): loss NaN and a NaN gradient row;
// nothing is read outside the row.
// loss_sum_fwd: one block, thread i summing rows i, i + blockDim, ... in order in double, then
// block_sum: fixed order. With weights, a target >= V (no weight) adds NaN to both sums.
#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/cross_entropy.h"

namespace wersa::cuda {

namespace {

__device__ inline float exp_of(float x) { return expf(x); }
__device__ inline double exp_of(double x) { return exp(x); }

template <class T>
__global__ void cross_entropy_rows(T* losses, T* dlogits, const T* logits, const int32_t* targets, int64_t V,
                                   double scale, const T* weights) {
  __shared__ double dshared[32];
  __shared__ T tshared[32];
  const int64_t n = blockIdx.x;
  const T* row = logits + n * V;
  T* out = dlogits ? dlogits + n * V : nullptr;
  const int32_t t = targets[n];
  if (t < 0 || t >= V) {  // the same for the whole block: no barrier is skipped by some threads only
    const T fill = t == -1 ? T(0) : T(NAN);
    if (losses && threadIdx.x == 0) losses[n] = fill;
    if (out)
      for (int64_t v = threadIdx.x; v < V; v += blockDim.x) out[v] = fill;
    return;
  }
  T mx = -T(INFINITY);
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) mx = row[v] > mx ? row[v] : mx;
  mx = block_max(mx, tshared);
  const T target_logit = row[t];  // every thread reads it before the barriers of block_sum
  double s = 0;
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) s += double(exp_of(T(row[v] - mx)));
  const double sum = block_sum(s, dshared);  // from here on, rows may be overwritten
  if (losses && threadIdx.x == 0) losses[n] = T(log(sum) + double(mx) - double(target_logit));
  if (!out) return;
  const double sc = weights ? scale * double(weights[t]) : scale;
  const T k = T(sc / sum);
  for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
    T g = exp_of(T(row[v] - mx)) * k;  // row[v] read, then out[v] (maybe the same) written
    if (v == t) g -= T(sc);
    out[v] = g;
  }
}

// Threads per row: a multiple of 32, up to 256 (a function of V only: forward and backward agree).
int row_threads(int64_t V) {
  const int64_t t = (V + 31) / 32 * 32;
  return int(t < 256 ? t : 256);
}

template <class T>
__global__ void loss_sum_kernel(double* out, const T* losses, const int32_t* targets, int64_t N,
                                const T* weights, int64_t V) {
  __shared__ double shared[32];
  double s = 0, c = 0;
  for (int64_t r = threadIdx.x; r < N; r += blockDim.x) {
    const int32_t t = targets[r];
    if (t < 0) continue;
    const double w = !weights ? 1.0 : t < V ? double(weights[t]) : double(NAN);
    s += w * double(losses[r]);
    c += w;
  }
  s = block_sum(s, shared);
  c = block_sum(c, shared);
  if (threadIdx.x == 0) {
    out[0] = s;
    out[1] = c;
  }
}

template <class T>
void run_rows(Ctx& ctx, T* losses, T* dlogits, const Tensor& logits, const Tensor& targets, double scale,
              const Tensor& weights) {
  const int64_t N = logits.dim(0), V = logits.dim(1);
  if (N == 0) return;
  WERSA_LAUNCH(cross_entropy_rows<T>, unsigned(N), row_threads(V), 0, stream(ctx), losses, dlogits,
               logits.ptr<T>(), targets.ptr<int32_t>(), V, scale,
               weights.defined() ? weights.ptr<T>() : static_cast<const T*>(nullptr));
}

}  // namespace

void cross_entropy_fwd(Ctx& ctx, const CrossEntropyFwd& a) {
  by_dtype(a.logits.dtype, "cross_entropy_fwd", [&](auto t) {
    using T = decltype(t);
    run_rows<T>(ctx, a.losses.ptr<T>(), nullptr, a.logits, a.targets, 1.0, Tensor{});
  });
}

void cross_entropy_bwd(Ctx& ctx, const CrossEntropyBwd& a) {
  by_dtype(a.logits.dtype, "cross_entropy_bwd", [&](auto t) {
    using T = decltype(t);
    run_rows<T>(ctx, a.losses.defined() ? a.losses.ptr<T>() : nullptr, a.dlogits.ptr<T>(), a.logits,
                a.targets, a.scale, a.weights);
  });
}

void loss_sum_fwd(Ctx& ctx, const LossSumFwd& a) {
  const int64_t N = a.losses.numel();
  by_dtype(a.losses.dtype, "loss_sum_fwd", [&](auto t) {
    using T = decltype(t);
    const bool w = a.weights.defined();
    WERSA_LAUNCH(loss_sum_kernel<T>, 1, kThreads, 0, stream(ctx), a.out.ptr<double>(), a.losses.ptr<T>(),
                 a.targets.ptr<int32_t>(), N, w ? a.weights.ptr<T>() : static_cast<const T*>(nullptr),
                 w ? a.weights.numel() : int64_t(0));
  });
}

}  // namespace wersa::cuda

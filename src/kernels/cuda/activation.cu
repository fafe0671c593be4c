// CUDA activations y = f(x), dx = dy f'(x) (or dx +=) for exact-erf GELU, ReLU, sigmoid and SiLU
// (formulas and derivatives: include/wersa/ops/activation.h). Elementwise: a grid-stride loop,
// one element per thread and step, each element read and written once; the activation is a
// template parameter (no branch per element). The functions come from the CUDA math library
// (erfc, exp in the tensor's type; act_math.cuh), written as the CPU kernel's scalar forms:
// Phi(x) = erfc(-x / sqrt 2) / 2, sigmoid with exp of a non-positive number only, and in float
// the CPU's underflow cuts. The CPU's float path uses polynomial approximations accurate to a few
// ulp, so f32 results agree to rounding, f64 ones to the libraries' last bits. No reductions.
// y may alias x, dx may alias dy.
#include "act_math.cuh"
#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/activation.h"

namespace wersa::cuda {

namespace {

template <class T, Activation A>
__device__ inline T act_f(T x) {
  if constexpr (A == Activation::Gelu) return x * normal_cdf_t(x);
  if constexpr (A == Activation::Relu) return x > T(0) ? x : T(0);
  if constexpr (A == Activation::Sigmoid) return sigmoid_t(x);
  if constexpr (A == Activation::Silu) return x * sigmoid_t(x);
}

template <class T, Activation A>
__device__ inline T act_df(T x) {
  if constexpr (A == Activation::Gelu) return normal_cdf_t(x) + x * normal_pdf_t(x);
  if constexpr (A == Activation::Relu) return x > T(0) ? T(1) : T(0);
  if constexpr (A == Activation::Sigmoid) {
    const T s = sigmoid_t(x);
    return s * (T(1) - s);
  }
  if constexpr (A == Activation::Silu) {
    const T s = sigmoid_t(x);
    return s * (T(1) + x * (T(1) - s));
  }
}

template <class T, Activation A>
__global__ void act_fwd_kernel(T* y, const T* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    y[i] = act_f<T, A>(x[i]);
}

template <class T, Activation A>
__global__ void act_bwd_kernel(T* dx, const T* dy, const T* x, int64_t n, bool acc) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x) {
    const T d = dy[i] * act_df<T, A>(x[i]);
    dx[i] = acc ? dx[i] + d : d;
  }
}

template <class T, Activation A>
void fwd(Ctx& ctx, const ActivationFwd& a) {
  const int64_t n = a.y.numel();
  if (n == 0) return;
  WERSA_LAUNCH((act_fwd_kernel<T, A>), blocks_for(n), kThreads, 0, stream(ctx), a.y.ptr<T>(), a.x.ptr<T>(),
               n);
}

template <class T, Activation A>
void bwd(Ctx& ctx, const ActivationBwd& a) {
  const int64_t n = a.dx.numel();
  if (n == 0) return;
  WERSA_LAUNCH((act_bwd_kernel<T, A>), blocks_for(n), kThreads, 0, stream(ctx), a.dx.ptr<T>(), a.dy.ptr<T>(),
               a.x.ptr<T>(), n, a.accumulate_dx);
}

}  // namespace

void activation_fwd(Ctx& ctx, const ActivationFwd& a) {
  by_dtype(a.y.dtype, "activation_fwd", [&](auto t) {
    using T = decltype(t);
    switch (a.act) {
      case Activation::Gelu:
        return fwd<T, Activation::Gelu>(ctx, a);
      case Activation::Relu:
        return fwd<T, Activation::Relu>(ctx, a);
      case Activation::Sigmoid:
        return fwd<T, Activation::Sigmoid>(ctx, a);
      case Activation::Silu:
        return fwd<T, Activation::Silu>(ctx, a);
    }
    WERSA_FAIL("activation_fwd: unknown activation ", int(a.act));
  });
}

void activation_bwd(Ctx& ctx, const ActivationBwd& a) {
  by_dtype(a.dx.dtype, "activation_bwd", [&](auto t) {
    using T = decltype(t);
    switch (a.act) {
      case Activation::Gelu:
        return bwd<T, Activation::Gelu>(ctx, a);
      case Activation::Relu:
        return bwd<T, Activation::Relu>(ctx, a);
      case Activation::Sigmoid:
        return bwd<T, Activation::Sigmoid>(ctx, a);
      case Activation::Silu:
        return bwd<T, Activation::Silu>(ctx, a);
    }
    WERSA_FAIL("activation_bwd: unknown activation ", int(a.act));
  });
}

}  // namespace wersa::cuda

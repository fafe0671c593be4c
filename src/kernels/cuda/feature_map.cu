// CUDA random-feature maps (formulas and derivatives: include/wersa/ops/feature_map.h; the CPU
// reference src/kernels/cpu/feature_map.cpp). x: R rows of d (leading dimensions flattened),
// Omega [d, m], phi R rows of m.
//   relu  forward   phi = max(x Omega / sqrt(m), 0)             (NaN gives 0, as on the CPU)
//         backward  dx = (dphi [phi > 0]) Omega^T / sqrt(m)     (overwritten)
//   exp   forward   phi = exp(x Omega / d^(1/4) - shift_r),  shift_r = |x_r|^2 / (2 sqrt(d)) + ln sqrt(m)
//                   (the stabilised FAVOR+ map: y = x / d^(1/4), exponent y Omega - |y|^2 / 2 - ln sqrt(m))
//         backward  g = dphi phi, dx = (g Omega^T) / d^(1/4) - (sum_j g_j) x / sqrt(d)  (overwritten)
// The products go through cuBLAS on the context's handle (as matmul.cu; row-major matrices are
// column-major transposes): forward phi^T [m, R] = alpha Omega'[m, d] x'[d, R], alpha = 1 / sqrt(m)
// (relu) or d^(-1/4) (exp) rounded to T, as the CPU's gemm; backward dx^T [d, r] = scale
// Omega'^T [d, m] g'[m, r] per chunk of rows.
// Elementwise and row kernels around them:
//   relu_rows      phi = phi > 0 ? phi : 0, a thread per element, grid-stride
//   exp_rows       a block per row (rows grid-strided): |x_r|^2 in double by block_sum (each
//                  thread its columns in order, then the fixed tree), shift rounded to T once,
//                  then phi = exp(phi - shift) over the row's m columns
//   relu_grad      g = phi > 0 ? dphi : 0, a thread per element
//   exp_grad       a block per row: g = dphi phi, and coef[r] = T(sum_j double(g_j) / sqrt(d)) by
//                  block_sum
//   exp_correct    dx[r, i] -= coef[r] x[r, i], a thread per element
// Backward by chunks of rows through scratch g [chunk, m] (chunk = 2^20 / m rows at most, so the
// scratch does not grow with T) and coef [chunk] (exp). All sums have a fixed order: bitwise
// reproducible (cuBLAS's GEMMs without atomics, as matmul.cu).
#include <cublas_v2.h>

#include <cmath>

#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/feature_map.h"

namespace wersa::cuda {

namespace {

cublasHandle_t blas(Ctx& ctx) { return static_cast<cublasHandle_t>(ctx.blas()); }

void check_blas(cublasStatus_t s, const char* op) {
  WERSA_CHECK(s == CUBLAS_STATUS_SUCCESS, op, ": cuBLAS: ", cublasGetStatusString(s));
}

// Column-major C[m, n] = alpha op(A) op(B) (beta 0).
void gemm(cublasHandle_t h, bool ta, int64_t m, int64_t n, int64_t k, float alpha, const float* A, int lda,
          const float* B, int ldb, float* C, int ldc, const char* op) {
  const float beta = 0;
  check_blas(cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, int(m), int(n), int(k), &alpha, A,
                         lda, B, ldb, &beta, C, ldc),
             op);
}
void gemm(cublasHandle_t h, bool ta, int64_t m, int64_t n, int64_t k, double alpha, const double* A, int lda,
          const double* B, int ldb, double* C, int ldc, const char* op) {
  const double beta = 0;
  check_blas(cublasDgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, int(m), int(n), int(k), &alpha, A,
                         lda, B, ldb, &beta, C, ldc),
             op);
}

__device__ inline float exp_t(float v) { return expf(v); }
__device__ inline double exp_t(double v) { return exp(v); }

// Threads of a row kernel: a power of two in [32, 256], about 4 columns a thread of the wider of
// the row's two lengths (a function of the shapes only, so block_sum's order is too).
int row_threads(int64_t n) {
  int t = 32;
  while (t < 256 && int64_t(t) * 4 < n) t *= 2;
  return t;
}
unsigned row_grid(int64_t R) { return unsigned(R < (int64_t(1) << 20) ? R : (int64_t(1) << 20)); }

template <class T>
__global__ void relu_rows(T* phi, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const T v = phi[e];
    phi[e] = v > T(0) ? v : T(0);
  }
}

// phi[r, :] = exp(phi[r, :] - T(0.5 |x_r|^2 inv_sqrt_d + log_sqrt_m)).
template <class T>
__global__ void exp_rows(T* phi, const T* x, int64_t R, int64_t d, int64_t m, double inv_sqrt_d,
                         double log_sqrt_m) {
  __shared__ double red[32];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    const T* xr = x + r * d;
    double sq = 0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) sq += double(xr[i]) * double(xr[i]);
    sq = block_sum(sq, red);
    const T shift = T(0.5 * sq * inv_sqrt_d + log_sqrt_m);
    T* p = phi + r * m;
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x) p[j] = exp_t(p[j] - shift);
  }
}

template <class T>
__global__ void relu_grad(T* g, const T* dphi, const T* phi, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x)
    g[e] = phi[e] > T(0) ? dphi[e] : T(0);
}

// g[r, :] = dphi[r, :] phi[r, :]; coef[r] = T(sum_j double(g[r, j]) inv_sqrt_d).
template <class T>
__global__ void exp_grad(T* g, T* coef, const T* dphi, const T* phi, int64_t R, int64_t m,
                         double inv_sqrt_d) {
  __shared__ double red[32];
  for (int64_t r = blockIdx.x; r < R; r += gridDim.x) {
    double sg = 0;
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x) {
      const T v = dphi[r * m + j] * phi[r * m + j];
      g[r * m + j] = v;
      sg += double(v);
    }
    sg = block_sum(sg, red);
    if (threadIdx.x == 0) coef[r] = T(sg * inv_sqrt_d);
  }
}

// dx[r, i] -= coef[r] x[r, i].
template <class T>
__global__ void exp_correct(T* dx, const T* coef, const T* x, int64_t d, int64_t n) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x)
    dx[e] -= coef[e / d] * x[e];
}

constexpr int64_t kChunkElems = int64_t(1) << 20;  // elements of g per chunk of the backward (at most)

}  // namespace

void feature_map_fwd(Ctx& ctx, const FeatureMapFwd& a) {
  const int64_t d = a.omega.dim(0), m = a.omega.dim(1), R = a.x.numel() / d;
  if (R == 0) return;
  const bool is_exp = a.kind == FeatureMapKind::Exp;
  const double alpha = is_exp ? std::pow(double(d), -0.25) : 1.0 / std::sqrt(double(m));
  by_dtype(a.phi.dtype, "feature_map_fwd", [&](auto tag) {
    using T = decltype(tag);
    T* phi = a.phi.ptr<T>();
    gemm(blas(ctx), false, m, R, d, T(alpha), a.omega.ptr<T>(), int(m), a.x.ptr<T>(), int(d), phi, int(m),
         "feature_map_fwd");
    if (!is_exp) {
      WERSA_LAUNCH(relu_rows<T>, blocks_for(R * m), kThreads, 0, stream(ctx), phi, R * m);
      return;
    }
    WERSA_LAUNCH(exp_rows<T>, row_grid(R), row_threads(d > m ? d : m), 0, stream(ctx), phi, a.x.ptr<T>(), R,
                 d, m, 1.0 / std::sqrt(double(d)), 0.5 * std::log(double(m)));
  });
}

void feature_map_bwd(Ctx& ctx, const FeatureMapBwd& a) {
  const int64_t d = a.omega.dim(0), m = a.omega.dim(1), R = a.dx.numel() / d;
  const bool is_exp = a.kind == FeatureMapKind::Exp;
  const int64_t chunk = R == 0 ? 0 : (kChunkElems / m < 1 ? 1 : (kChunkElems / m < R ? kChunkElems / m : R));
  const size_t elem = a.dphi.dtype == DType::F64 ? 8 : 4;
  // g [chunk, m] and coef [chunk] (exp) in dx's dtype, as bytes in doubles.
  const int64_t bytes = int64_t(elem) * (chunk * m + (is_exp ? chunk : 0));
  double* scratch = R > 0 ? ctx.take<double>((bytes + 7) / 8) : nullptr;
  if (ctx.planning() || R == 0) return;
  const double scale = is_exp ? std::pow(double(d), -0.25) : 1.0 / std::sqrt(double(m));
  const double inv_sqrt_d = 1.0 / std::sqrt(double(d));
  by_dtype(a.dphi.dtype, "feature_map_bwd", [&](auto tag) {
    using T = decltype(tag);
    T* g = reinterpret_cast<T*>(scratch);
    T* coef = g + chunk * m;
    for (int64_t r0 = 0; r0 < R; r0 += chunk) {
      const int64_t nr = R - r0 < chunk ? R - r0 : chunk;
      const T* dp = a.dphi.ptr<T>() + r0 * m;
      const T* p = a.phi.ptr<T>() + r0 * m;
      T* out = a.dx.ptr<T>() + r0 * d;
      if (is_exp)
        WERSA_LAUNCH(exp_grad<T>, row_grid(nr), row_threads(m), 0, stream(ctx), g, coef, dp, p, nr, m,
                     inv_sqrt_d);
      else
        WERSA_LAUNCH(relu_grad<T>, blocks_for(nr * m), kThreads, 0, stream(ctx), g, dp, p, nr * m);
      gemm(blas(ctx), true, d, nr, m, T(scale), a.omega.ptr<T>(), int(m), g, int(m), out, int(d),
           "feature_map_bwd");
      if (is_exp)
        WERSA_LAUNCH(exp_correct<T>, blocks_for(nr * d), kThreads, 0, stream(ctx), out, coef,
                     a.x.ptr<T>() + r0 * d, d, nr * d);
    }
  });
}

}  // namespace wersa::cuda

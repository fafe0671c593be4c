// The CUDA simulator's cuBLAS: the subset of the cuBLAS v2 API the engine uses, implemented on the host over
// OpenBLAS (cblas, column-major). In the simulator "device" memory is host heap memory, so the pointers
// handed in are dereferenced directly and every call completes before it returns (the stream set on a
// handle is recorded but otherwise ignored).
//
// Semantics follow cuBLAS: column-major storage, op N/T (C == T for real types), leading dimensions and
// element strides, alpha/beta read through their pointers in either pointer mode, C not read when
// beta == 0, cuBLAS's argument checks and status codes. bf16 inputs are widened exactly to f32, the
// product is an f32 sgemm, and bf16 outputs are rounded to nearest even.
//
// Not modelled: tensor cores and the reduced-precision compute types (TF32 / FAST_16BF inputs are NOT
// rounded; they compute in full f32), cuBLAS's summation order and split-K (results differ from a GPU in
// the last bits), asynchrony and stream ordering, workspace use, and the data types the engine does not
// use (fp16, int8, complex: CUBLAS_STATUS_NOT_SUPPORTED).
#include <cblas.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math_mode = CUBLAS_DEFAULT_MATH;
  cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

namespace {

using Index = std::ptrdiff_t;

bool valid_op(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

CBLAS_TRANSPOSE to_cblas(cublasOperation_t op) { return op == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }

// The argument checks cuBLAS documents for <t>gemm, shared by every entry point.
cublasStatus_t check_gemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                          int n, int k, const void* alpha, int lda, int ldb, const void* beta, const void* C,
                          int ldc, int batch_count) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!valid_op(transa) || !valid_op(transb)) return CUBLAS_STATUS_INVALID_VALUE;
  if (m < 0 || n < 0 || k < 0 || batch_count < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const int rows_a = transa == CUBLAS_OP_N ? m : k;
  const int rows_b = transb == CUBLAS_OP_N ? k : n;
  if (lda < std::max(1, rows_a) || ldb < std::max(1, rows_b) || ldc < std::max(1, m)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (alpha == nullptr || beta == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  if (C == nullptr && m > 0 && n > 0 && batch_count > 0) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

void blas_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float* A,
               int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasColMajor, to_cblas(ta), to_cblas(tb), m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

void blas_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha, const double* A,
               int lda, const double* B, int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasColMajor, to_cblas(ta), to_cblas(tb), m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

// One C = alpha * op(A) op(B) + beta * C with m, n > 0 and checked arguments. C is never read when
// beta == 0 (it is zeroed first, whatever the BLAS kernel then does with it), and A, B are not read when
// k == 0 or alpha == 0.
template <typename T>
void gemm_one(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, T alpha, const T* A, int lda,
              const T* B, int ldb, T beta, T* C, int ldc) {
  const bool no_product = k == 0 || alpha == T(0);
  if (beta == T(0) || (no_product && beta != T(1))) {
    for (int j = 0; j < n; ++j) {
      T* col = C + static_cast<Index>(j) * ldc;
      if (beta == T(0)) {
        std::fill(col, col + m, T(0));
      } else {
        for (int i = 0; i < m; ++i) col[i] *= beta;
      }
    }
  }
  if (no_product) return;
  blas_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta == T(0) ? T(0) : beta, C, ldc);
}

template <typename T>
cublasStatus_t gemm_typed(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                          int k, const T* alpha, const T* A, int lda, long long stride_a, const T* B, int ldb,
                          long long stride_b, const T* beta, T* C, int ldc, long long stride_c,
                          int batch_count) {
  const cublasStatus_t st = check_gemm(handle, ta, tb, m, n, k, alpha, lda, ldb, beta, C, ldc, batch_count);
  if (st != CUBLAS_STATUS_SUCCESS || m == 0 || n == 0) return st;
  const T a = *alpha, b = *beta;  // either pointer mode: "device" memory is host memory here
  for (int i = 0; i < batch_count; ++i) {
    gemm_one<T>(ta, tb, m, n, k, a, A + i * stride_a, lda, B + i * stride_b, ldb, b, C + i * stride_c, ldc);
  }
  return CUBLAS_STATUS_SUCCESS;
}

// The GemmEx type combinations implemented: those cuBLAS supports for real f32 / bf16 / f64 data.
enum class ExKind { kF32, kBf16ToF32, kBf16ToBf16, kF64, kUnsupported };

ExKind classify_ex(cudaDataType a, cudaDataType b, cudaDataType c, cublasComputeType_t compute) {
  if (a != b) return ExKind::kUnsupported;
  switch (compute) {
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
      if (a == CUDA_R_32F && c == CUDA_R_32F) return ExKind::kF32;
      if (a == CUDA_R_16BF && c == CUDA_R_32F) return ExKind::kBf16ToF32;
      if (a == CUDA_R_16BF && c == CUDA_R_16BF) return ExKind::kBf16ToBf16;
      return ExKind::kUnsupported;
    case CUBLAS_COMPUTE_32F_FAST_16F:  // the "fast" f32 modes take f32 data only; computed in full f32 here
    case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32:
    case CUBLAS_COMPUTE_32F_EMULATED_16BFX9:
      return a == CUDA_R_32F && c == CUDA_R_32F ? ExKind::kF32 : ExKind::kUnsupported;
    case CUBLAS_COMPUTE_64F:
    case CUBLAS_COMPUTE_64F_PEDANTIC:
      return a == CUDA_R_64F && c == CUDA_R_64F ? ExKind::kF64 : ExKind::kUnsupported;
    default:
      return ExKind::kUnsupported;
  }
}

// Copies a rows x cols bf16 matrix (leading dimension ld) into a packed f32 one; exact.
void widen(const __nv_bfloat16* src, int rows, int cols, int ld, float* dst) {
  for (int j = 0; j < cols; ++j) {
    const __nv_bfloat16* s = src + static_cast<Index>(j) * ld;
    float* d = dst + static_cast<Index>(j) * rows;
    for (int i = 0; i < rows; ++i) d[i] = __bfloat162float(s[i]);
  }
}

cublasStatus_t gemm_bf16(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                         const __nv_bfloat16* A, int lda, long long stride_a, const __nv_bfloat16* B, int ldb,
                         long long stride_b, float beta, void* C, bool c_bf16, int ldc, long long stride_c,
                         int batch_count) {
  const bool no_product = k == 0 || alpha == 0.0f;
  const int rows_a = ta == CUBLAS_OP_N ? m : k, cols_a = ta == CUBLAS_OP_N ? k : m;
  const int rows_b = tb == CUBLAS_OP_N ? k : n, cols_b = tb == CUBLAS_OP_N ? n : k;
  std::vector<float> a32, b32, c32;
  if (!no_product) {
    a32.resize(static_cast<size_t>(rows_a) * cols_a);
    b32.resize(static_cast<size_t>(rows_b) * cols_b);
  }
  if (c_bf16) c32.resize(static_cast<size_t>(m) * n);
  for (int i = 0; i < batch_count; ++i) {
    if (!no_product) {
      widen(A + i * stride_a, rows_a, cols_a, lda, a32.data());
      widen(B + i * stride_b, rows_b, cols_b, ldb, b32.data());
    }
    if (!c_bf16) {
      gemm_one<float>(ta, tb, m, n, k, alpha, a32.data(), rows_a, b32.data(), rows_b, beta,
                      static_cast<float*>(C) + i * stride_c, ldc);
      continue;
    }
    __nv_bfloat16* c16 = static_cast<__nv_bfloat16*>(C) + i * stride_c;
    if (beta != 0.0f) widen(c16, m, n, ldc, c32.data());
    gemm_one<float>(ta, tb, m, n, k, alpha, a32.data(), rows_a, b32.data(), rows_b, beta, c32.data(), m);
    for (int j = 0; j < n; ++j) {
      const float* s = c32.data() + static_cast<Index>(j) * m;
      __nv_bfloat16* d = c16 + static_cast<Index>(j) * ldc;
      for (int r = 0; r < m; ++r) d[r] = __float2bfloat16(s[r]);  // round to nearest even, NaN stays NaN
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t gemm_ex(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                       const void* alpha, const void* A, cudaDataType a_type, int lda, long long stride_a,
                       const void* B, cudaDataType b_type, int ldb, long long stride_b, const void* beta,
                       void* C, cudaDataType c_type, int ldc, long long stride_c, int batch_count,
                       cublasComputeType_t compute) {
  const cublasStatus_t st = check_gemm(handle, ta, tb, m, n, k, alpha, lda, ldb, beta, C, ldc, batch_count);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  const ExKind kind = classify_ex(a_type, b_type, c_type, compute);
  if (kind == ExKind::kUnsupported) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  switch (kind) {
    case ExKind::kF32:
      return gemm_typed<float>(handle, ta, tb, m, n, k, static_cast<const float*>(alpha),
                               static_cast<const float*>(A), lda, stride_a, static_cast<const float*>(B), ldb,
                               stride_b, static_cast<const float*>(beta), static_cast<float*>(C), ldc,
                               stride_c, batch_count);
    case ExKind::kF64:
      return gemm_typed<double>(handle, ta, tb, m, n, k, static_cast<const double*>(alpha),
                                static_cast<const double*>(A), lda, stride_a, static_cast<const double*>(B),
                                ldb, stride_b, static_cast<const double*>(beta), static_cast<double*>(C), ldc,
                                stride_c, batch_count);
    case ExKind::kBf16ToF32:
    case ExKind::kBf16ToBf16:
      return gemm_bf16(ta, tb, m, n, k, *static_cast<const float*>(alpha),
                       static_cast<const __nv_bfloat16*>(A), lda, stride_a,
                       static_cast<const __nv_bfloat16*>(B), ldb, stride_b, *static_cast<const float*>(beta),
                       C, kind == ExKind::kBf16ToBf16, ldc, stride_c, batch_count);
    case ExKind::kUnsupported:
      break;
  }
  return CUBLAS_STATUS_NOT_SUPPORTED;
}

}  // namespace

extern "C" {

cublasStatus_t CUBLASWINAPI cublasCreate_v2(cublasHandle_t* handle) {
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new (std::nothrow) cublasContext();
  return *handle == nullptr ? CUBLAS_STATUS_ALLOC_FAILED : CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasDestroy_v2(cublasHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasGetVersion_v2(cublasHandle_t handle, int* version) {
  if (version == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;  // cuBLAS's documented status for this
  *version = CUBLAS_VERSION;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasGetProperty(libraryPropertyType type, int* value) {
  if (value == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  switch (type) {
    case MAJOR_VERSION:
      *value = CUBLAS_VER_MAJOR;
      return CUBLAS_STATUS_SUCCESS;
    case MINOR_VERSION:
      *value = CUBLAS_VER_MINOR;
      return CUBLAS_STATUS_SUCCESS;
    case PATCH_LEVEL:
      *value = CUBLAS_VER_PATCH;
      return CUBLAS_STATUS_SUCCESS;
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t CUBLASWINAPI cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace,
                                                  size_t workspaceSizeInBytes) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  // cuBLAS requires 256-byte alignment (what cudaMalloc guarantees); the simulator never uses the buffer.
  if (reinterpret_cast<std::uintptr_t>(workspace) % 256 != 0) return CUBLAS_STATUS_INVALID_VALUE;
  handle->workspace = workspace;
  handle->workspace_bytes = workspace == nullptr ? 0 : workspaceSizeInBytes;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = streamId;
  handle->workspace = nullptr;  // like cuBLAS: setting the stream resets the workspace to the default
  handle->workspace_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasGetStream_v2(cublasHandle_t handle, cudaStream_t* streamId) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (streamId == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *streamId = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t* mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->pointer_mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE)
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math_mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t CUBLASWINAPI cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const unsigned base =
      static_cast<unsigned>(mode) & ~static_cast<unsigned>(CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
  if (base > CUBLAS_FP32_EMULATED_BF16X9_MATH && base != CUBLAS_FP64_EMULATED_FIXEDPOINT_MATH) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  handle->math_mode = mode;  // recorded only: every f32 product is computed in full f32
  return CUBLAS_STATUS_SUCCESS;
}

const char* CUBLASWINAPI cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* CUBLASWINAPI cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED:
      return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED:
      return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH:
      return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR:
      return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED:
      return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR:
      return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR:
      return "an error was detected when checking the current licensing";
  }
  return "unknown cuBLAS status";
}

cublasStatus_t CUBLASWINAPI cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
                                           cublasOperation_t transb, int m, int n, int k, const float* alpha,
                                           const float* A, int lda, const float* B, int ldb,
                                           const float* beta, float* C, int ldc) {
  return gemm_typed<float>(handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

cublasStatus_t CUBLASWINAPI cublasDgemm_v2(cublasHandle_t handle, cublasOperation_t transa,
                                           cublasOperation_t transb, int m, int n, int k, const double* alpha,
                                           const double* A, int lda, const double* B, int ldb,
                                           const double* beta, double* C, int ldc) {
  return gemm_typed<double>(handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

cublasStatus_t CUBLASWINAPI cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                                      cublasOperation_t transb, int m, int n, int k,
                                                      const float* alpha, const float* A, int lda,
                                                      long long int strideA, const float* B, int ldb,
                                                      long long int strideB, const float* beta, float* C,
                                                      int ldc, long long int strideC, int batchCount) {
  return gemm_typed<float>(handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C,
                           ldc, strideC, batchCount);
}

cublasStatus_t CUBLASWINAPI cublasDgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa,
                                                      cublasOperation_t transb, int m, int n, int k,
                                                      const double* alpha, const double* A, int lda,
                                                      long long int strideA, const double* B, int ldb,
                                                      long long int strideB, const double* beta, double* C,
                                                      int ldc, long long int strideC, int batchCount) {
  return gemm_typed<double>(handle, transa, transb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C,
                            ldc, strideC, batchCount);
}

cublasStatus_t CUBLASWINAPI cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                                         cublasOperation_t transb, int m, int n, int k, const void* alpha,
                                         const void* A, cudaDataType Atype, int lda, const void* B,
                                         cudaDataType Btype, int ldb, const void* beta, void* C,
                                         cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                                         cublasGemmAlgo_t algo) {
  return gemm_ex(handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype, ldb, 0, beta, C, Ctype,
                 ldc, 0, 1, computeType);
}

cublasStatus_t CUBLASWINAPI cublasGemmStridedBatchedEx(
    cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
    const void* alpha, const void* A, cudaDataType Atype, int lda, long long int strideA, const void* B,
    cudaDataType Btype, int ldb, long long int strideB, const void* beta, void* C, cudaDataType Ctype,
    int ldc, long long int strideC, int batchCount, cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
  return gemm_ex(handle, transa, transb, m, n, k, alpha, A, Atype, lda, strideA, B, Btype, ldb, strideB, beta,
                 C, Ctype, ldc, strideC, batchCount, computeType);
}

}  // extern "C"

// Tests of the CUDA simulator's cuBLAS (src/backend/sim/cublas.cpp): every entry point against a naive
// triple loop accumulated in long double, on random column-major data with padded leading dimensions and
// gapped batch strides.
//
// Tolerance. With unit roundoff u of the compute type, any summation order (with or without FMA) of
// C = alpha * sum_l a_il b_lj + beta * c_ij has |error| <= gamma_{k+3} * (|alpha| sum_l |a_il||b_lj| +
// |beta||c_ij|), gamma_n = n u / (1 - n u): k products and additions, the alpha scaling, the beta scaling
// and the final addition. One more u is allowed for OpenBLAS's blocked accumulation into C. bf16 inputs
// give exact f32 products, so the same bound holds; a bf16 output adds the rounding to bf16, at most
// 2^-8 of the f32 value.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using bf16 = __nv_bfloat16;

double to_d(float x) { return x; }
double to_d(double x) { return x; }
double to_d(bf16 x) { return __bfloat162float(x); }

template <typename T>
T from_d(double x);
template <>
float from_d<float>(double x) {
  return static_cast<float>(x);
}
template <>
double from_d<double>(double x) {
  return x;
}
template <>
bf16 from_d<bf16>(double x) {
  return __float2bfloat16(static_cast<float>(x));
}

template <typename T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

constexpr double kU32 = 1.0 / (1 << 24);           // f32 unit roundoff
constexpr double kU64 = 1.0 / 9007199254740992.0;  // f64 unit roundoff, 2^-53
constexpr double kUBf16 = 1.0 / 256;               // bf16 unit roundoff, 2^-8
const double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Case {
  cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
  int m = 1, n = 1, k = 1;
  int pad_a = 0, pad_b = 0, pad_c = 0;  // leading dimension beyond the rows stored
  double alpha = 1, beta = 0;
  int batch = 1;
  long long gap_a = 0, gap_b = 0, gap_c = 0;  // batch stride beyond the matrix
  bool broadcast_b = false;                   // strideB = 0
  bool nan_c = false;                         // C's m x n entries start as NaN / Inf
  bool small_ints = false;                    // integer data: the product is exact
};

std::string describe(const Case& c) {
  return "ta=" + std::to_string(c.ta) + " tb=" + std::to_string(c.tb) + " m=" + std::to_string(c.m) +
         " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) + " alpha=" + std::to_string(c.alpha) +
         " beta=" + std::to_string(c.beta) + " batch=" + std::to_string(c.batch);
}

// A stored matrix batch: `rows` x `cols` with leading dimension ld, `batch` copies `stride` apart.
struct Layout {
  int rows, cols, ld;
  long long stride;
  int batch;
  size_t size() const {
    return static_cast<size_t>(stride == 0 ? static_cast<long long>(ld) * cols : stride * batch);
  }
  bool inside(size_t p) const {  // part of some matrix (not padding or a gap between matrices)
    const long long b = stride == 0 ? 0 : static_cast<long long>(p) / stride;
    const long long off = static_cast<long long>(p) - b * stride;
    return b < batch && off / ld < cols && off % ld < rows;
  }
};

Layout layout(int rows, int cols, int pad, long long gap, int batch, bool broadcast) {
  const int ld = std::max(1, rows) + pad;
  return {rows, cols, ld, broadcast ? 0 : static_cast<long long>(ld) * cols + gap, batch};
}

// Calls one entry point: (ta, tb, m, n, k, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC,
// batch) -> status, alpha and beta as doubles.
template <typename TA, typename TC, typename Call>
void run_case(const Case& c, double u, double u_out, Call&& call) {
  SCOPED_TRACE(describe(c));
  std::mt19937 rng(1234u + c.m * 7u + c.n * 13u + c.k * 17u + c.ta * 3u + c.tb * 5u);
  std::uniform_real_distribution<double> uni(-1.0, 1.0);
  std::uniform_int_distribution<int> ints(-4, 4);
  auto value = [&] { return c.small_ints ? static_cast<double>(ints(rng)) : uni(rng); };

  const bool na = c.ta == CUBLAS_OP_N, nb = c.tb == CUBLAS_OP_N;
  const Layout la = layout(na ? c.m : c.k, na ? c.k : c.m, c.pad_a, c.gap_a, c.batch, false);
  const Layout lb = layout(nb ? c.k : c.n, nb ? c.n : c.k, c.pad_b, c.gap_b, c.batch, c.broadcast_b);
  const Layout lc = layout(c.m, c.n, c.pad_c, c.gap_c, c.batch, false);

  // Padding and gaps of A and B hold NaN: reading them would poison the result.
  std::vector<TA> a(la.size()), b(lb.size());
  for (size_t p = 0; p < a.size(); ++p) a[p] = from_d<TA>(la.inside(p) ? value() : kNaN);
  for (size_t p = 0; p < b.size(); ++p) b[p] = from_d<TA>(lb.inside(p) ? value() : kNaN);
  // C's padding and gaps hold a sentinel that must survive bit for bit.
  std::vector<TC> cm(lc.size());
  for (size_t p = 0; p < cm.size(); ++p) {
    if (!lc.inside(p)) {
      cm[p] = from_d<TC>(-12345.0);
    } else if (c.nan_c) {
      cm[p] = from_d<TC>(p % 3 == 0 ? std::numeric_limits<double>::infinity() : kNaN);
    } else {
      cm[p] = from_d<TC>(value());
    }
  }
  const std::vector<TC> c0 = cm;

  ASSERT_EQ(call(c.ta, c.tb, c.m, c.n, c.k, c.alpha, a.data(), la.ld, la.stride, b.data(), lb.ld, lb.stride,
                 c.beta, cm.data(), lc.ld, lc.stride, c.batch),
            CUBLAS_STATUS_SUCCESS);

  const double gamma = (c.k + 4) * u / (1 - (c.k + 4) * u);
  int failures = 0;
  for (int bi = 0; bi < c.batch; ++bi) {
    const TA* ab = a.data() + bi * la.stride;
    const TA* bb = b.data() + bi * lb.stride;
    for (int j = 0; j < c.n; ++j) {
      for (int i = 0; i < c.m; ++i) {
        long double sum = 0, mag = 0;
        for (int l = 0; l < c.k; ++l) {
          const double x =
              to_d(na ? ab[i + static_cast<size_t>(l) * la.ld] : ab[l + static_cast<size_t>(i) * la.ld]);
          const double y =
              to_d(nb ? bb[l + static_cast<size_t>(j) * lb.ld] : bb[j + static_cast<size_t>(l) * lb.ld]);
          sum += static_cast<long double>(x) * y;
          mag += std::fabs(static_cast<long double>(x) * y);
        }
        const size_t pc = bi * lc.stride + i + static_cast<size_t>(j) * lc.ld;
        const double cin = c.beta == 0 ? 0.0 : to_d(c0[pc]);
        const double ref = static_cast<double>(c.alpha * sum + c.beta * static_cast<long double>(cin));
        const double scale = static_cast<double>(std::fabs(c.alpha) * mag) + std::fabs(c.beta * cin);
        double tol = gamma * scale;
        tol += u_out * (std::fabs(ref) + tol);
        const double got = to_d(cm[pc]);
        const bool ok = std::isfinite(got) && (c.small_ints ? got == ref : std::fabs(got - ref) <= tol);
        if (!ok && ++failures <= 5) {
          ADD_FAILURE() << "batch " << bi << " C(" << i << "," << j << ") = " << got << ", expected " << ref
                        << " within " << tol;
        }
      }
    }
  }
  for (size_t p = 0; p < cm.size(); ++p) {
    if (!lc.inside(p) && !same_bits(cm[p], c0[p]) && ++failures <= 10) {
      ADD_FAILURE() << "C padding/gap entry " << p << " was written";
    }
  }
}

const cublasOperation_t kOps[] = {CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_OP_C};

struct Shape {
  int m, n, k;
};
const Shape kShapes[] = {{37, 23, 19}, {1, 1, 1}, {5, 64, 3}, {64, 2, 40}};

struct Scalars {
  double alpha, beta;
};
const Scalars kScalars[] = {{1.0, 0.0}, {0.75, -0.5}, {-1.25, 1.0}};

// Every op pair x shape x (alpha, beta), with padded leading dimensions; `batched` adds batch 3 with gaps
// and, for one variant, a broadcast B.
template <typename TA, typename TC, typename Call>
void sweep(double u, double u_out, bool batched, Call call) {
  for (cublasOperation_t ta : kOps) {
    for (cublasOperation_t tb : kOps) {
      for (const Shape& s : kShapes) {
        for (const Scalars& sc : kScalars) {
          Case c;
          c.ta = ta, c.tb = tb, c.m = s.m, c.n = s.n, c.k = s.k;
          c.pad_a = 3, c.pad_b = 1, c.pad_c = 2;
          c.alpha = sc.alpha, c.beta = sc.beta;
          if (batched) c.batch = 3, c.gap_a = 5, c.gap_b = 7, c.gap_c = 11;
          run_case<TA, TC>(c, u, u_out, call);
          if (batched && sc.beta == 1.0) {
            c.broadcast_b = true;
            run_case<TA, TC>(c, u, u_out, call);
          }
        }
      }
    }
  }
  // beta == 0 must not read C: NaN / Inf already there is overwritten by the exact product.
  for (cublasOperation_t ta : kOps) {
    Case c;
    c.ta = ta, c.tb = CUBLAS_OP_T, c.m = 37, c.n = 23, c.k = 19, c.pad_c = 4, c.alpha = 2.0, c.beta = 0.0;
    c.nan_c = true, c.small_ints = true;
    if (batched) c.batch = 3, c.gap_c = 9;
    run_case<TA, TC>(c, u, u_out, call);
  }
}

class SimCublas : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(cublasCreate(&handle_), CUBLAS_STATUS_SUCCESS); }
  void TearDown() override { EXPECT_EQ(cublasDestroy(handle_), CUBLAS_STATUS_SUCCESS); }
  cublasHandle_t handle_ = nullptr;
};

// Entry points in the call shape run_case expects.
auto sgemm(cublasHandle_t h) {
  return [h](cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha, const float* A,
             int lda, long long, const float* B, int ldb, long long, double beta, float* C, int ldc,
             long long, int) {
    const float al = static_cast<float>(alpha), be = static_cast<float>(beta);
    return cublasSgemm(h, ta, tb, m, n, k, &al, A, lda, B, ldb, &be, C, ldc);
  };
}
auto dgemm(cublasHandle_t h) {
  return
      [h](cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha, const double* A,
          int lda, long long, const double* B, int ldb, long long, double beta, double* C, int ldc, long long,
          int) { return cublasDgemm(h, ta, tb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc); };
}
auto sgemm_sb(cublasHandle_t h) {
  return [h](cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha, const float* A,
             int lda, long long sa, const float* B, int ldb, long long sb, double beta, float* C, int ldc,
             long long sc, int batch) {
    const float al = static_cast<float>(alpha), be = static_cast<float>(beta);
    return cublasSgemmStridedBatched(h, ta, tb, m, n, k, &al, A, lda, sa, B, ldb, sb, &be, C, ldc, sc, batch);
  };
}
auto dgemm_sb(cublasHandle_t h) {
  return [h](cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha, const double* A,
             int lda, long long sa, const double* B, int ldb, long long sb, double beta, double* C, int ldc,
             long long sc, int batch) {
    return cublasDgemmStridedBatched(h, ta, tb, m, n, k, &alpha, A, lda, sa, B, ldb, sb, &beta, C, ldc, sc,
                                     batch);
  };
}
// GemmEx / GemmStridedBatchedEx with the given types; alpha and beta are f32 unless the compute is 64F.
template <typename TA, typename TC>
auto gemm_ex(cublasHandle_t h, cudaDataType ab_type, cudaDataType c_type, cublasComputeType_t compute,
             bool batched) {
  return [=](cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, double alpha, const TA* A,
             int lda, long long sa, const TA* B, int ldb, long long sb, double beta, TC* C, int ldc,
             long long sc, int batch) {
    const float af = static_cast<float>(alpha), bf = static_cast<float>(beta);
    const bool f64 = compute == CUBLAS_COMPUTE_64F || compute == CUBLAS_COMPUTE_64F_PEDANTIC;
    const void* al = f64 ? static_cast<const void*>(&alpha) : &af;
    const void* be = f64 ? static_cast<const void*>(&beta) : &bf;
    if (!batched) {
      return cublasGemmEx(h, ta, tb, m, n, k, al, A, ab_type, lda, B, ab_type, ldb, be, C, c_type, ldc,
                          compute, CUBLAS_GEMM_DEFAULT);
    }
    return cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, al, A, ab_type, lda, sa, B, ab_type, ldb, sb, be, C,
                                      c_type, ldc, sc, batch, compute, CUBLAS_GEMM_DEFAULT_TENSOR_OP);
  };
}

TEST_F(SimCublas, HandleState) {
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(0x1);
  EXPECT_EQ(cublasGetStream(handle_, &stream), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(stream, nullptr);
  EXPECT_EQ(cublasSetStream(handle_, reinterpret_cast<cudaStream_t>(0x40)), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasGetStream(handle_, &stream), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(stream, reinterpret_cast<cudaStream_t>(0x40));

  cublasPointerMode_t pm = CUBLAS_POINTER_MODE_DEVICE;
  EXPECT_EQ(cublasGetPointerMode(handle_, &pm), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(pm, CUBLAS_POINTER_MODE_HOST);
  EXPECT_EQ(cublasSetPointerMode(handle_, CUBLAS_POINTER_MODE_DEVICE), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasGetPointerMode(handle_, &pm), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(pm, CUBLAS_POINTER_MODE_DEVICE);

  cublasMath_t mm = CUBLAS_TF32_TENSOR_OP_MATH;
  EXPECT_EQ(cublasGetMathMode(handle_, &mm), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(mm, CUBLAS_DEFAULT_MATH);
  EXPECT_EQ(cublasSetMathMode(handle_, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasGetMathMode(handle_, &mm), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(mm, CUBLAS_TF32_TENSOR_OP_MATH);
  const auto pedantic_strict =
      static_cast<cublasMath_t>(CUBLAS_PEDANTIC_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
  EXPECT_EQ(cublasSetMathMode(handle_, pedantic_strict), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasSetMathMode(handle_, static_cast<cublasMath_t>(5)), CUBLAS_STATUS_INVALID_VALUE);

  void* ws = std::aligned_alloc(256, 1 << 12);
  EXPECT_EQ(cublasSetWorkspace(handle_, ws, 1 << 12), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasSetWorkspace(handle_, static_cast<char*>(ws) + 16, 256), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasSetWorkspace(handle_, nullptr, 0), CUBLAS_STATUS_SUCCESS);
  std::free(ws);

  int version = 0;
  EXPECT_EQ(cublasGetVersion(handle_, &version), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(version, CUBLAS_VERSION);
  EXPECT_EQ(version / 10000, 13);
  int major = 0;
  EXPECT_EQ(cublasGetProperty(MAJOR_VERSION, &major), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(major, CUBLAS_VER_MAJOR);

  EXPECT_STREQ(cublasGetStatusName(CUBLAS_STATUS_SUCCESS), "CUBLAS_STATUS_SUCCESS");
  EXPECT_STREQ(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE");
  EXPECT_STREQ(cublasGetStatusName(CUBLAS_STATUS_NOT_SUPPORTED), "CUBLAS_STATUS_NOT_SUPPORTED");
  EXPECT_GT(std::strlen(cublasGetStatusString(CUBLAS_STATUS_NOT_INITIALIZED)), 0u);
  EXPECT_NE(cublasGetStatusName(static_cast<cublasStatus_t>(2)), nullptr);
  EXPECT_NE(cublasGetStatusString(static_cast<cublasStatus_t>(2)), nullptr);
}

TEST(SimCublasHandle, NullHandleIsNotInitialized) {
  const cublasHandle_t h = nullptr;
  cudaStream_t s;
  cublasPointerMode_t pm;
  cublasMath_t mm;
  float f = 1, fc = 0;
  double d = 1, dc = 0;
  const cublasStatus_t kNI = CUBLAS_STATUS_NOT_INITIALIZED;
  EXPECT_EQ(cublasCreate(nullptr), CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasDestroy(h), kNI);
  EXPECT_EQ(cublasSetStream(h, nullptr), kNI);
  EXPECT_EQ(cublasGetStream(h, &s), kNI);
  EXPECT_EQ(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST), kNI);
  EXPECT_EQ(cublasGetPointerMode(h, &pm), kNI);
  EXPECT_EQ(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), kNI);
  EXPECT_EQ(cublasGetMathMode(h, &mm), kNI);
  EXPECT_EQ(cublasSetWorkspace(h, nullptr, 0), kNI);
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &f, &f, 1, &f, 1, &f, &fc, 1), kNI);
  EXPECT_EQ(cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &d, &d, 1, &d, 1, &d, &dc, 1), kNI);
  EXPECT_EQ(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &f, &f, 1, 1, &f, 1, 1, &f, &fc,
                                      1, 1, 1),
            kNI);
  EXPECT_EQ(cublasDgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &d, &d, 1, 1, &d, 1, 1, &d, &dc,
                                      1, 1, 1),
            kNI);
  EXPECT_EQ(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &f, &f, CUDA_R_32F, 1, &f, CUDA_R_32F, 1, &f,
                         &fc, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            kNI);
  EXPECT_EQ(cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &f, &f, CUDA_R_32F, 1, 1, &f,
                                       CUDA_R_32F, 1, 1, &f, &fc, CUDA_R_32F, 1, 1, 1, CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT),
            kNI);
  EXPECT_EQ(fc, 0.0f);
  EXPECT_EQ(dc, 0.0);
}

TEST_F(SimCublas, Sgemm) { sweep<float, float>(kU32, 0, false, sgemm(handle_)); }
TEST_F(SimCublas, Dgemm) { sweep<double, double>(kU64, 0, false, dgemm(handle_)); }
TEST_F(SimCublas, SgemmStridedBatched) { sweep<float, float>(kU32, 0, true, sgemm_sb(handle_)); }
TEST_F(SimCublas, DgemmStridedBatched) { sweep<double, double>(kU64, 0, true, dgemm_sb(handle_)); }

TEST_F(SimCublas, GemmExF32) {
  for (cublasComputeType_t ct : {CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_PEDANTIC,
                                 CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_COMPUTE_32F_FAST_16BF}) {
    sweep<float, float>(kU32, 0, false, gemm_ex<float, float>(handle_, CUDA_R_32F, CUDA_R_32F, ct, false));
  }
}
TEST_F(SimCublas, GemmExBf16ToF32) {
  sweep<bf16, float>(kU32, 0, false,
                     gemm_ex<bf16, float>(handle_, CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F, false));
}
TEST_F(SimCublas, GemmExBf16ToBf16) {
  sweep<bf16, bf16>(kU32, kUBf16, false,
                    gemm_ex<bf16, bf16>(handle_, CUDA_R_16BF, CUDA_R_16BF, CUBLAS_COMPUTE_32F, false));
}
TEST_F(SimCublas, GemmExF64) {
  sweep<double, double>(kU64, 0, false,
                        gemm_ex<double, double>(handle_, CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_64F, false));
}
TEST_F(SimCublas, GemmStridedBatchedEx) {
  sweep<float, float>(kU32, 0, true,
                      gemm_ex<float, float>(handle_, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F, true));
  sweep<bf16, float>(kU32, 0, true,
                     gemm_ex<bf16, float>(handle_, CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F, true));
  sweep<bf16, bf16>(kU32, kUBf16, true,
                    gemm_ex<bf16, bf16>(handle_, CUDA_R_16BF, CUDA_R_16BF, CUBLAS_COMPUTE_32F, true));
  sweep<double, double>(kU64, 0, true,
                        gemm_ex<double, double>(handle_, CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_64F, true));
}

// bf16 output rounding is to nearest even, and NaN stays NaN.
TEST_F(SimCublas, Bf16OutputRounding) {
  const float one = 1.0f, zero = 0.0f;
  const bf16 a1 = __float2bfloat16(1.0f);
  // 1 x 1 x 3 products whose f32 sums are exact and lie on or next to a bf16 tie (bf16 ulp at 1 is 2^-7).
  const float terms[3][3] = {{1.0f, 1.0f / 256, 0.0f},           // 1 + 2^-8: tie, to even 1
                             {1.0f, 3.0f / 256, 0.0f},           // 1 + 3 * 2^-8: tie, to even 1 + 2^-6
                             {1.0f, 1.0f / 256, 1.0f / 65536}};  // just above the tie: up to 1 + 2^-7
  const float expect[3] = {1.0f, 1.0f + 4.0f / 256, 1.0f + 2.0f / 256};
  for (int i = 0; i < 3; ++i) {
    bf16 a[3], b[3] = {a1, a1, a1};
    for (int l = 0; l < 3; ++l) a[l] = __float2bfloat16(terms[i][l]);
    bf16 c = __float2bfloat16(-3.0f);
    ASSERT_EQ(
        cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 3, &one, a, CUDA_R_16BF, 1, b, CUDA_R_16BF, 3,
                     &zero, &c, CUDA_R_16BF, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(__bfloat162float(c), expect[i]) << i;
  }
  const bf16 nan = __float2bfloat16(std::numeric_limits<float>::quiet_NaN());
  bf16 c = a1;
  ASSERT_EQ(cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, &nan, CUDA_R_16BF, 1, &a1,
                         CUDA_R_16BF, 1, &zero, &c, CUDA_R_16BF, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_TRUE(std::isnan(__bfloat162float(c)));
}

// alpha and beta read through "device" pointers (heap memory in the simulator).
TEST_F(SimCublas, DevicePointerMode) {
  ASSERT_EQ(cublasSetPointerMode(handle_, CUBLAS_POINTER_MODE_DEVICE), CUBLAS_STATUS_SUCCESS);
  std::vector<float> scalars = {2.0f, 3.0f};
  const float a[2] = {1, 2}, b[2] = {3, 4};
  float c[1] = {10};
  ASSERT_EQ(
      cublasSgemm(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 2, &scalars[0], a, 1, b, 2, &scalars[1], c, 1),
      CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(c[0], 2.0f * 11.0f + 3.0f * 10.0f);
}

// k == 0: C = beta * C (beta == 0 writes zeros over NaN); m == 0, n == 0 or batchCount == 0: nothing.
TEST_F(SimCublas, DegenerateSizes) {
  const float one = 1.0f, zero = 0.0f, two = 2.0f;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float a[4] = {nan, nan, nan, nan};
  std::vector<float> c = {nan, std::numeric_limits<float>::infinity(), -7.0f, nan, nan, nan};  // 2 x 2, ldc 3
  EXPECT_EQ(cublasSgemm(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 0, &one, a, 2, a, 1, &zero, c.data(), 3),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(c[0], 0.0f);
  EXPECT_EQ(c[1], 0.0f);
  EXPECT_EQ(c[2], -7.0f);  // padding
  EXPECT_EQ(c[3], 0.0f);
  EXPECT_EQ(c[4], 0.0f);
  c = {1, 2, -7, 3, 4, -7};
  EXPECT_EQ(cublasSgemm(handle_, CUBLAS_OP_T, CUBLAS_OP_N, 2, 2, 0, &one, a, 1, a, 1, &two, c.data(), 3),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(c, (std::vector<float>{2, 4, -7, 6, 8, -7}));
  // alpha == 0: A and B are not read.
  EXPECT_EQ(cublasSgemm(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &zero, a, 2, a, 2, &two, c.data(), 3),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(c, (std::vector<float>{4, 8, -7, 12, 16, -7}));

  const std::vector<float> before = c;
  EXPECT_EQ(cublasSgemm(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 0, 2, 2, &one, a, 1, a, 2, &zero, c.data(), 1),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasSgemm(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 2, 0, 2, &one, a, 2, a, 2, &zero, c.data(), 3),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasSgemmStridedBatched(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, a, 2, 4, a, 2, 4,
                                      &zero, c.data(), 3, 6, 0),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(cublasGemmStridedBatchedEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, a, CUDA_R_32F, 2, 4,
                                       a, CUDA_R_32F, 2, 4, &zero, c.data(), CUDA_R_32F, 3, 6, 0,
                                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(c, before);

  // bf16 output with k == 0 and beta != 0 scales C in f32 and rounds back.
  bf16 cb[2] = {__float2bfloat16(1.5f), __float2bfloat16(-3.0f)};
  const bf16 ab[1] = {__float2bfloat16(nan)};
  EXPECT_EQ(cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 2, 1, 0, &one, ab, CUDA_R_16BF, 2, ab,
                         CUDA_R_16BF, 1, &two, cb, CUDA_R_16BF, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(__bfloat162float(cb[0]), 3.0f);
  EXPECT_EQ(__bfloat162float(cb[1]), -6.0f);
}

TEST_F(SimCublas, InvalidArguments) {
  const float one = 1.0f;
  std::vector<float> a(64, 1.0f), b(64, 1.0f), c(64, 5.0f);
  const std::vector<float> c0 = c;
  auto s = [&](cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb, int ldc,
               const float* alpha = nullptr, const float* beta = nullptr, bool defaults = true) {
    if (defaults) alpha = &one, beta = &one;
    return cublasSgemm(handle_, ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  };
  const cublasOperation_t N = CUBLAS_OP_N, T = CUBLAS_OP_T;
  const cublasStatus_t kIV = CUBLAS_STATUS_INVALID_VALUE;
  EXPECT_EQ(s(N, N, 4, 4, 4, 4, 4, 4), CUBLAS_STATUS_SUCCESS);
  c = c0;
  EXPECT_EQ(s(N, N, -1, 4, 4, 4, 4, 4), kIV);
  EXPECT_EQ(s(N, N, 4, -1, 4, 4, 4, 4), kIV);
  EXPECT_EQ(s(N, N, 4, 4, -1, 4, 4, 4), kIV);
  EXPECT_EQ(s(N, N, 4, 4, 3, 3, 3, 4), kIV);                    // lda < m (A is m x k)
  EXPECT_EQ(s(T, N, 4, 4, 3, 2, 3, 4), kIV);                    // lda < k (A is k x m)
  EXPECT_EQ(s(T, N, 4, 4, 3, 3, 3, 4), CUBLAS_STATUS_SUCCESS);  // lda == k is enough for op T
  c = c0;
  EXPECT_EQ(s(N, N, 4, 4, 3, 4, 2, 4), kIV);  // ldb < k
  EXPECT_EQ(s(N, T, 4, 4, 3, 4, 3, 4), kIV);  // ldb < n (B is n x k)
  EXPECT_EQ(s(N, N, 4, 4, 4, 4, 4, 3), kIV);  // ldc < m
  EXPECT_EQ(s(N, N, 0, 4, 4, 0, 4, 0), kIV);  // leading dimensions must be >= 1 even when m == 0
  EXPECT_EQ(s(static_cast<cublasOperation_t>(CUBLAS_OP_CONJG), N, 4, 4, 4, 4, 4, 4), kIV);
  EXPECT_EQ(s(N, N, 4, 4, 4, 4, 4, 4, nullptr, &one, false), kIV);
  EXPECT_EQ(s(N, N, 4, 4, 4, 4, 4, 4, &one, nullptr, false), kIV);
  EXPECT_EQ(cublasSgemmStridedBatched(handle_, N, N, 4, 4, 4, &one, a.data(), 4, 16, b.data(), 4, 16, &one,
                                      c.data(), 4, 16, -1),
            kIV);
  EXPECT_EQ(cublasGemmStridedBatchedEx(handle_, N, N, 4, 4, 4, &one, a.data(), CUDA_R_32F, 4, 16, b.data(),
                                       CUDA_R_32F, 4, 16, &one, c.data(), CUDA_R_32F, 4, 16, -1,
                                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            kIV);
  EXPECT_EQ(cublasGemmEx(handle_, N, N, 4, 4, 4, &one, a.data(), CUDA_R_32F, 3, b.data(), CUDA_R_32F, 4, &one,
                         c.data(), CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            kIV);
  const double d1 = 1.0;
  std::vector<double> dd(16, 1.0);
  EXPECT_EQ(cublasDgemm(handle_, N, N, 4, 4, 4, &d1, dd.data(), 4, dd.data(), 4, &d1, dd.data(), -4), kIV);
  EXPECT_EQ(c, c0);  // nothing written by a rejected call
}

TEST_F(SimCublas, UnsupportedTypes) {
  const float one = 1.0f;
  std::vector<float> buf(64, 1.0f), c(64, 5.0f);
  const std::vector<float> c0 = c;
  auto ex = [&](cudaDataType at, cudaDataType bt, cudaDataType ct, cublasComputeType_t comp) {
    return cublasGemmEx(handle_, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, buf.data(), at, 4, buf.data(), bt,
                        4, &one, c.data(), ct, 4, comp, CUBLAS_GEMM_DEFAULT);
  };
  const cublasStatus_t kNS = CUBLAS_STATUS_NOT_SUPPORTED;
  EXPECT_EQ(ex(CUDA_R_32F, CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F), kNS);  // A and B types differ
  EXPECT_EQ(ex(CUDA_R_32F, CUDA_R_32F, CUDA_R_16BF, CUBLAS_COMPUTE_32F), kNS);  // f32 in, bf16 out
  EXPECT_EQ(ex(CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, CUBLAS_COMPUTE_64F), kNS);
  EXPECT_EQ(ex(CUDA_R_16BF, CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32), kNS);  // fast: f32 only
  EXPECT_EQ(ex(CUDA_R_32F, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_64F), kNS);
  EXPECT_EQ(ex(CUDA_R_64F, CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_32F), kNS);
  EXPECT_EQ(ex(CUDA_R_16F, CUDA_R_16F, CUDA_R_16F, CUBLAS_COMPUTE_16F), kNS);  // fp16: not simulated
  EXPECT_EQ(ex(CUDA_R_8I, CUDA_R_8I, CUDA_R_32I, CUBLAS_COMPUTE_32I), kNS);
  EXPECT_EQ(c, c0);
}

// Several host threads, each with its own handle, at once.
TEST(SimCublasThreads, HandlesPerThread) {
  constexpr int kThreads = 4, kN = 48;
  std::vector<int> bad(kThreads, -1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &bad] {
      cublasHandle_t h = nullptr;
      if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return;
      std::vector<float> a(kN * kN), b(kN * kN), c(kN * kN, 0.0f);
      for (int i = 0; i < kN * kN; ++i)
        a[i] = static_cast<float>((i + t) % 5 - 2), b[i] = static_cast<float>(i % 3);
      const float one = 1.0f, zero = 0.0f;
      int errors = 0;
      for (int rep = 0; rep < 20; ++rep) {
        errors += cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, kN, kN, kN, &one, a.data(), kN, b.data(), kN,
                              &zero, c.data(), kN) != CUBLAS_STATUS_SUCCESS;
        for (int j = 0; j < kN; ++j) {
          for (int i = 0; i < kN; ++i) {
            double ref = 0;
            for (int l = 0; l < kN; ++l) ref += static_cast<double>(a[i + l * kN]) * b[l + j * kN];
            errors += c[i + j * kN] != ref;
          }
        }
      }
      cublasDestroy(h);
      bad[t] = errors;
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
}

}  // namespace

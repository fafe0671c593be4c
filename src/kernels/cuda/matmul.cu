// CUDA linear layer (include/wersa/ops/matmul.h): y[N, O] = x[N, I] w[O, I]^T (+ b), backward
// dx = dy w (overwritten or accumulated), dw += dy^T x, db += sum_n dy.
// The products go through cuBLAS on the context's handle (bound to its stream): row-major
// matrices are column-major transposes, so y^T = w^T' x^T' is gemm(T, N, O, N, I) and so on; f32
// with cublasSgemm (fp32 compute: the handle keeps the default math mode, no TF32), f64 with
// cublasDgemm. The bias is folded as on the CPU: without accumulate_y, a kernel first writes b to
// every row of y and the GEMM adds its product (beta = 1); with accumulate_y, the GEMM adds to y and
// then one pass adds b to every row.
// db: a deterministic two-pass column sum: pass 1, a grid of (column block, row chunk) where each
// thread sums its column over the chunk's rows in order, in double, into planned scratch; pass 2,
// each thread sums its column's chunk partials in chunk order and adds the result to db. The row
// chunks depend only on N and O: bitwise the same on every run, no atomics.
// bf16 weights (matmul_fwd_bf16w): one row (decode) is a GEMV reading the bf16 bits directly (one
// warp per output, lanes strided over I, then a fixed shuffle tree); more rows widen tiles of w
// exactly (bits << 16 as a float) into planned scratch and run the f32/f64 GEMM on each tile.
// Mixed precision (matmul_fwd_mixed, matmul_bwd_mixed; train.precision bf16): the activation
// operands (x, dy) are rounded to bf16 into planned scratch (all rows of the call), then
// cublasGemmEx multiplies them with the bf16 shadow weights (CUDA_R_16BF operands, f32 output,
// CUBLAS_COMPUTE_32F); db sums the unrounded dy as matmul_bwd does.
#include <cublas_v2.h>

#include <algorithm>

#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/matmul.h"

namespace wersa::cuda {

namespace {

cublasHandle_t blas(Ctx& ctx) { return static_cast<cublasHandle_t>(ctx.blas()); }

void check_blas(cublasStatus_t s, const char* op) {
  WERSA_CHECK(s == CUBLAS_STATUS_SUCCESS, op, ": cuBLAS: ", cublasGetStatusString(s));
}

int ld(int64_t n) { return n > 1 ? int(n) : 1; }

// Column-major C[m, n] = alpha op(A) op(B) + beta C.
void gemm(cublasHandle_t h, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc, const char* op) {
  if (m == 0 || n == 0) return;
  const float alpha = 1;
  check_blas(cublasSgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, int(m), int(n),
                         int(k), &alpha, A, lda, B, ldb, &beta, C, ldc),
             op);
}
void gemm(cublasHandle_t h, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const double* A, int lda,
          const double* B, int ldb, double beta, double* C, int ldc, const char* op) {
  if (m == 0 || n == 0) return;
  const double alpha = 1;
  check_blas(cublasDgemm(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, int(m), int(n),
                         int(k), &alpha, A, lda, B, ldb, &beta, C, ldc),
             op);
}

// Column-major C[m, n] (f32) = op(A) op(B) + beta C with bf16 A and B, f32 compute.
void gemm_bf16(cublasHandle_t h, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const uint16_t* A,
               int lda, const uint16_t* B, int ldb, float beta, float* C, int ldc, const char* op) {
  if (m == 0 || n == 0) return;
  const float alpha = 1;
  check_blas(cublasGemmEx(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, int(m), int(n),
                          int(k), &alpha, A, CUDA_R_16BF, lda, B, CUDA_R_16BF, ldb, &beta, C, CUDA_R_32F, ldc,
                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
             op);
}

// y[n, o] = b[o] (add: y[n, o] += b[o]) for every row n.
template <class T>
__global__ void bias_rows(T* y, const T* b, int64_t N, int64_t O, bool add) {
  const int64_t total = N * O;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(blockDim.x) * gridDim.x) {
    const T v = b[i % O];
    y[i] = add ? y[i] + v : v;
  }
}

template <class T>
void add_bias(Ctx& ctx, T* y, const T* b, int64_t N, int64_t O, bool add) {
  if (N * O == 0) return;
  WERSA_LAUNCH(bias_rows<T>, blocks_for(N * O), kThreads, 0, stream(ctx), y, b, N, O, add);
}

// Pass 1 of db: part[c, o] = sum over rows n of chunk c (in order) of dy[n, o], in double.
template <class T>
__global__ void colsum_chunks(double* part, const T* dy, int64_t N, int64_t O, int64_t rows) {
  const int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (o >= O) return;
  const int64_t c = blockIdx.y, n0 = c * rows, n1 = n0 + rows < N ? n0 + rows : N;
  double s = 0;
  for (int64_t n = n0; n < n1; ++n) s += double(dy[n * O + o]);
  part[c * O + o] = s;
}

// Pass 2: db[o] += the chunk partials of column o, summed in chunk order.
template <class T>
__global__ void colsum_finish(T* db, const double* part, int64_t chunks, int64_t O) {
  const int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (o >= O) return;
  double s = 0;
  for (int64_t c = 0; c < chunks; ++c) s += part[c * O + o];
  db[o] += T(s);
}

// Rows per chunk of the db sum: about 128k (chunk, column) threads in pass 1, at least 16 rows per
// chunk. A function of N and O only.
int64_t db_rows(int64_t N, int64_t O) {
  const int64_t want_chunks = O > 0 && O < 131072 ? 131072 / O : 1;
  const int64_t rows = (N + want_chunks - 1) / want_chunks;
  return rows < 16 ? 16 : rows;
}

// One output of the bf16 GEMV per warp: y[o] = sum_i widen(w[o, i]) x[i] (+ b[o]) (+ y[o]).
template <class T>
__global__ void gemv_bf16(T* y, const uint16_t* w, const T* x, const T* b, int64_t O, int64_t I, bool acc) {
  const int lane = threadIdx.x % 32;
  const int64_t o = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32;
  if (o >= O) return;  // a whole warp leaves together: the shuffles below stay full-warp
  const uint16_t* row = w + o * I;
  T s = 0;
  for (int64_t i = lane; i < I; i += 32) s += T(__uint_as_float(unsigned(row[i]) << 16)) * x[i];
  for (int d = 16; d > 0; d >>= 1) s += __shfl_down_sync(0xffffffffu, s, d);
  if (lane == 0) {
    if (b) s += b[o];
    y[o] = acc ? y[o] + s : s;
  }
}

// wt[r, i] = widen(w[r, i]) for r < rows (a tile of w).
template <class T>
__global__ void widen_tile(T* wt, const uint16_t* w, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(blockDim.x) * gridDim.x)
    wt[i] = T(__uint_as_float(unsigned(w[i]) << 16));
}

// db[o] += sum_n dy[n, o] by the two passes above; part: db_scratch(N, O) doubles of scratch.
int64_t db_scratch(int64_t N, int64_t O) {
  const int64_t rows = db_rows(N, O), chunks = (N + rows - 1) / rows;
  return chunks * O > 0 ? chunks * O : 1;
}
template <class T>
void column_sums(Ctx& ctx, T* db, const T* dy, int64_t N, int64_t O, double* part) {
  if (O == 0) return;
  const int64_t rows = db_rows(N, O), chunks = (N + rows - 1) / rows;
  const unsigned cols = unsigned((O + kThreads - 1) / kThreads);
  if (chunks > 0)
    WERSA_LAUNCH(colsum_chunks<T>, dim3(cols, unsigned(chunks)), kThreads, 0, stream(ctx), part, dy, N, O,
                 rows);
  WERSA_LAUNCH(colsum_finish<T>, cols, kThreads, 0, stream(ctx), db, static_cast<const double*>(part), chunks,
               O);
}

constexpr int64_t kTileElems = int64_t(1) << 22;  // weights widened per GEMM of matmul_fwd_bf16w

}  // namespace

void matmul_fwd(Ctx& ctx, const MatmulFwd& a) {
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  by_dtype(a.y.dtype, "matmul_fwd", [&](auto t) {
    using T = decltype(t);
    T* y = a.y.ptr<T>();
    const T* b = a.b.defined() ? a.b.ptr<T>() : nullptr;
    T beta = a.accumulate_y ? T(1) : T(0);
    if (b && !a.accumulate_y) {  // y = b, then y += x w^T
      add_bias(ctx, y, b, N, O, false);
      beta = T(1);
    }
    gemm(blas(ctx), true, false, O, N, I, a.w.ptr<T>(), ld(I), a.x.ptr<T>(), ld(I), beta, y, ld(O),
         "matmul_fwd");
    if (b && a.accumulate_y) add_bias(ctx, y, b, N, O, true);
  });
}

void matmul_bwd(Ctx& ctx, const MatmulBwd& a) {
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  double* part = a.db.defined() ? ctx.take<double>(db_scratch(N, O)) : nullptr;
  if (ctx.planning()) return;
  if (a.dx.defined() && N == 0) return;  // as the CPU kernel
  by_dtype(a.dy.dtype, "matmul_bwd", [&](auto t) {
    using T = decltype(t);
    const T* dy = a.dy.ptr<T>();
    if (a.dx.defined())  // dx^T[I, N] = w^T'[I, O] dy^T'[O, N]
      gemm(blas(ctx), false, false, I, N, O, a.w.ptr<T>(), ld(I), dy, ld(O), a.accumulate_dx ? T(1) : T(0),
           a.dx.ptr<T>(), ld(I), "matmul_bwd");
    if (a.dw.defined() && N > 0)  // dw^T[I, O] += x^T'[I, N] (dy^T'[O, N])^T
      gemm(blas(ctx), false, true, I, O, N, a.x.ptr<T>(), ld(I), dy, ld(O), T(1), a.dw.ptr<T>(), ld(I),
           "matmul_bwd");
    if (a.db.defined()) column_sums(ctx, a.db.ptr<T>(), dy, N, O, part);
  });
}

void matmul_fwd_bf16w(Ctx& ctx, const MatmulFwd& a) {
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  const uint16_t* w = static_cast<const uint16_t*>(a.w.data);
  const int64_t per_tile = I > 0 ? kTileElems / I : O;
  const int64_t tile = O < per_tile ? O : (per_tile > 0 ? per_tile : 1);
  const int64_t elems = tile * I > 0 ? tile * I : 1;  // in y's dtype: doubles hold f32 or f64
  void* scratch = N > 1 ? ctx.take<double>(a.y.dtype == DType::F64 ? elems : (elems + 1) / 2) : nullptr;
  if (ctx.planning() || N == 0) return;
  by_dtype(a.y.dtype, "matmul_fwd_bf16w", [&](auto t) {
    using T = decltype(t);
    T* y = a.y.ptr<T>();
    const T* x = a.x.ptr<T>();
    const T* b = a.b.defined() ? a.b.ptr<T>() : nullptr;
    if (N == 1) {
      constexpr int kWarps = kThreads / 32;
      if (O > 0)
        WERSA_LAUNCH(gemv_bf16<T>, unsigned((O + kWarps - 1) / kWarps), kThreads, 0, stream(ctx), y, w, x, b,
                     O, I, a.accumulate_y);
      return;
    }
    T* wt = static_cast<T*>(scratch);
    T beta = a.accumulate_y ? T(1) : T(0);
    if (b) {  // the bias first, then every tile adds its product
      add_bias(ctx, y, b, N, O, a.accumulate_y);
      beta = T(1);
    }
    for (int64_t o0 = 0; o0 < O; o0 += tile) {
      const int64_t ob = O - o0 < tile ? O - o0 : tile;
      if (ob * I > 0)
        WERSA_LAUNCH(widen_tile<T>, std::min(blocks_for(ob * I), 1024u), kThreads, 0, stream(ctx), wt,
                     w + o0 * I, ob * I);
      gemm(blas(ctx), true, false, ob, N, I, static_cast<const T*>(wt), ld(I), x, ld(I), beta, y + o0, ld(O),
           "matmul_fwd_bf16w");
    }
  });
}

void matmul_fwd_mixed(Ctx& ctx, const MatmulFwd& a) {
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  uint16_t* xb = ctx.take<uint16_t>(N * I > 0 ? N * I : 1);
  if (ctx.planning() || N == 0) return;
  float* y = a.y.ptr<float>();
  const float* b = a.b.defined() ? a.b.ptr<float>() : nullptr;
  float beta = a.accumulate_y ? 1.0f : 0.0f;
  if (b && !a.accumulate_y) {  // y = b, then y += x w^T (as matmul_fwd)
    add_bias(ctx, y, b, N, O, false);
    beta = 1;
  }
  round_to_bf16(ctx, xb, a.x.ptr<float>(), N * I);
  gemm_bf16(blas(ctx), true, false, O, N, I, static_cast<const uint16_t*>(a.w.data), ld(I), xb, ld(I), beta,
            y, ld(O), "matmul_fwd");
  if (b && a.accumulate_y) add_bias(ctx, y, b, N, O, true);
}

void matmul_bwd_mixed(Ctx& ctx, const MatmulBwd& a) {
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  const bool dx = a.dx.defined(), dw = a.dw.defined();
  uint16_t* dyb = dx || dw ? ctx.take<uint16_t>(N * O > 0 ? N * O : 1) : nullptr;
  uint16_t* xb = dw ? ctx.take<uint16_t>(N * I > 0 ? N * I : 1) : nullptr;
  double* part = a.db.defined() ? ctx.take<double>(db_scratch(N, O)) : nullptr;
  if (ctx.planning()) return;
  if (dx && N == 0) return;  // as matmul_bwd
  const float* dy = a.dy.ptr<float>();
  if (dx || dw) round_to_bf16(ctx, dyb, dy, N * O);
  const uint16_t* w = static_cast<const uint16_t*>(a.w.data);
  if (dx)  // dx^T[I, N] = w^T'[I, O] dy^T'[O, N]
    gemm_bf16(blas(ctx), false, false, I, N, O, w, ld(I), dyb, ld(O), a.accumulate_dx ? 1.0f : 0.0f,
              a.dx.ptr<float>(), ld(I), "matmul_bwd");
  if (dw && N > 0) {  // dw^T[I, O] += x^T'[I, N] (dy^T'[O, N])^T
    round_to_bf16(ctx, xb, a.x.ptr<float>(), N * I);
    gemm_bf16(blas(ctx), false, true, I, O, N, xb, ld(I), dyb, ld(O), 1.0f, a.dw.ptr<float>(), ld(I),
              "matmul_bwd");
  }
  if (a.db.defined()) column_sums(ctx, a.db.ptr<float>(), dy, N, O, part);
}

}  // namespace wersa::cuda

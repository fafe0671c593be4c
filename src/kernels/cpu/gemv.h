// Matrix-vector products for generation (one row per token). Own kernels rather than BLAS gemv:
// they are built for AVX-512, AVX2 and plain x86-64 and pick the best at run time (so they do not
// depend on the BLAS library's CPU detection), and they are deterministic: every output is
// computed by one thread in a fixed order (64-byte vector lanes over i, then the lanes added in
// order), whatever the thread count.
#pragma once
#include <cstdint>

#include "wersa/tensor/bf16.h"

namespace wersa::cpu {

// y[o] = sum_i w[o * ldw + i] x[i] (+ b[o]) (+ y[o] when accumulate), o < O, i < I; b may be null.
// Splits the rows between threads when the product is large and `threads` allows it.
void gemv_rows(int64_t O, int64_t I, const float* w, int64_t ldw, const float* x, const float* b,
               bool accumulate, float* y, bool threads = true);
void gemv_rows(int64_t O, int64_t I, const double* w, int64_t ldw, const double* x, const double* b,
               bool accumulate, double* y, bool threads = true);

// The same with bf16 weights (gemv_bf16.cpp): each weight widens exactly to fp32 as it is loaded;
// products and sums in fp32, in a fixed order of its own (deterministic for any thread count,
// equal to the fp32 kernel on the widened matrix up to fp32 rounding).
void gemv_rows(int64_t O, int64_t I, const bf16* w, int64_t ldw, const float* x, const float* b,
               bool accumulate, float* y, bool threads = true);

// y[i] = sum_o p[o] w[o * ldw + i] (overwritten; o ascending, zero weights skipped). One thread.
void gemv_t(int64_t O, int64_t I, const float* w, int64_t ldw, const float* p, float* y);
void gemv_t(int64_t O, int64_t I, const double* w, int64_t ldw, const double* p, double* y);

// The same for nx vectors at once, each row of w read once for all of them (attention over a KV
// cache for the query heads of one kv head): one thread, fixed order.
//   S[k * O + o] = sum_i w[o * ldw + i] x[k * I + i]                (k < nx, overwritten)
//   Y[k * I + i] = sum_o P[k * O + o] w[o * ldw + i]                (k < nx, overwritten)
void dot_rows_multi(int64_t O, int64_t I, const float* w, int64_t ldw, const float* x, int nx, float* S);
void dot_rows_multi(int64_t O, int64_t I, const double* w, int64_t ldw, const double* x, int nx, double* S);
void gemv_t_multi(int64_t O, int64_t I, const float* w, int64_t ldw, const float* P, int nx, float* Y);
void gemv_t_multi(int64_t O, int64_t I, const double* w, int64_t ldw, const double* P, int nx, double* Y);

}  // namespace wersa::cpu

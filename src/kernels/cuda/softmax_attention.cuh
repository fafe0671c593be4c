// Internal to the CUDA softmax-attention kernels (softmax_attention.cu, softmax_attention_bwd.cu):
// the tile geometry and the helpers both files share.
//   kKeys                   keys per tile: one per lane of a warp when scores are formed
//   kLd                     row length of a transposed tile [d][kLd] in shared memory (padded by one:
//                           reading it along keys or along columns is free of bank conflicts)
//   kWarps                  warps per block of the query-tile kernels (forward, prefill, decode, dQ)
//   cols_per_lane(d)        DC: a lane holds columns c = lane + 32 i (i < DC) of a row; d <= 32 DC
//   by_cols(d, f)           calls f(std::integral_constant<int, DC>) for the head width d
//   check_head_dim<T>(op,d) raises for a head width the kernels do not take (d * sizeof(T) > 1 KiB)
//   allow_smem(k, bytes)    raises kernel k's dynamic shared-memory limit when bytes > 48 KiB
//   KeyRange                which keys row t of sequence b reads (causal offset, lengths)
// Rows of a block: the query-tile kernels take the H / Hkv query heads that share a kv head g
// together, as the rows i = t rep + r (token t, head h = g rep + r) of one flattened index, so a
// key/value tile in shared memory serves every head of its group (GQA).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "common.cuh"

namespace wersa::cuda {
namespace {

constexpr int kKeys = 32;
constexpr int kLd = kKeys + 1;
constexpr int kWarps = 4;

__device__ inline float exp_of(float x) { return expf(x); }
__device__ inline double exp_of(double x) { return exp(x); }
__device__ inline float log_of(float x) { return logf(x); }
__device__ inline double log_of(double x) { return log(x); }
__device__ inline void set_nan(float& y) { y = nanf(""); }
__device__ inline void set_nan(double& y) { y = nan(""); }
__host__ __device__ inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

inline int cols_per_lane(int64_t d) { return d <= 32 ? 1 : d <= 64 ? 2 : d <= 128 ? 4 : 8; }

template <class F>
void by_cols(int64_t d, F&& f) {
  switch (cols_per_lane(d)) {
    case 1:
      return f(std::integral_constant<int, 1>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    default:
      return f(std::integral_constant<int, 8>{});
  }
}

template <class T>
void check_head_dim(const char* op, int64_t d) {
  WERSA_CHECK(d >= 1 && d <= 256 && d * int64_t(sizeof(T)) <= 1024, op, ": head width d = ", d, " (",
              sizeof(T) == 4 ? "f32" : "f64", "): the CUDA kernel takes d up to ", 1024 / int64_t(sizeof(T)));
}

template <class... P>
void allow_smem(void (*k)(P...), size_t bytes) {
  if (bytes <= size_t(48) * 1024) return;
  const cudaError_t e = cudaFuncSetAttribute(reinterpret_cast<const void*>(k),
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  WERSA_CHECK(e == cudaSuccess, "CUDA softmax attention: ", bytes,
              " bytes of shared memory refused: ", cudaGetErrorString(e));
}

// Row t of sequence b reads the keys j < lim(n_b, t): n_b = lengths[b] (padded batches) or nkeys,
// and with causal also j <= off + t (off: the cache rows before the chunk).
struct KeyRange {
  const int32_t* lengths = nullptr;
  int64_t nkeys = 0, off = 0;
  bool causal = true;
  __device__ int64_t seq(int64_t b) const { return lengths ? int64_t(lengths[b]) : nkeys; }
  __device__ int64_t lim(int64_t nb, int64_t t) const { return causal ? imin(off + t + 1, nb) : nb; }
};

}  // namespace
}  // namespace wersa::cuda

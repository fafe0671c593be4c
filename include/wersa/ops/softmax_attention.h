// Exact multi-head softmax attention (the O(T^2) baseline), flash-style in memory.
// Per batch b and query head h, with kv head g = h / (H / Hkv) and keys j <= t (causal) or all j:
//   s[t][j] = scale * q[t] . k[j],   lse[t] = log sum_j exp(s[t][j]),   p[t][j] = exp(s[t][j] - lse[t])
//   o[t] = sum_j p[t][j] v[j]
// Derivatives (Dl[t] = dout[t] . o[t], ds[t][j] = p[t][j] (dout[t] . v[j] - Dl[t])):
//   dq[t] = scale sum_j ds[t][j] k[j]
//   dk[j] = scale sum_t ds[t][j] q[t]   and   dv[j] = sum_t p[t][j] dout[t]
//           (both summed over the H/Hkv query heads of the group)
// All gradients are overwritten. The forward saves only the row log-sum-exp; the backward
// recomputes the probabilities from q, k and lse (memory O(T d), never O(T^2)). The backward runs
// in parallel over (b, kv head) with queries in a fixed order: deterministic, no atomics.
//
// Padded batches (spec "Classification"): with `lengths` [B] i32 (1 <= n_b <= T), the keys and
// values j >= n_b of sequence b are masked out: every query t of the sequence (padded ones
// included) attends over j < n_b only (and j <= t when causal), the formulas above with the sums
// over j so restricted, and dk[j] = dv[j] = 0 for j >= n_b. The padded keys and values are never
// read. Not with a KV cache (generation has no padding).
//
// Generation: softmax_attention_decode attends one new query per head over the first len rows of a
// key/value cache (the cache must already hold the new position's k and v);
// softmax_attention_prefill does the same for a chunk of T new queries at positions pos0 .. pos0 +
// T - 1 (query t attends over cache rows 0 .. pos0 + t), so a prompt is processed in parallel in
// chunks of bounded memory. Both compute the rows of the causal forward over the whole sequence.
// softmax_attention_fwd with a cache (kcache, vcache, pos0; one sequence, causal) is what a model
// calls when it continues a sequence: it writes the chunk's k and v into cache rows pos0 .. pos0 +
// T - 1, then attends over the cache (lse is not written and may be undefined). The op routes this
// itself, above the kernels (every backend's kernels are plain): the kv_cache_append kernel, then
// the softmax_attention_decode kernel for one position or the softmax_attention_prefill kernel for
// a chunk; the whole is one call of softmax_attention_fwd in OpTimes. kv_cache_append (below)
// copies k, v [T, Hkv, d] into cache rows pos0 .. pos0 + T - 1 (nothing to copy where k or v
// already is those rows).
#pragma once
#include <cstdint>

#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct SoftmaxAttnFwd {
  Tensor o, lse;   // [B, T, H, d], [B, T, H]; overwritten
  Tensor q, k, v;  // [B, T, H, d], [B, T, Hkv, d], [B, T, Hkv, d]
  double scale;    // usually 1 / sqrt(d)
  bool causal = true;
  Tensor kcache{}, vcache{};  // optional [Tmax, Hkv, d] each (B = 1, causal): continue a sequence
  int64_t pos0 = 0;           // cache rows before the chunk (pos0 + T <= Tmax)
  Tensor lengths{};           // optional [B] i32: the real keys of each sequence (padded batches)
};
struct SoftmaxAttnBwd {
  Tensor dq, dk, dv;             // overwritten; shapes of q, k, v
  Tensor dout, o, lse, q, k, v;  // o, lse from the forward
  double scale;
  bool causal = true;
  Tensor lengths{};  // optional [B] i32, as in the forward
};

void softmax_attention_fwd(Ctx& ctx, const SoftmaxAttnFwd& a);
void softmax_attention_bwd(Ctx& ctx, const SoftmaxAttnBwd& a);

// o[h] = sum_{j<len} softmax_j(scale q[h] . kcache[j, g]) vcache[j, g],  g = h / (H / Hkv).
struct SoftmaxAttnDecode {
  Tensor o;                  // [H, d] overwritten
  Tensor q, kcache, vcache;  // [H, d], [Tmax, Hkv, d], [Tmax, Hkv, d]
  int64_t len;               // rows of the caches in use, 1..Tmax
  double scale;
};
void softmax_attention_decode(Ctx& ctx, const SoftmaxAttnDecode& a);

// o[t, h] = sum_{j <= pos0 + t} softmax_j(scale q[t, h] . kcache[j, g]) vcache[j, g].
struct SoftmaxAttnPrefill {
  Tensor o;                  // [T, H, d] overwritten
  Tensor q, kcache, vcache;  // [T, H, d], [Tmax, Hkv, d], [Tmax, Hkv, d]; rows < pos0 + T filled
  int64_t pos0;              // cache rows before the chunk, pos0 + T <= Tmax
  double scale;
};
void softmax_attention_prefill(Ctx& ctx, const SoftmaxAttnPrefill& a);

// kcache[pos0 + t] = k[t], vcache[pos0 + t] = v[t] for t < T (a chunk appended to a KV cache).
struct KvCacheAppend {
  Tensor kcache, vcache;  // [Tmax, Hkv, d] each, rows pos0 .. pos0 + T - 1 overwritten
  Tensor k, v;            // [T, Hkv, d] each (may already be those cache rows)
  int64_t pos0;           // pos0 + T <= Tmax
};
void kv_cache_append(Ctx& ctx, const KvCacheAppend& a);

}  // namespace wersa

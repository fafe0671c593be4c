// Linear (kernel) attention over non-negative features (spec step 7 and "Parallel form").
// Per batch b and query head h, with kv head g = h / (H / Hkv) and v'[s] = [v[s], 1] (d+1 wide):
//   causal:        S'_t = sum_{s<=t} phik[s]^T v'[s]     (m x (d+1); the last column is z_t)
//   bidirectional: S'_t = sum_{s<T}  phik[s]^T v'[s]     (the same for every t)
//   [num[t], den[t] - eps] = phiq[t] S'_t,   den[t] = phiq[t] . z_t + eps,   o[t] = num[t] / den[t]
// Chunked form (chunk C, any T): inside a chunk (Phi_Q Phi_K^T * M) V' with M the causal mask,
// plus Phi_Q S'_prev; S' is carried between chunks in the tensors' precision (fp32 for f32, double
// for f64).
//
// Derivatives. With g[t] = [dout[t] / den[t], -(dout[t] . o[t]) / den[t]]  (d+1 wide, the gradient
// of [num, den]) and R_s = sum_{t>=s} phiq[t]^T g[t]  (all t when bidirectional; m x (d+1)):
//   dphiq[t]    = g[t] S'_t^T                    i.e. sum_{s<=t} (g[t] . v'[s]) phik[s]
//   dphik[s][k] = sum_e R_s[k][e] v'[s][e]        summed over the H/Hkv query heads of the group
//   dv[s][e]    = sum_k phik[s][k] R_s[k][e]      (e < d), summed over the query heads of the group
// All three gradients are overwritten. The backward needs the inputs and o, den from the forward
// (den already includes eps, so the backward's eps is only validated; chunk only sets the work split);
// it recomputes the chunk states (one forward sweep for dphiq, one reverse sweep carrying R for
// dphik, dv) instead of storing T/C of them. Parallel over (b, query head) for o and dphiq and over
// (b, kv head) for dphik, dv: no two threads write the same element, results are deterministic.
//
// Generation: linear_attention_step advances one sequence by one position in O(H m d);
// linear_attention_state exports S, z after a prefix (chunked prefill), so that steps from there on
// continue the forward pass. A causal forward may start from a state (S0, z0): a chunk of a longer
// sequence then computes exactly what the forward over the whole sequence computes for its rows
// (the sums over s < chunk start are S0 and z0); linear_attention_state with `accumulate` then
// advances that state past the chunk. With `advance`, linear_attention_fwd does both: (S0, z0) is
// the state before the chunk and is advanced past it in place. The op routes this itself, above
// the kernels (every backend's kernels are plain: the forward kernel reads (S0, z0) and never
// changes it): a chunk of one position of one sequence runs the linear_attention_step kernel
// (update, then query; O(H m d)), a longer chunk the linear_attention_fwd kernel followed by the
// linear_attention_state kernel with accumulate; either is one call of linear_attention_fwd in
// OpTimes. The backward has no initial state (training runs whole sequences).
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct LinearAttnFwd {
  Tensor o, den;         // [B, T, H, d], [B, T, H] (den includes eps); overwritten
  Tensor phiq, phik, v;  // [B, T, H, m], [B, T, Hkv, m], [B, T, Hkv, d]
  int chunk = 64;
  double eps = 1e-6;
  bool causal = true;
  Tensor S0{}, z0{};     // optional initial state [B, Hkv, m, d], [B, Hkv, m] (causal only; both or neither)
  bool advance = false;  // with S0, z0: advance them past the chunk (in place)
};
struct LinearAttnBwd {
  Tensor dphiq, dphik, dv;             // overwritten; shapes of phiq, phik, v
  Tensor dout, o, den, phiq, phik, v;  // dout, o [B, T, H, d]; den [B, T, H] from the forward
  int chunk = 64;
  double eps = 1e-6;
  bool causal = true;
};

void linear_attention_fwd(Ctx& ctx, const LinearAttnFwd& a);
void linear_attention_bwd(Ctx& ctx, const LinearAttnBwd& a);

// One position of one sequence (generation, O(1) in T):
//   S[g] += phik[g]^T v[g], z[g] += phik[g]   (in place), THEN
//   o[h] = phiq[h] S[g] / (phiq[h] . z[g] + eps)  with g = h / (H / Hkv);
// den[h] (optional) receives that denominator, as linear_attention_fwd's den does.
struct LinearAttnStep {
  Tensor o;              // [H, d] overwritten
  Tensor S, z;           // [Hkv, m, d], [Hkv, m] updated in place
  Tensor phiq, phik, v;  // [H, m], [Hkv, m], [Hkv, d]
  double eps = 1e-6;
  Tensor den{};  // optional [H] out: the denominators phiq[h] . z[g] + eps (written when defined)
};
void linear_attention_step(Ctx& ctx, const LinearAttnStep& a);

// State after a whole prefix: S[b, g] = sum_{t<T} phik[b, t, g]^T v[b, t, g], z[b, g] = sum_t
// phik[b, t, g]. Overwritten, or added to when accumulate (the state after a further chunk).
struct LinearAttnState {
  Tensor S, z;     // [B, Hkv, m, d], [B, Hkv, m]
  Tensor phik, v;  // [B, T, Hkv, m], [B, T, Hkv, d]
  bool accumulate = false;
};
void linear_attention_state(Ctx& ctx, const LinearAttnState& a);

}  // namespace wersa

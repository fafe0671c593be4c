// Causal stationary Haar analysis and gated synthesis (spec steps 4-5). Every channel c of every
// sequence b is an independent signal over time t; positions t < 0 hold 0.
//
// Analysis (levels L >= 1), for l = 1..L with delta = 2^(l-1), a_0 = x:
//   a_l[t] = (a_{l-1}[t] + a_{l-1}[t - delta]) / sqrt(2)
//   d_l[t] = (a_{l-1}[t] - a_{l-1}[t - delta]) / sqrt(2)
// so d_l[t] and a_l[t] depend only on x[t - 2^l + 1 .. t] (causal, no block alignment).
// Output layout coef [L+1, B, T, C]: coef[l-1] = d_l for l = 1..L, coef[L] = a_L.
// Backward (adjoint, l = L..1, with da_L = dcoef[L], dd_l = dcoef[l-1]):
//   da_{l-1}[t] = (da_l[t] + dd_l[t]) / sqrt(2) + (da_l[t+delta] - dd_l[t+delta]) / sqrt(2)
//   dx = da_0   (overwritten, or added when accumulate_dx). Needs nothing saved from the forward.
//
// Synthesis with one gate vector gamma[b,t,0..L] per token, shared by all channels:
//   r_L = gamma_L * a_L
//   for l = L..1:  r_{l-1} = (r_l + gamma_{l-1} * d_l) / sqrt(2)
//   y = r_0
// Closed form: y[t] = sum_{l=1..L} gamma_{l-1}[t] d_l[t] / 2^(l/2) + gamma_L[t] a_L[t] / 2^(L/2);
// with every gamma = 1, synthesis(analysis(x)) = x exactly (perfect reconstruction). Synthesis is
// pointwise in t: it mixes levels, never positions.
// Backward (adjoint of the recursion; dr_0 = dy, dr_l = dr_{l-1} / sqrt(2)):
//   dd_l = gamma_{l-1} * dr_{l-1} / sqrt(2),   da_L = gamma_L * dr_L              (dcoef overwritten)
//   dgamma_{l-1}[b,t] = sum_c dr_{l-1} d_l / sqrt(2),  dgamma_L[b,t] = sum_c dr_L a_L
//   (dgamma overwritten, or added when accumulate_dgamma: q and k share the gates, so the second
//    call adds its contribution). Needs coef and gamma from the forward.
// Either dcoef or dgamma may be left undefined to skip it.
// levels must be in 1..16; any T >= 0 works (no power-of-two requirement). Float dtypes f32 or
// f64; the CPU kernels compute in the tensors' type (a few adds per coefficient) and sum dgamma
// over the channels in double.
//
// Generation (a sequence continued in pieces). The causal history of the analysis is, for each
// level l = 1..L with delta = 2^(l-1), a_{l-1} at the delta positions before the current one:
// 2^L - 1 rows per channel, kept as a ring `state` [2^L - 1, C] in which level l occupies rows
// [delta - 1, 2 delta - 1) and position p sits in row delta - 1 + (p mod delta). A zero state is
// the zero padding before position 0.
//  - haar_analysis_fwd with `state` defined ([B, 2^L - 1, C]) analyses a chunk at positions
//    pos0 .. pos0 + T - 1: a_{l-1}[t - delta] for t < delta is read from the state instead of 0,
//    and the state is then advanced in place to position pos0 + T. Chunk by chunk, this computes
//    exactly the coefficients of the analysis of the whole sequence.
//  - haar_step analyses one position pos of one sequence from its state (O(L C)), advances the
//    state, and applies the gated synthesis of that position (y may be left undefined to only
//    advance the state). It is the recurrence of the analysis and computes the same coefficients.
// Neither has a backward (inference only).
//
// The gated filter (what WERSA applies to q^ and k^): y = synthesis(analysis(x), gamma), one op.
//   haar_filter_fwd: the coefficients are never saved (the CPU makes them tile by tile in a cache-
//     sized buffer, bitwise those of the analysis kernel); with a state the analysis continues a
//     sequence (above). The op routes that itself, above the kernels (every backend's filter kernel
//     is plain, without a state): one position of one sequence runs the haar_step kernel, a longer
//     chunk the haar_analysis_fwd kernel (with the state) into coefficients in the call's scratch,
//     then the haar_synthesis_fwd kernel; either is one call of haar_filter_fwd in OpTimes.
//   haar_filter_bwd: recomputes the coefficients from x (cheaper than storing L+1 copies of the
//     signal), then dcoef = synthesis adjoint, dx = analysis adjoint (overwritten) and dgamma
//     (overwritten, or added when accumulate_dgamma). Needs x and gamma from the forward.
#pragma once
#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa {

struct HaarAnalysisFwd {
  Tensor coef;       // [L+1, B, T, C] out (overwritten)
  Tensor x;          // [B, T, C]
  int levels;        // L
  Tensor state{};    // optional [B, 2^L - 1, C] history ring (generation), read then advanced in place
  int64_t pos0 = 0;  // position of t = 0 (with a state)
};
struct HaarAnalysisBwd {
  Tensor dx;     // [B, T, C] out (overwritten, or added when accumulate_dx)
  Tensor dcoef;  // [L+1, B, T, C]
  int levels;
  bool accumulate_dx = false;
};
struct HaarSynthesisFwd {
  Tensor y;            // [B, T, C] out (overwritten)
  Tensor coef, gamma;  // [L+1, B, T, C], [B, T, L+1]
  int levels;
};
struct HaarSynthesisBwd {
  Tensor dcoef, dgamma;    // [L+1, B, T, C] (overwritten), [B, T, L+1] (overwritten or added)
  Tensor dy, coef, gamma;  // [B, T, C], [L+1, B, T, C], [B, T, L+1]
  int levels;
  bool accumulate_dgamma = false;
};

// One position of one sequence (generation): analysis from the state ring, gated synthesis.
struct HaarStep {
  Tensor y;      // [C] out (overwritten): the synthesis at this position; may be undefined
  Tensor state;  // [2^L - 1, C] history ring, advanced in place from position pos to pos + 1
  Tensor x;      // [C] the signal at position pos
  Tensor gamma;  // [L+1] the position's gates (needed when y is defined)
  int levels;
  int64_t pos;
};

struct HaarFilterFwd {
  Tensor y;         // [B, T, C] out (overwritten)
  Tensor x, gamma;  // [B, T, C], [B, T, L+1]
  int levels;
  Tensor state{};    // optional [B, 2^L - 1, C] history ring, read then advanced in place
  int64_t pos0 = 0;  // position of t = 0 (with a state)
};
struct HaarFilterBwd {
  Tensor dx, dgamma;    // [B, T, C] (overwritten), [B, T, L+1] (overwritten or added); either may
                        // be undefined to skip it
  Tensor dy, x, gamma;  // [B, T, C], [B, T, C], [B, T, L+1]
  int levels;
  bool accumulate_dgamma = false;
};

void haar_filter_fwd(Ctx& ctx, const HaarFilterFwd& a);
void haar_filter_bwd(Ctx& ctx, const HaarFilterBwd& a);
void haar_analysis_fwd(Ctx& ctx, const HaarAnalysisFwd& a);
void haar_step(Ctx& ctx, const HaarStep& a);
void haar_analysis_bwd(Ctx& ctx, const HaarAnalysisBwd& a);
void haar_synthesis_fwd(Ctx& ctx, const HaarSynthesisFwd& a);
void haar_synthesis_bwd(Ctx& ctx, const HaarSynthesisBwd& a);

}  // namespace wersa

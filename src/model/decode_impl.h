// Internal to generation: the activation buffers of a decode step and of a prefill chunk, and the
// model's tensors as name-less views (copying a Tensor copies its name; long names would make
// every op call allocate).
#pragma once
#include <memory>

#include "wersa/model/generate.h"

namespace wersa::detail {

// Sizes used everywhere in generation.
struct GenDims {
  int64_t D, H, Hkv, d, M, L, K, W, P, V, F, G, L1;  // W = K-1 conv window rows, P = 2^L - 1 Haar rows
  bool wersa;
  explicit GenDims(const ModelConfig& c);
};

Tensor anon(const Tensor& t);  // the same view without a name

// The model's parameters and buffers without names.
struct AnonModel {
  std::vector<LayerParams> layers;
  std::vector<Tensor> omega_q, omega_k;
  Tensor embed, final_norm, head;
  explicit AnonModel(const Model& m);
};

struct DecodeStep {
  std::unique_ptr<Arena> arena, iarena;
  AnonModel w;
  Tensor x, u, q, k, v, c, h1, a1, zg, g, gamma, qh, kh, qt, kt, phiq, phik, o, on, h, u2, gate, up, act, xf;
  Tensor logits;  // [1, V]
  // Fixed views of the buffers above.
  Tensor x1, u1, c1, qh1, kh1, qt1, kt1, gamma1;  // rank 1
  Tensor q4, k4, qHd, kHd, vHd, oHd, onHd;        // [1, 1, H, d], [1, 1, Hkv, d], [H, d], [Hkv, d], ...
  Tensor qtHd, ktHd;                              // [H, d], [Hkv, d]
  DecodeStep(const Model& m);
};

struct DecodePrefill {
  int64_t rows;  // chunk capacity
  std::unique_ptr<Arena> arena, iarena;
  Tensor tokens;  // [rows] i32
  Tensor x, uext, q, k, v, cext, h1, a1, zg, g, gamma, qh, kh, coef, qt, kt, phiq, phik, o, den, on, h, u2,
      gate, up, act, xf;
  DecodePrefill(const Model& m, int64_t rows);
};

struct DecodeAccess {
  static const Model* model(const DecodeState& s) { return s.model_; }
  static DecodeStep& step(DecodeState& s) { return *s.step_; }
  static DecodePrefill& prefill(DecodeState& s);  // builds it on first use
  static std::vector<int32_t>& tokens(DecodeState& s) { return s.tokens_; }
};

// Checks that the state belongs to the model and that n more tokens fit.
void check_state(const Model& m, const DecodeState& s, int64_t n, const char* what);

}  // namespace wersa::detail

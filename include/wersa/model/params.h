// The model's parameters, declared once. visit_params calls a function for every parameter tensor
// (name, shape, role), in checkpoint order; planning the parameter, gradient and Adam-moment
// arenas (identically, so they line up element for element), initialisation, the weight-decay
// mask and the checkpoint names all come from that one declaration. Names follow a Hugging
// Face-like scheme ("layers.3.attn.wq.weight") and are the safetensors names in checkpoints.
#pragma once
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "wersa/model/config.h"
#include "wersa/tensor/arena.h"

namespace wersa {

// Role of a parameter: decides its initialisation and whether weight decay applies.
enum class ParamKind {
  Matrix,       // N(0, init_std^2); weight decay
  Bias,         // 0
  NormWeight,   // 1
  Scale,        // 0.5 (WERSA's scale_weights, the paper's init)
  Features,     // random features Omega of the relu map, N(0, 1/d), never trained (buffers only)
  FeaturesExp,  // random features Omega of the exp map, N(0, 1), never trained (buffers only)
};

struct ParamDecl {
  std::string name;  // checkpoint name
  Shape shape;
  ParamKind kind;
  double init_std = 0;  // Matrix only
  // Read only by matmul_fwd (as w) and embedding_fwd (as the table) in a forward, so an inference
  // copy of the model may store it in bf16 (Model's weight-format constructor).
  bool bf16_ok = false;
  // Placed right after the previous declaration, without padding, so that the two are also one
  // matrix: ffn.w_up after ffn.w_gate, whose stacked [2 F_ffn, D] runs both projections in one GEMM.
  bool follows = false;
  bool decays() const { return kind == ParamKind::Matrix; }
};

// A fixed set of tensors that one attention kind names with its own enum (its parameters, its
// activations, its generation state), so that the code outside the kind never lists them.
struct Slots {
  static constexpr int kMax = 24;
  std::array<Tensor, kMax> t{};
  Tensor& operator[](int i) { return t[size_t(i)]; }
  const Tensor& operator[](int i) const { return t[size_t(i)]; }
  Slots rows(int64_t n) const;  // every defined slot's first n rows
};

struct LayerParams {
  Tensor attn_norm;               // [D]
  Tensor wq, bq, wk, bk, wv, bv;  // [H*d, D], [H*d], [Hkv*d, D], [Hkv*d] (biases optional)
  Slots attn;                     // the attention kind's own parameters
  Tensor wo;                      // [D, H*d]
  Tensor ffn_norm;                // [D]
  Tensor w_gate, w_up, w_down;    // [F_ffn, D], [F_ffn, D], [D, F_ffn]
};

struct ModelParams {
  Tensor embed;  // [V, D]
  std::vector<LayerParams> layers;
  Tensor final_norm;  // [D] (the trunk's last op)
  Tensor lm_head;     // [V, D] (the LM head), undefined when tied to embed or for a classifier
  // The classifier head (task.type classify): logits = pooled W^T + b over C classes.
  Tensor cls_weight, cls_bias;  // [C, D], [C]
};
// Name prefix of the classifier head's parameters (what a frozen trunk still trains).
constexpr const char* kClassifierPrefix = "classifier.";

// Fixed, untrained tensors saved with the model: per layer, the kind's random-feature matrices.
struct ModelBuffers {
  std::vector<Slots> layers;
};

using ParamFn = std::function<void(Tensor& slot, const ParamDecl& decl)>;
void visit_params(const ModelConfig& c, ModelParams& p, const ParamFn& f);
void visit_buffers(const ModelConfig& c, ModelBuffers& b, const ParamFn& f);

// Views of every parameter (or buffer) in `arena`, dtype dt; the declarations in order when asked.
// With bf16_weights, the parameters declared bf16_ok are bf16 instead (an inference copy).
ModelParams plan_params(Arena& arena, const ModelConfig& c, DType dt, std::vector<ParamDecl>* decls = nullptr,
                        bool bf16_weights = false);
// train.precision bf16: bf16 views in `arena` of the parameters declared bf16_ok (the shadow weights
// that the GEMMs read), in declaration order; every other slot stays undefined.
ModelParams plan_shadow(Arena& arena, const ModelConfig& c);
ModelBuffers plan_buffers(Arena& arena, const ModelConfig& c, DType dt,
                          std::vector<ParamDecl>* decls = nullptr);

// Fills a CPU tensor as its declaration says, from the seed: value = f(seed, name, index).
void init_param(const Tensor& t, const ParamDecl& d, uint64_t seed);

}  // namespace wersa

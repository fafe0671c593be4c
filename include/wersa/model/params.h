// Parameters of the causal LM, laid out in arenas. The same planning function builds the
// parameter, gradient and Adam-moment arenas, so the i-th tensor of each corresponds and the
// flat arenas line up element for element. Names follow a Hugging Face-like scheme
// ("layers.3.attn.wq.weight") and are the safetensors names in checkpoints.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "wersa/model/config.h"
#include "wersa/tensor/arena.h"

namespace wersa {

struct LayerParams {
  Tensor attn_norm;                   // [D]
  Tensor wq, bq, wk, bk, wv, bv;      // [H*d, D], [H*d], [Hkv*d, D], [Hkv*d] (biases optional)
  Tensor conv_w, conv_b;              // WERSA gate: depthwise causal conv [D, K], [D]
  Tensor fc1_w, fc1_b, fc2_w, fc2_b;  // gate MLP [F, D], [F], [L+1, F], [L+1]
  Tensor scale;                       // scale_weights [L+1]
  Tensor hn_w, hn_b;                  // head LayerNorm [d], [d]
  Tensor wo;                          // [D, H*d]
  Tensor ffn_norm;                    // [D]
  Tensor w_gate, w_up, w_down;        // [F_ffn, D], [F_ffn, D], [D, F_ffn]
};

struct ModelParams {
  Tensor embed;  // [V, D]
  std::vector<LayerParams> layers;
  Tensor final_norm;  // [D]
  Tensor lm_head;     // [V, D], undefined when tied to embed
};

// Fixed, untrained tensors saved with the model: the random-feature matrices per layer.
struct ModelBuffers {
  std::vector<Tensor> omega_q, omega_k;  // [d, m]; omega_k aliases omega_q when shared
};

// Plans every parameter tensor of `m` into `arena` (dtype `dt`); returns the views.
ModelParams plan_params(Arena& arena, const ModelConfig& m, DType dt);
ModelBuffers plan_buffers(Arena& arena, const ModelConfig& m, DType dt);

// Role of a parameter, by name: decides initialisation and weight decay.
enum class ParamKind { Matrix, Bias, NormWeight, Scale };
ParamKind param_kind(const std::string& name);
bool param_decays(const std::string& name);  // matrices only

// Initialises parameters and buffers from the seed (counter RNG: value = f(seed, name, index)).
void init_params(Arena& params, const ModelConfig& m, uint64_t seed);
void init_buffers(Arena& buffers, const ModelConfig& m, uint64_t seed);

}  // namespace wersa

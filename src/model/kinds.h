// Internal to the model: the constructors of the attention kinds (one file each), for the table in
// attention.cpp.
#pragma once
#include "attention.h"

namespace wersa::detail {

std::unique_ptr<Attention> make_wersa_attention(const ModelConfig& c);
std::unique_ptr<Attention> make_softmax_attention(const ModelConfig& c);
std::unique_ptr<Attention> make_linear_attention(const ModelConfig& c);

}  // namespace wersa::detail

// Generation state files (safetensors): the state tensors (a KV cache only up to the position),
// the tokens and the logits, with metadata format = "wersa-state", version 1, the model
// fingerprint, the position, the attention type and the dtype. Loading checks that the file was
// made by this model (same fingerprint) and fits the context; otherwise an Error naming the file.
#pragma once
#include <map>
#include <string>

#include "wersa/model/generate.h"

namespace wersa {

void save_decode_state(const Model& m, const DecodeState& s, const std::string& path,
                       const std::map<std::string, std::string>& extra_metadata = {});
void load_decode_state(const Model& m, DecodeState& s, const std::string& path);

}  // namespace wersa

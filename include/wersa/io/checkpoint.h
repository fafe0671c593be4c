// Checkpoint directories: RUN/step-000100/{model.safetensors, optimizer.safetensors,
// config.json, state.json[, tokenizer.model]}. A checkpoint is written into a temporary
// directory and renamed into place, so a directory named step-* is always complete.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "wersa/model/model.h"

namespace wersa::io {

std::string checkpoint_name(int64_t step);  // "step-000100"

struct CheckpointContents {
  Model* model = nullptr;
  Arena* adam_m = nullptr;  // optional optimizer moments (planned like the parameters)
  Arena* adam_v = nullptr;
  nlohmann::json config;       // the fully resolved config
  nlohmann::json state;        // step, data position, ...
  std::string tokenizer_path;  // copied as tokenizer.model when not empty
};
// Writes RUN/step-XXXXXX; returns its path.
std::string save_checkpoint(const std::string& run_dir, int64_t step, const CheckpointContents& c);
// Newest complete checkpoint directory in run_dir ("" when none).
std::string find_latest_checkpoint(const std::string& run_dir);

Config load_checkpoint_config(const std::string& ckpt_dir);
nlohmann::json load_checkpoint_state(const std::string& ckpt_dir);
// Loads parameters and random-feature buffers; every tensor must be present with its shape.
void load_model_weights(const std::string& ckpt_dir, Model& m);
void load_optimizer_state(const std::string& ckpt_dir, Arena& adam_m, Arena& adam_v);
// The tokenizer spec for a checkpoint: its tokenizer.model if present, else "byte".
std::string checkpoint_tokenizer(const std::string& ckpt_dir);

}  // namespace wersa::io

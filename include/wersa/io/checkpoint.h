// Checkpoint directories: RUN/step-000100/{model.safetensors, optimizer.safetensors,
// config.json, state.json[, tokenizer.model]}. A checkpoint is written into a temporary
// directory and renamed into place, so a directory named step-* is complete unless something
// outside the engine damaged it; loading checks everything before it is used:
//   - each tensor file's SHA-256 (safetensors.h) and that every weight is finite;
//   - that the tensors are exactly those the saved config.json describes (names and shapes,
//     nothing extra), and that config.json's model section is the one the weights were saved
//     with (model.safetensors keeps a copy of it in its metadata), so a setting that changes no
//     shape (rope_theta, chunk, ...) cannot be changed behind the weights' back;
//   - state.json's types and ranges (the trainer checks it against the config and the data).
// Every problem is a one-line wersa::Error naming the file.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wersa/model/model.h"

namespace wersa::io {

std::string checkpoint_name(int64_t step);  // "step-000100"

// state.json: where training stands.
struct CheckpointState {
  int64_t step = 0;         // optimizer steps done
  int64_t train_pos = 0;    // the batcher's position in the training data (tokens)
  uint64_t seed = 0;        // train.seed of the run
  int64_t tokens_seen = 0;  // training tokens consumed
};
nlohmann::json state_to_json(const CheckpointState& s);
// Validates types, ranges and keys (unknown or missing keys are errors naming `where`).
CheckpointState state_from_json(const nlohmann::json& j, const std::string& where);

struct CheckpointContents {
  Model* model = nullptr;
  Arena* adam_m = nullptr;  // optional optimizer moments (planned like the parameters)
  Arena* adam_v = nullptr;
  nlohmann::json config;  // the fully resolved config
  CheckpointState state;
  std::string tokenizer_path;  // copied as tokenizer.model when not empty
};
// Writes RUN/step-XXXXXX; returns its path.
std::string save_checkpoint(const std::string& run_dir, int64_t step, const CheckpointContents& c);

struct CheckpointSearch {
  std::string newest;                // newest complete checkpoint ("" when none)
  std::vector<std::string> skipped;  // newer step-* directories that are incomplete: "DIR (lacks FILE)"
  int64_t found = 0;                 // step-* directories seen, complete or not
};
// Complete: config.json, model.safetensors and state.json (and optimizer.safetensors when
// `for_resume`) are present.
CheckpointSearch find_checkpoints(const std::string& run_dir, bool for_resume);
// Newest complete checkpoint directory in run_dir ("" when none); warns about skipped ones.
std::string find_latest_checkpoint(const std::string& run_dir);
// Deletes the oldest complete checkpoints of run_dir so that `keep` remain (keep > 0).
void prune_checkpoints(const std::string& run_dir, int keep);

Config load_checkpoint_config(const std::string& ckpt_dir);
CheckpointState load_checkpoint_state(const std::string& ckpt_dir);
// Loads parameters and random-feature buffers (see the checks above).
void load_model_weights(const std::string& ckpt_dir, Model& m);
// The tools' --weights: "f32" (the checkpoint as it is) or "bf16" (an inference copy whose
// linear-layer weights are rounded once to bf16; see Model). A model for inference, with the
// model section of `cfg` (the checkpoint's own config), on `device` ("cpu" or "cuda"; bf16
// weights are CPU only).
std::unique_ptr<Model> load_inference_model(const std::string& ckpt_dir, const Config& cfg,
                                            const std::string& weights, const std::string& device = "cpu");
// Initialises a model's trunk (embedding, blocks, final norm, random features) from a checkpoint
// (train.init_from): the model sections must agree except tie_embeddings and attention.causal;
// the classifier head keeps its own initialisation. Returns the number of tensors read.
int load_trunk_weights(const std::string& ckpt_dir, Model& m);
void load_optimizer_state(const std::string& ckpt_dir, Arena& adam_m, Arena& adam_v);
// The tokenizer spec for a checkpoint: its tokenizer.model if present, else "byte".
std::string checkpoint_tokenizer(const std::string& ckpt_dir);

}  // namespace wersa::io

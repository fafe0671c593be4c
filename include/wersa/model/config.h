// The run configuration. One declaration per field (visit_fields in src/model/config.cpp) drives
// JSON parsing, validation (ranges and choices), `--set a.b=v` overrides, the help text and the
// saved config.json, so a field cannot be known to one of them and missing from another.
//
// Errors are one line: "<source>: <key path>: <problem> (expected ...)", e.g.
//   configs/x.json: model.dim: -3 is out of range (expected an integer in [1, 65536])
//   configs/x.json: unknown key 'model.foo'
// JSON files may omit keys (they keep the defaults below); unknown keys are errors.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace wersa {

// The attention of every block (spec: "The block", "Baselines in the same engine"). Parsed once,
// from the config; each kind is implemented in one place (src/model/attn_<kind>.cpp), named and
// constructed by the table in src/model/attention.cpp.
enum class AttentionKind : uint8_t {
  Wersa,    // wavelet-gated random-feature linear attention (the engine's model)
  Softmax,  // exact attention, O(T^2) (baseline)
  Linear,   // WERSA without the gates and the Haar filter (ablation)
};
const char* attention_kind_name(AttentionKind k);  // "wersa", "softmax", "linear"
// Every kind in the order of the table (what the config accepts, what the help lists).
const std::vector<AttentionKind>& attention_kinds();
// The kind called `name`; a wersa::Error listing the kinds otherwise.
AttentionKind attention_kind_from_name(const std::string& name);
std::ostream& operator<<(std::ostream& os, AttentionKind k);  // its name

struct AttentionConfig {
  AttentionKind type = AttentionKind::Wersa;
  int features = 64;    // random features m per head, [1, 65536]
  int levels = 3;       // Haar levels L, [1, 12]
  int conv_width = 33;  // gate convolution width K, [1, 1025]
  bool shared_qk_features = true;
  std::string feature_map = "relu";  // relu | exp (spec: feature-map options)
  bool causal = true;
  int chunk = 64;     // [1, 4096]
  double eps = 1e-6;  // (0, 1]
  bool qkv_bias = true;
  int gate_dim = 0;  // 0 = dim / 4, else [1, 65536]
  double head_norm_eps = 1e-5;
};

// What the model is trained for (spec: "Classification"). The head it implies is part of the
// model: its parameters, its checkpoint names, its outputs. Paths "task.*" in the JSON.
struct TaskConfig {
  std::string type = "lm";          // lm (next-token LM head) | classify (pooled classifier head)
  int num_classes = 0;              // classify: C; 0 = the classes found in the training data
  std::string pooling = "mean";     // classify: mean | last (over each document's real positions)
  std::vector<std::string> labels;  // classify: class names, id order (empty = from the data)
  bool classify() const { return type == "classify"; }
};

struct ModelConfig {
  int vocab_size = 259;  // [2, 16777216]
  int dim = 64;
  int layers = 2;  // [1, 1024]
  int heads = 4;
  int kv_heads = 4;
  int ffn_dim = 192;
  bool tie_embeddings = true;
  double rope_theta = 10000.0;  // 0 = off, else >= 1
  double norm_eps = 1e-6;
  double init_std = 0.02;
  AttentionConfig attention;
  TaskConfig task;
};

struct TrainConfig {
  int steps = 100;
  int batch_size = 4;
  int seq_len = 128;
  double lr = 1e-3;
  double min_lr = 1e-4;
  int warmup_steps = 10;
  double weight_decay = 0.1;
  double grad_clip = 1.0;  // 0 = off
  int grad_accum = 1;
  uint64_t seed = 1234;
  int eval_every = 0;
  int eval_batches = 8;
  int checkpoint_every = 0;
  int keep_last = 0;  // 0 = keep every checkpoint
  int log_every = 1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double adam_eps = 1e-8;
  std::string device = "cpu";      // cpu | cuda
  int threads = 0;                 // 0 = all cores
  bool recompute = false;          // keep only block inputs; the backward recomputes each block
  std::string precision = "fp32";  // fp32 | bf16 (GEMMs with bf16 operands, f32 masters and states)
  // Classification only:
  std::string class_weights = "none";  // none | balanced (w_c = n / (C n_c) over the training split)
  std::string init_from;               // checkpoint whose trunk initialises the model ("" = none)
  int freeze_trunk_steps = 0;          // steps at the start that train the head only
};

struct DataConfig {
  std::string train;
  std::string val;
  std::string tokenizer;  // "" = byte-level
  // Classification only (documents of train.seq_len tokens at most):
  std::string truncate = "head";  // head | head_tail (first quarter and last three quarters)
  double val_fraction = 0.1;      // of each class, when the records carry no split
  double test_fraction = 0.1;
};

struct Config {
  ModelConfig model;
  TrainConfig train;
  DataConfig data;
};

// Reads, parses and validates a JSON config file (duplicate keys are errors too).
Config config_from_file(const std::string& path);
// Parses and validates; missing keys keep their defaults. `source` prefixes error messages.
Config config_from_json(const nlohmann::json& j, const std::string& source);
// Applies "a.b=v": v is parsed as JSON when it parses (numbers, true/false, "quoted"), else
// taken as a string; string settings take the text as written unless it is a JSON string.
// Same checks as a file, then the whole config is re-validated; on error c is unchanged.
void config_set(Config& c, const std::string& assignment, const std::string& source = "--set");
// Applies several assignments in order, then validates once (so their order does not matter
// for cross-field rules such as warmup_steps <= steps). On error c is unchanged.
void config_set_all(Config& c, const std::vector<std::string>& assignments,
                    const std::string& source = "--set");
// Per-field ranges and choices, then the cross-field rules (dim % heads, heads % kv_heads,
// even head width with RoPE, min_lr <= lr, warmup_steps <= steps).
void config_validate(const Config& c, const std::string& source);
// Training needs data.train.
void require_training_data(const Config& c, const std::string& source);
// The fully resolved config, every key (what a run saves as config.json).
nlohmann::json config_to_json(const Config& c);
// What fixes the model's tensors and outputs: {"model": ..., "task": ...} of config_to_json.
nlohmann::json model_identity(const ModelConfig& m);
// One line per key: path, type, default, range/choices, description.
std::string config_help();

int config_head_dim(const ModelConfig& m);  // dim / heads
int config_gate_dim(const ModelConfig& m);  // attention.gate_dim, or dim / 4 (at least 1)

}  // namespace wersa

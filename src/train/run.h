// Internal to the training loops (src/train): what the language-model and the classifier loops
// share. The run directory is created and locked (a second trainer on it is refused) and found
// writable before any work is done.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "wersa/backend/backend.h"
#include "wersa/common/file.h"
#include "wersa/model/model.h"
#include "wersa/train/trainer.h"

namespace wersa::detail {

namespace fs = std::filesystem;

struct RunDir {
  fs::path out;  // empty: no run directory
  std::unique_ptr<DirLock> lock;
};
RunDir open_run_dir(const TrainOptions& opt);
// The newest complete checkpoint of a run to resume ("" when there is none: a fresh start, with a
// warning); incomplete newer ones are skipped with a warning, and only incomplete ones are an error.
std::string resume_checkpoint(const fs::path& out);
// Keeps the lines of metrics.jsonl whose step is <= `step` (a resumed run rewrites the rest).
void truncate_metrics(const fs::path& p, int64_t step);
// The tokenizer for cfg: data.tokenizer when given; otherwise the tokenizer.model that
// wersa-tokenize encode leaves beside its shards; otherwise the byte-level tokenizer.
std::string tokenizer_spec(const Config& cfg);
// The device of train.device: "cuda" needs a build with CUDA and a device present.
Device train_device(const TrainConfig& tc);
// The model a run trains, on train.device, with gradients: its parameters drawn from train.seed on
// the CPU (the same values on every device), then, with train.init_from, the trunk of that
// checkpoint; then copied to the device.
std::unique_ptr<Model> make_train_model(const Config& cfg, bool quiet);
// What a run saves as its config.json: config_to_json(cfg) and "written_by", the version line of
// the engine (wersa/common/version.h), which config_from_json accepts and ignores.
nlohmann::json saved_config(const Config& cfg);

}  // namespace wersa::detail

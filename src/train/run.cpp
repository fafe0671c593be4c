// Pieces every training loop shares: the run directory, resuming, metrics and the tokenizer.
#include "run.h"

#include "wersa/common/file.h"
#include "wersa/common/json.h"
#include "wersa/common/log.h"
#include "wersa/common/version.h"
#include "wersa/io/checkpoint.h"

namespace wersa::detail {

RunDir open_run_dir(const TrainOptions& opt) {
  RunDir r;
  if (!opt.out_dir.empty()) {
    r.out = opt.out_dir;
    std::error_code ec;
    fs::create_directories(r.out, ec);
    WERSA_CHECK(!ec, opt.out_dir, ": cannot create run directory: ", ec.message());
    r.lock = std::make_unique<DirLock>(r.out.string(), ".lock", "another wersa-train");
  }
  WERSA_CHECK(!opt.resume || !r.out.empty(),
              "--resume needs --out DIR (the run directory holding the checkpoints)");
  return r;
}

std::string resume_checkpoint(const fs::path& out) {
  const io::CheckpointSearch found = io::find_checkpoints(out.string(), true);
  for (const std::string& k : found.skipped) spdlog::warn("skipping incomplete checkpoint {}", k);
  WERSA_CHECK(!found.newest.empty() || found.found == 0, out.string(),
              ": no complete checkpoint to resume from (",
              found.skipped.empty() ? std::string("?") : found.skipped.front(), ")");
  if (found.newest.empty()) spdlog::warn("no checkpoint in {}: starting from step 0", out.string());
  return found.newest;
}

// Keeps the lines of metrics.jsonl whose step is <= `step` (a resumed run rewrites the rest).
void truncate_metrics(const fs::path& p, int64_t step) {
  std::error_code ec;
  if (!fs::exists(p, ec)) return;
  const std::string text = read_file(p.string(), ~size_t(0));
  std::string keep;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;  // a last line without its newline was torn by a crash
    const std::string_view line(text.data() + pos, end - pos);
    try {
      const auto j = parse_json(line, p.string());
      if (j.is_object() && j.value("step", int64_t(0)) <= step) keep.append(line).push_back('\n');
    } catch (const std::exception&) {
      // a damaged line: dropped
    }
    pos = end + 1;
  }
  write_file(p.string(), keep);
}

// The tokenizer for cfg: data.tokenizer when given; otherwise the tokenizer.model that
// wersa-tokenize encode leaves beside its shards; otherwise the byte-level tokenizer.
std::string tokenizer_spec(const Config& cfg) {
  if (!cfg.data.tokenizer.empty()) return cfg.data.tokenizer;
  std::error_code ec;
  const fs::path train(cfg.data.train);
  const fs::path dir = fs::is_directory(train, ec) ? train : train.parent_path();
  const fs::path model = dir / "tokenizer.model";
  if (!dir.empty() && fs::exists(dir / "dataset.json", ec) && fs::exists(model, ec)) return model.string();
  return "byte";
}

Device train_device(const TrainConfig& tc) {
  if (tc.device == "cpu") return Device::CPU;
  WERSA_CHECK(tc.device == "cuda", "train.device: '", tc.device, "' is not a device (expected cpu or cuda)");
  WERSA_CHECK(cuda_available(), "train.device: 'cuda' requested but no CUDA device is available (",
              "the engine was built without CUDA, or no GPU is visible)");
  return Device::CUDA;
}

std::unique_ptr<Model> make_train_model(const Config& cfg, bool quiet) {
  const TrainConfig& tc = cfg.train;
  const Device dev = train_device(tc);
  auto host = std::make_unique<Model>(cfg.model, DType::F32, Device::CPU, dev == Device::CPU);
  host->init(tc.seed);
  if (!tc.init_from.empty()) {
    const int n = io::load_trunk_weights(tc.init_from, *host);
    if (!quiet) spdlog::info("trunk initialised from {} ({} tensors)", tc.init_from, n);
  }
  std::unique_ptr<Model> m = dev == Device::CPU ? std::move(host) : std::make_unique<Model>(*host, dev, true);
  if (tc.precision == "bf16") m->use_bf16_gemms();  // the caller refreshes it (Model::refresh_bf16)
  return m;
}

nlohmann::json saved_config(const Config& cfg) {
  nlohmann::json j = config_to_json(cfg);
  j[kWrittenByKey] = version_line();
  return j;
}

}  // namespace wersa::detail

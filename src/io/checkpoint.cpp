#include "wersa/io/checkpoint.h"

#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>

#include "wersa/io/safetensors.h"

namespace fs = std::filesystem;

namespace wersa::io {

namespace {
void write_json(const fs::path& p, const nlohmann::json& j) {
  std::ofstream f(p);
  WERSA_CHECK(f.good(), p.string(), ": cannot open for writing");
  f << j.dump(2) << "\n";
  f.close();
  WERSA_CHECK(f.good(), p.string(), ": write failed");
}
nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  WERSA_CHECK(f.good(), p.string(), ": cannot open file");
  try {
    return nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    WERSA_FAIL(p.string(), ": invalid JSON: ", e.what());
  }
}
// The arena's tensors named prefix + name; `names` keeps the strings the views refer to.
std::vector<Tensor> renamed(const Arena& a, const std::string& prefix, std::deque<std::string>& names) {
  std::vector<Tensor> out;
  for (const Tensor& t : a.tensors()) {
    names.push_back(prefix + std::string(t.name));
    Tensor c = t;
    c.name = names.back();
    out.push_back(c);
  }
  return out;
}
void read_arena(const SafeTensorsFile& f, const Arena& a, const std::string& prefix) {
  for (const Tensor& t : a.tensors()) f.read_into(prefix + std::string(t.name), t);
}
}  // namespace

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%06lld", static_cast<long long>(step));
  return buf;
}

std::string save_checkpoint(const std::string& run_dir, int64_t step, const CheckpointContents& c) {
  WERSA_ASSERT(c.model, "checkpoint without a model");
  const fs::path final_dir = fs::path(run_dir) / checkpoint_name(step);
  const fs::path tmp = fs::path(run_dir) / (checkpoint_name(step) + ".tmp");
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  WERSA_CHECK(!ec, tmp.string(), ": cannot create directory: ", ec.message());
  WERSA_CHECK(c.model->device() == Device::CPU, "checkpoint: the model is on ",
              device_name(c.model->device()), "; save a copy on the CPU");
  std::vector<Tensor> weights(c.model->params_arena().tensors().begin(),
                              c.model->params_arena().tensors().end());
  for (const Tensor& b : c.model->buffers_arena().tensors()) weights.push_back(b);
  save_safetensors((tmp / "model.safetensors").string(), weights, {{"format", "pt"}, {"engine", "wersa"}});
  if (c.adam_m && c.adam_v) {
    std::deque<std::string> names;
    std::vector<Tensor> opt = renamed(*c.adam_m, "m.", names);
    for (const Tensor& t : renamed(*c.adam_v, "v.", names)) opt.push_back(t);
    save_safetensors((tmp / "optimizer.safetensors").string(), opt, {{"format", "pt"}});
  }
  write_json(tmp / "config.json", c.config);
  if (!c.tokenizer_path.empty()) {
    fs::copy_file(c.tokenizer_path, tmp / "tokenizer.model", fs::copy_options::overwrite_existing, ec);
    WERSA_CHECK(!ec, c.tokenizer_path, ": cannot copy tokenizer into the checkpoint: ", ec.message());
  }
  write_json(tmp / "state.json", c.state);  // written last: its presence marks completeness
  fs::remove_all(final_dir, ec);
  fs::rename(tmp, final_dir, ec);
  WERSA_CHECK(!ec, final_dir.string(), ": cannot move checkpoint into place: ", ec.message());
  return final_dir.string();
}

std::string find_latest_checkpoint(const std::string& run_dir) {
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return {};
  std::string best;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::string n = e.path().filename().string();
    if (!e.is_directory() || n.rfind("step-", 0) != 0 || n.find('.') != std::string::npos) continue;
    if (!fs::exists(e.path() / "state.json") || !fs::exists(e.path() / "model.safetensors")) continue;
    if (best.empty() || n > fs::path(best).filename().string()) best = e.path().string();
  }
  return best;
}

Config load_checkpoint_config(const std::string& dir) {
  WERSA_CHECK(fs::is_directory(dir), dir, ": not a checkpoint directory");
  const fs::path p = fs::path(dir) / "config.json";
  return config_from_json(read_json(p), p.string());
}

nlohmann::json load_checkpoint_state(const std::string& dir) {
  return read_json(fs::path(dir) / "state.json");
}

void load_model_weights(const std::string& dir, Model& m) {
  const SafeTensorsFile f((fs::path(dir) / "model.safetensors").string());
  read_arena(f, m.params_arena(), "");
  read_arena(f, m.buffers_arena(), "");
}

void load_optimizer_state(const std::string& dir, Arena& am, Arena& av) {
  const SafeTensorsFile f((fs::path(dir) / "optimizer.safetensors").string());
  read_arena(f, am, "m.");
  read_arena(f, av, "v.");
}

std::string checkpoint_tokenizer(const std::string& dir) {
  const fs::path p = fs::path(dir) / "tokenizer.model";
  return fs::exists(p) ? p.string() : std::string("byte");
}

}  // namespace wersa::io

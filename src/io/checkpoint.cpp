#include "wersa/io/checkpoint.h"

#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <set>

#include "wersa/common/file.h"
#include "wersa/common/json.h"
#include "wersa/common/log.h"
#include "wersa/common/version.h"
#include "wersa/io/safetensors.h"

namespace fs = std::filesystem;

namespace wersa::io {

namespace {

constexpr const char* kModelConfigKey = "model_config";  // model.safetensors metadata: the model section
constexpr const char* kTaskConfigKey = "task_config";    // and the task section (absent: a language model)

void write_json(const fs::path& p, const nlohmann::json& j) { write_file(p.string(), j.dump(2) + "\n"); }

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

// The first element of t that is not finite (or negative, when `nonneg`): its index, else -1.
int64_t first_bad(const Tensor& t, bool nonneg) {
  auto scan = [&](auto* p) -> int64_t {
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(double(p[i])) || (nonneg && p[i] < 0)) return i;
    return -1;
  };
  if (t.dtype == DType::F32) return scan(t.host<float>());
  if (t.dtype == DType::F64) return scan(t.host<double>());
  return -1;
}

// Reads tensor `name` of f into t (on any device: a device tensor through a host copy, checked
// there), then checks that it is finite (and, with nonneg, >= 0).
void read_checked(const SafeTensorsFile& f, const std::string& name, const Tensor& t, bool nonneg) {
  std::vector<char> staging;
  Tensor host = t;
  if (t.device != Device::CPU) {
    staging.resize(t.bytes());
    host = Tensor(staging.data(), t.dtype, Device::CPU, t.shape, t.name);
  }
  f.read_into(name, host);
  const int64_t bad = first_bad(host, nonneg);
  if (bad >= 0) {
    const double v = host.dtype == DType::F32 ? double(host.host<float>()[bad]) : host.host<double>()[bad];
    WERSA_FAIL(f.path(), ": tensor '", name, "' holds ", v, " at element ", bad,
               std::isfinite(v) ? " (a second moment must be >= 0)" : " (weights must be finite)");
  }
  if (t.device != Device::CPU) tensor_copy(t, host);
}

// Reads every tensor of the arenas (prefixed) from f, after checking that f holds exactly those.
void read_exact(const SafeTensorsFile& f, const std::vector<std::pair<const Arena*, std::string>>& arenas,
                const std::string& described_by, bool nonneg_prefix_v) {
  std::set<std::string> want;
  for (const auto& [a, prefix] : arenas)
    for (const Tensor& t : a->tensors()) want.insert(prefix + std::string(t.name));
  for (const SafeTensorEntry& e : f.entries())
    WERSA_CHECK(want.count(e.name), f.path(), ": tensor '", printable(e.name), "' is not one of the ",
                want.size(), " tensors of the model that ", described_by,
                " describes (the config and the tensors disagree)");
  for (const auto& [a, prefix] : arenas)
    for (const Tensor& t : a->tensors()) {
      const std::string name = prefix + std::string(t.name);
      WERSA_CHECK(f.has(name), f.path(), ": no tensor '", name, "', which the model that ", described_by,
                  " describes has (the config and the tensors disagree)");
      read_checked(f, name, t, nonneg_prefix_v && prefix == "v.");
    }
}

// Leaves of a JSON object as "a.b.c" -> value.
void flatten(const nlohmann::json& j, const std::string& prefix, std::map<std::string, nlohmann::json>& out) {
  if (j.is_object()) {
    for (const auto& item : j.items())
      flatten(item.value(), prefix.empty() ? item.key() : prefix + "." + item.key(), out);
    return;
  }
  out[prefix] = j;
}

// The first key where two model sections differ, as "key: A vs B".
std::string first_difference(const nlohmann::json& a, const nlohmann::json& b) {
  std::map<std::string, nlohmann::json> fa, fb;
  flatten(a, "", fa);
  flatten(b, "", fb);
  for (const auto& [k, v] : fa) {
    const auto it = fb.find(k);
    if (it == fb.end())
      return k + " = " + json_brief(v) + " in config.json, absent where the weights were saved";
    if (it->second != v)
      return k + " = " + json_brief(v) + " in config.json, " + json_brief(it->second) +
             " where the weights were saved";
  }
  for (const auto& [k, v] : fb)
    if (!fa.count(k))
      return k + " = " + json_brief(v) + " where the weights were saved, absent in config.json";
  return "?";
}

int64_t get_int(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi, const std::string& where) {
  const auto it = j.find(key);
  WERSA_CHECK(it != j.end(), where, ": '", key, "' is missing");
  WERSA_CHECK(it->is_number_integer(), where, ": '", key, "' must be an integer, got ", json_brief(*it));
  WERSA_CHECK(it->is_number_unsigned() || it->get<int64_t>() >= lo, where, ": '", key, "' is ",
              json_brief(*it), " (expected ", lo, " to ", hi, ")");
  const bool too_big =
      it->is_number_unsigned() ? it->get<uint64_t>() > uint64_t(hi) : it->get<int64_t>() > hi;
  WERSA_CHECK(!too_big, where, ": '", key, "' is ", json_brief(*it), " (expected ", lo, " to ", hi, ")");
  return it->get<int64_t>();
}

bool is_step_dir(const fs::directory_entry& e) {
  const std::string n = e.path().filename().string();
  std::error_code ec;
  return e.is_directory(ec) && n.size() > 5 && n.rfind("step-", 0) == 0 &&
         n.find_first_not_of("0123456789", 5) == std::string::npos;
}

}  // namespace

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%06lld", static_cast<long long>(step));
  return buf;
}

nlohmann::json state_to_json(const CheckpointState& s) {
  return {{"step", s.step}, {"train_pos", s.train_pos}, {"seed", s.seed}, {"tokens_seen", s.tokens_seen}};
}

CheckpointState state_from_json(const nlohmann::json& j, const std::string& where) {
  WERSA_CHECK(j.is_object(), where, ": expected a JSON object, got ", json_brief(j));
  for (const auto& item : j.items()) {
    const std::string& k = item.key();
    WERSA_CHECK(k == "step" || k == "train_pos" || k == "seed" || k == "tokens_seen", where,
                ": unknown key '", printable(k), "' (expected step, train_pos, seed and tokens_seen)");
  }
  CheckpointState s;
  constexpr int64_t kMaxPos = int64_t(1) << 62;
  s.step = get_int(j, "step", 0, 2147483647, where);
  s.train_pos = get_int(j, "train_pos", 0, kMaxPos, where);
  s.tokens_seen = get_int(j, "tokens_seen", 0, kMaxPos, where);
  const auto seed = j.find("seed");
  WERSA_CHECK(seed != j.end(), where, ": 'seed' is missing");
  WERSA_CHECK(seed->is_number_unsigned(), where, ": 'seed' must be an integer >= 0, got ", json_brief(*seed));
  s.seed = seed->get<uint64_t>();
  return s;
}

std::string save_checkpoint(const std::string& run_dir, int64_t step, const CheckpointContents& c) {
  WERSA_ASSERT(c.model, "checkpoint without a model");
  const fs::path final_dir = fs::path(run_dir) / checkpoint_name(step);
  const fs::path tmp = fs::path(run_dir) / (checkpoint_name(step) + ".tmp");
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  WERSA_CHECK(!ec, tmp.string(), ": cannot create directory: ", ec.message());
  // A write that fails (a full disk, a file-size limit) leaves no half-written step-N.tmp behind.
  try {
    std::vector<Tensor> weights(c.model->params_arena().tensors().begin(),
                                c.model->params_arena().tensors().end());
    for (const Tensor& b : c.model->buffers_arena().tensors()) weights.push_back(b);
    WERSA_ASSERT(c.config.contains("model"), "checkpoint config without a model section");
    save_safetensors((tmp / "model.safetensors").string(), weights,
                     {{"format", "pt"},
                      {"engine", "wersa"},
                      {kWrittenByKey, version_line()},
                      {kModelConfigKey, c.config["model"].dump()},
                      {kTaskConfigKey, c.config.value("task", nlohmann::json::object()).dump()}});
    if (c.adam_m && c.adam_v) {
      std::deque<std::string> names;
      std::vector<Tensor> opt = renamed(*c.adam_m, "m.", names);
      for (const Tensor& t : renamed(*c.adam_v, "v.", names)) opt.push_back(t);
      save_safetensors((tmp / "optimizer.safetensors").string(), opt,
                       {{"format", "pt"}, {kWrittenByKey, version_line()}});
    }
    nlohmann::json config = c.config;
    config[kWrittenByKey] = version_line();  // what wrote the checkpoint (version.h)
    write_json(tmp / "config.json", config);
    if (!c.tokenizer_path.empty()) {
      fs::copy_file(c.tokenizer_path, tmp / "tokenizer.model", fs::copy_options::overwrite_existing, ec);
      WERSA_CHECK(!ec, c.tokenizer_path, ": cannot copy tokenizer into the checkpoint: ", ec.message());
    }
    write_json(tmp / "state.json", state_to_json(c.state));  // written last: its presence marks completeness
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
  fs::remove_all(final_dir, ec);
  fs::rename(tmp, final_dir, ec);
  WERSA_CHECK(!ec, final_dir.string(), ": cannot move checkpoint into place: ", ec.message());
  return final_dir.string();
}

CheckpointSearch find_checkpoints(const std::string& run_dir, bool for_resume) {
  CheckpointSearch r;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) return r;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(run_dir, ec))
    if (is_step_dir(e)) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
    const std::string na = a.filename().string(), nb = b.filename().string();
    return na.size() != nb.size() ? na.size() > nb.size() : na > nb;  // newest (largest step) first
  });
  r.found = int64_t(dirs.size());
  for (const fs::path& d : dirs) {
    std::string lacks;
    for (const char* f : {"config.json", "model.safetensors", "state.json", "optimizer.safetensors"}) {
      if (!for_resume && std::string(f) == "optimizer.safetensors") continue;
      if (!fs::is_regular_file(d / f, ec)) {
        lacks = f;
        break;
      }
    }
    if (lacks.empty()) {
      r.newest = d.string();
      break;
    }
    r.skipped.push_back(d.string() + " (lacks " + lacks + ")");
  }
  return r;
}

std::string find_latest_checkpoint(const std::string& run_dir) {
  const CheckpointSearch s = find_checkpoints(run_dir, false);
  for (const std::string& k : s.skipped) spdlog::warn("skipping incomplete checkpoint {}", k);
  return s.newest;
}

void prune_checkpoints(const std::string& run_dir, int keep) {
  WERSA_ASSERT(keep > 0);
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(run_dir, ec))
    if (is_step_dir(e) && fs::is_regular_file(e.path() / "state.json", ec)) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
    const std::string na = a.filename().string(), nb = b.filename().string();
    return na.size() != nb.size() ? na.size() < nb.size() : na < nb;  // oldest first
  });
  for (size_t i = 0; i + size_t(keep) < dirs.size(); ++i) {
    fs::remove_all(dirs[i], ec);
    WERSA_CHECK(!ec, dirs[i].string(), ": cannot delete an old checkpoint (train.keep_last): ", ec.message());
  }
}

std::unique_ptr<Model> load_inference_model(const std::string& dir, const Config& cfg,
                                            const std::string& weights, const std::string& device) {
  WERSA_CHECK(weights == "f32" || weights == "bf16", "--weights: '", weights, "' (expected f32 or bf16)");
  WERSA_CHECK(device == "cpu" || device == "cuda", "--device: '", device, "' (expected cpu or cuda)");
  WERSA_CHECK(device == "cpu" || weights == "f32", "--weights bf16 runs on the cpu (the CUDA backend ",
              "reads f32 weights)");
  WERSA_CHECK(device == "cpu" || cuda_available(), "--device cuda: no CUDA device is available (the ",
              "engine was built without CUDA, or no GPU is visible)");
  auto m = std::make_unique<Model>(cfg.model, DType::F32, Device::CPU, false);
  load_model_weights(dir, *m);
  if (weights == "bf16") m = std::make_unique<Model>(*m, DType::BF16);
  if (device == "cuda") m = std::make_unique<Model>(*m, Device::CUDA);
  return m;
}

Config load_checkpoint_config(const std::string& dir) {
  std::error_code ec;
  WERSA_CHECK(fs::is_directory(dir, ec), dir, ": not a checkpoint directory");
  const fs::path p = fs::path(dir) / "config.json";
  return config_from_json(read_json_file(p.string()), p.string());
}

CheckpointState load_checkpoint_state(const std::string& dir) {
  const fs::path p = fs::path(dir) / "state.json";
  return state_from_json(read_json_file(p.string()), p.string());
}

void load_model_weights(const std::string& dir, Model& m) {
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  const SafeTensorsFile f((fs::path(dir) / "model.safetensors").string());
  const auto saved = f.metadata().find(kModelConfigKey);
  if (saved != f.metadata().end()) {  // files written before this check have none
    const nlohmann::json mine = model_identity(m.config());
    // Through the config parser, so that a setting added to the engine after the file was
    // written takes its default, as it does when config.json is read.
    const std::string where = f.path() + ": metadata '" + kModelConfigKey + "'";
    nlohmann::json sections{{"model", parse_json(saved->second, where)}};
    const auto task = f.metadata().find(kTaskConfigKey);
    if (task != f.metadata().end())
      sections["task"] = parse_json(task->second, f.path() + ": metadata '" + kTaskConfigKey + "'");
    const nlohmann::json theirs = model_identity(config_from_json(sections, where).model);
    WERSA_CHECK(mine == theirs, cfg_path, " disagrees with ", f.path(), ": ", first_difference(mine, theirs));
  }
  read_exact(f, {{&m.params_arena(), ""}, {&m.buffers_arena(), ""}}, cfg_path, false);
}

int load_trunk_weights(const std::string& dir, Model& m) {
  const Config saved = load_checkpoint_config(dir);
  // The trunk's shapes and behaviour come from the model section; the head (tied or untied LM
  // head, or another classifier) and the attention's direction are the new model's own choice.
  auto trunk_of = [](const ModelConfig& mc) {
    nlohmann::json j = model_identity(mc)["model"];
    j.erase("tie_embeddings");
    j["attention"].erase("causal");
    return nlohmann::json{{"model", j}};
  };
  const nlohmann::json mine = trunk_of(m.config()), theirs = trunk_of(saved.model);
  WERSA_CHECK(mine == theirs, dir, ": its trunk is not the one the config describes (",
              first_difference(theirs, mine), "); train.init_from needs the same model section");
  const SafeTensorsFile f((fs::path(dir) / "model.safetensors").string());
  int n = 0;
  auto read = [&](const Tensor& t) {
    const std::string name(t.name);
    if (name.rfind(kClassifierPrefix, 0) == 0) return;  // the head starts afresh
    WERSA_CHECK(f.has(name), f.path(), ": no tensor '", name,
                "' (a trunk needs every tensor of the model section)");
    read_checked(f, name, t, false);
    ++n;
  };
  for (const Tensor& t : m.params_arena().tensors()) read(t);
  for (const Tensor& t : m.buffers_arena().tensors()) read(t);
  return n;
}

void load_optimizer_state(const std::string& dir, Arena& am, Arena& av) {
  const SafeTensorsFile f((fs::path(dir) / "optimizer.safetensors").string());
  read_exact(f, {{&am, "m."}, {&av, "v."}}, (fs::path(dir) / "config.json").string(), true);
}

std::string checkpoint_tokenizer(const std::string& dir) {
  const fs::path p = fs::path(dir) / "tokenizer.model";
  return fs::exists(p) ? p.string() : std::string("byte");
}

}  // namespace wersa::io

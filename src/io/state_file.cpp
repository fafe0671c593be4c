#include "wersa/io/state_file.h"

#include "wersa/common/version.h"
#include "wersa/io/safetensors.h"

namespace wersa {

void save_decode_state(const Model& m, const DecodeState& s, const std::string& path,
                       const std::map<std::string, std::string>& extra) {
  check_decode_state(m, s, 0, "save state");
  const int64_t pos = s.pos();
  std::vector<Tensor> out;
  const auto& ts = s.state_tensors();
  for (size_t i = 0; i < ts.size(); ++i) {
    if (!s.per_position(i))
      out.push_back(ts[i]);
    else if (pos > 0)  // only the rows in use
      out.push_back(ts[i].rows(0, pos));
  }
  if (pos > 0) {
    out.push_back(
        Tensor(const_cast<int32_t*>(s.tokens().data()), DType::I32, Device::CPU, Shape{pos}, "tokens"));
    Tensor logits = s.logits();
    logits.name = "logits";
    out.push_back(logits);
  }
  std::map<std::string, std::string> meta = extra;
  meta["format"] = "wersa-state";
  meta["version"] = "1";
  meta["model_fingerprint"] = model_fingerprint(m);
  meta["position"] = std::to_string(pos);
  meta["attention"] = attention_kind_name(m.config().attention.type);
  meta["dtype"] = dtype_name(m.dtype());
  meta[kWrittenByKey] = version_line();  // and so the checksum the writer adds is required on load
  io::save_safetensors(path, out, meta);
}

void load_decode_state(const Model& m, DecodeState& s, const std::string& path) {
  check_decode_state(m, s, 0, "load state");
  const io::SafeTensorsFile f(path);
  const auto& meta = f.metadata();
  auto get = [&](const char* key) {
    const auto it = meta.find(key);
    WERSA_CHECK(it != meta.end(), path, ": not a wersa state file (no '", key, "' in its metadata)");
    return it->second;
  };
  WERSA_CHECK(get("format") == "wersa-state", path, ": not a wersa state file (format '", get("format"),
              "')");
  WERSA_CHECK(get("version") == "1", path, ": state file version ", get("version"),
              " is not supported (expected 1)");
  const std::string fp = model_fingerprint(m);
  WERSA_CHECK(get("model_fingerprint") == fp, path, ": the state was made by another model (fingerprint ",
              get("model_fingerprint"), ", this model's is ", fp, ")");
  int64_t pos = -1;
  try {
    pos = std::stoll(get("position"));
  } catch (const std::exception&) {
  }
  WERSA_CHECK(pos >= 0, path, ": bad position '", get("position"), "' in the metadata");
  WERSA_CHECK(s.context() == 0 || pos <= s.context(), path, ": the state holds ", pos,
              " tokens, more than the context of ", s.context());
  s.reset();
  const auto& ts = s.state_tensors();
  for (size_t i = 0; i < ts.size(); ++i) {
    const std::string name(ts[i].name);
    if (!s.per_position(i))
      f.read_into(name, ts[i]);
    else if (pos > 0)
      f.read_into(name, ts[i].rows(0, pos));
  }
  std::vector<int32_t> toks(size_t(pos), 0);
  if (pos > 0) {
    f.read_into("tokens", Tensor(toks.data(), DType::I32, Device::CPU, Shape{pos}, "tokens"));
    f.read_into("logits", s.logits());
  }
  s.restore_tokens(std::move(toks));
}

}  // namespace wersa

#include "wersa/train/memory.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "wersa/backend/backend.h"
#include "wersa/model/model.h"
#include "wersa/optim/optimizer.h"

namespace wersa {

std::string MemoryEstimate::str() const {
  return format_bytes(total) + " (parameters " + format_bytes(params) + ", gradients " + format_bytes(grads) +
         ", optimizer " + format_bytes(optimizer) + ", activations " + format_bytes(activations) +
         ", scratch " + format_bytes(scratch) + ")";
}

MemoryEstimate estimate_train_memory(const Config& cfg) {
  const TrainConfig& tc = cfg.train;
  MemoryEstimate e;
  ModelConfig mc = cfg.model;
  // A classifier whose classes come from the data: its head is tiny; plan it with two.
  if (mc.task.classify() && mc.task.num_classes == 0)
    mc.task.num_classes = std::max<int>(2, int(mc.task.labels.size()));
  const Device dev = tc.device == "cuda" ? Device::CUDA : Device::CPU;
  DryRun dry;
  Model model(mc, DType::F32, dev);
  if (tc.precision == "bf16") model.use_bf16_gemms();  // planned before the workspace: its scratch too
  e.params = model.params_arena().bytes() + model.buffers_arena().bytes() + model.shadow_bytes();
  e.grads = model.grads_arena().bytes();
  const size_t before_adam = dry.live(dev);
  AdamW adam(model);
  e.optimizer = dry.live(dev) - before_adam;
  const size_t before_ws = dry.live(dev);
  Workspace ws(model, RunSpec{tc.batch_size, tc.seq_len, true, true, tc.recompute});
  adam.plan(ws.ctx(), tc);
  e.scratch = ws.scratch_bytes();
  e.activations = dry.live(dev) - before_ws - e.scratch;
  e.total = dry.peak(dev);
  return e;
}

size_t memory_limit(size_t max_bytes, Device dev) {
  if (max_bytes > 0) return max_bytes;
  return dev == Device::CUDA ? cuda::memory_available() : host_memory_available();
}

void check_memory(const MemoryEstimate& e, size_t limit, const std::string& what) {
  WERSA_CHECK(limit == 0 || e.total <= limit, what, " needs an estimated ", e.str(),
              ", more than the limit of ", format_bytes(limit),
              " (available memory of the device, or --max-memory); lower train.batch_size or train.seq_len, "
              "or a smaller model");
}

size_t parse_bytes(const std::string& text, const std::string& what) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  double v = -1;
  try {
    if (i > 0) v = std::stod(text.substr(0, i));
  } catch (const std::exception&) {
    v = -1;
  }
  std::string unit = text.substr(i);
  for (char& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();
  if (unit.size() > 1 && unit.back() == 'I') unit.pop_back();
  const std::string units = "KMGT";
  double scale = 1;
  if (unit.size() == 1 && units.find(unit[0]) != std::string::npos)
    scale = std::pow(1024.0, double(units.find(unit[0]) + 1));
  else
    WERSA_CHECK(unit.empty() || unit == "B", what, ": '", text,
                "' is not a size (expected e.g. 512M or 16G)");
  WERSA_CHECK(v > 0 && std::isfinite(v) && v * scale < 9.0e18, what, ": '", text,
              "' is not a size (expected e.g. 512M or 16G)");
  return size_t(v * scale);
}

}  // namespace wersa

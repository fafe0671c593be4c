// Trains two steps of a config (the installed configs/tiny.json) on a text file through the
// library API, into a run directory, and checks what the run wrote: two finite losses, and the
// engine's version line in config.json, in the checkpoint's config.json and in its weights'
// metadata; the checkpoint's config loads back.
// Usage: consumer CONFIG TEXT OUT_DIR. Prints the version line first.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "wersa/common/version.h"
#include "wersa/io/checkpoint.h"
#include "wersa/io/safetensors.h"
#include "wersa/model/config.h"
#include "wersa/train/trainer.h"

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "consumer: FAIL: %s\n", what.c_str());
  return 1;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return fail("usage: consumer CONFIG TEXT OUT_DIR");
  const std::string line = wersa::version_line();
  std::printf("%s\n", line.c_str());
  try {
    wersa::Config cfg = wersa::config_from_file(argv[1]);
    wersa::config_set_all(cfg, {"train.steps=2", "train.warmup_steps=0", "train.eval_every=0",
                                std::string("data.train=") + argv[2], "data.val="});
    wersa::TrainOptions opt;
    opt.out_dir = argv[3];
    const wersa::TrainResult r = wersa::train(cfg, opt);
    if (r.losses.size() != 2) return fail("expected 2 losses, got " + std::to_string(r.losses.size()));
    for (double l : r.losses)
      if (!std::isfinite(l) || l <= 0) return fail("loss " + std::to_string(l));
    std::printf("consumer: trained 2 steps, losses %.4f %.4f\n", r.losses[0], r.losses[1]);

    const std::string run = argv[3];
    const std::string ck = wersa::io::find_latest_checkpoint(run);
    if (ck.empty()) return fail("no checkpoint in " + run);
    for (const std::string& f : {run + "/config.json", ck + "/config.json"}) {
      const nlohmann::json j = read_json(f);
      if (j.value(wersa::kWrittenByKey, std::string()) != line)
        return fail(f + ": no written_by '" + line + "'");
    }
    const auto meta = wersa::io::SafeTensorsFile(ck + "/model.safetensors").metadata();
    const auto it = meta.find(wersa::kWrittenByKey);
    if (it == meta.end() || it->second != line)
      return fail(ck + "/model.safetensors: no written_by metadata");
    const wersa::Config back = wersa::io::load_checkpoint_config(ck);  // accepts written_by
    if (wersa::config_to_json(back) != wersa::config_to_json(cfg)) return fail(ck + ": config differs");
    std::printf("consumer: %s written by %s\n", ck.c_str(), line.c_str());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}

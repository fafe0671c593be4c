// wersa-train: trains a model from a JSON config. See README.md.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "wersa/backend/backend.h"
#include "wersa/common/cli.h"
#include "wersa/common/log.h"
#include "wersa/train/interrupt.h"
#include "wersa/train/trainer.h"

int main(int argc, char** argv) {
  wersa::prepare_cpu_runtime(argv);
  using namespace wersa::cli;
  CLI::App app{"wersa-train: train a causal WERSA (or softmax) language model from a JSON config",
               "wersa-train"};
  std::string config_path, out_dir;
  std::vector<std::string> sets;
  std::string max_memory, device;
  bool resume = false, help_config = false;
  app.add_option("-c,--config", config_path, "JSON config file (see configs/)")->check(existing_file());
  app.add_option("--set", sets, "override a config key: section.key=value (repeatable)")->check(key_value());
  app.add_option(
         "-o,--out", out_dir,
         "run directory: metrics.jsonl, config.json and checkpoints step-NNNNNN/ (created if missing)")
      ->check(output_dir());
  app.add_option("--device", device, "where to train: cpu or cuda (sets train.device)")
      ->check(one_of({"cpu", "cuda"}));
  app.add_flag("--resume", resume, "continue from the newest complete checkpoint in --out");
  app.add_option(
      "--max-memory", max_memory,
      "refuse the run when its memory estimate exceeds this, e.g. 16G (default: the available memory)");
  app.add_flag("--help-config", help_config, "list every config key with its type, default and range");
  return wersa::run_cli([&] {
    std::string help;
    if (wersa::parse_flags(app, argc, argv, &help)) {
      std::fputs(help.c_str(), stdout);
      return 0;
    }
    if (help_config) {
      std::cout << wersa::config_help();
      return 0;
    }
    if (config_path.empty()) wersa::usage_error(app, "--config FILE is required (try configs/tiny.json)");
    if (resume && out_dir.empty()) wersa::usage_error(app, "--resume needs --out DIR (the run directory)");
    wersa::init_logging();
    wersa::Config cfg = wersa::config_from_file(config_path);
    wersa::config_set_all(cfg, sets);
    if (!device.empty()) wersa::config_set_all(cfg, {"train.device=" + device});
    wersa::TrainOptions opt;
    opt.out_dir = out_dir;
    opt.resume = resume;
    if (!max_memory.empty()) {
      try {
        opt.max_memory = wersa::parse_bytes(max_memory, "--max-memory");
      } catch (const wersa::Error& e) {
        wersa::usage_error(app, e.what());
      }
    }
    const wersa::InterruptHandlers handlers;  // a signal: finish the step, checkpoint, stop
    const auto r = wersa::train(cfg, opt);
    if (r.interrupted) {
      std::fprintf(stderr, "error: interrupted by %s after step %lld; %s\n",
                   wersa::signal_name(r.interrupted), static_cast<long long>(r.final_step),
                   r.last_checkpoint.empty()
                       ? "no checkpoint written (no --out)"
                       : ("checkpoint " + r.last_checkpoint + " written; continue with --resume").c_str());
      return 128 + r.interrupted;
    }
    if (!r.val_losses.empty())
      spdlog::info("done: final train loss {:.4f}, val loss {:.4f}", r.losses.empty() ? 0.0 : r.losses.back(),
                   r.val_losses.back().second);
    return 0;
  });
}

// Experiments that compare attention kinds (wersa-experiment): the spec file, the plan of runs it
// implies, and the report (markdown, CSV, JSON tables and gnuplot plots) of the runs' results.
//
// Spec (JSON; unknown keys and wrong types are one-line errors "SPEC: KEY: problem"):
//   mode       "classify" | "lm"
//   base       config file, relative to the current directory (as wersa-train --config)
//   set        ["key=value", ...] applied to every run (config_set_all), paths relative to the
//              current directory (as wersa-train --set)
//   variants   [{"name": "softmax", "set": ["model.attention.type=softmax"]}, ...]
//   lengths    [512, 1024, ...]: train.seq_len of each run
//   seeds      optional [1, 2, 3]: every (variant, length) runs once per seed (train.seed; its
//              pretraining too), named VARIANT-T-seedS; the tables give mean +- sample standard
//              deviation over the seeds that finished, and a second table each seed's run
//   batch_tokens  optional: train.batch_size of each run = max(1, batch_tokens / T), so that
//              every length trains the same tokens per step (and a token budget the same steps)
//   budget     {"steps": N} | {"tokens": N} (lm) | {"epochs": E} (classify), and optionally
//              "seconds": S (a second table of about S seconds of training per run: its steps
//              are S x the training tokens/s of the same (variant, T) budget run, so its whole
//              learning-rate schedule fits in S; SIGINT stops it at 2 S + 30 s at the latest), and
//              "max_steps": N (instead: every timed run is planned over N steps and stopped by
//              SIGINT after S seconds of wall clock)
//   pretrain   classify only, optional: {"data": corpus, "steps": N | "tokens": N, "set": [...]}:
//              an LM per (variant, length) trained on `data` (a .txt file or token shards; a
//              .jsonl[.xz|.gz] corpus is first encoded into shards under OUT/pretrain-data),
//              whose trunk initialises the classifier (train.init_from)
//   eval       classify: {"split": "test", "every": N}: the split of the table, validation every N
//              steps during training; lm: {"data": val data (default data.val), "every": N,
//              "max_tokens": N}
//   max_memory "16G": runs whose estimate_train_memory exceeds it are not started (OOM rows)
//   time_limit {"seconds": S, "probe_steps": N (default 4)}: a training run's whole time is
//              extrapolated from its steps 2..N (the mean of their measured times x its steps);
//              over S it is stopped after step N (SIGINT: a checkpoint is written) and its row
//              says "too slow" with the measured time per step and the extrapolation
//   threads    CPU threads of every child (0 = all cores)
//   reference  classify, optional: {"name": ..., "accuracy": x, "macro_f1": x, "macro_auc": x}
//   title      optional heading of results.md
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wersa/model/config.h"
#include "wersa/train/memory.h"

namespace wersa {

struct ExperimentVariant {
  std::string name;
  std::vector<std::string> set;
};

struct ExperimentSpec {
  std::string path;  // the spec file ("" when parsed from JSON directly)
  std::string title;
  bool classify = true;  // mode
  std::string base;
  std::vector<std::string> set;
  std::vector<ExperimentVariant> variants;
  std::vector<int> lengths;
  std::vector<uint64_t> seeds;                  // empty = one run per cell with the config's train.seed
  int64_t batch_tokens = 0;                     // 0 = the configs' train.batch_size
  int64_t budget_steps = 0, budget_tokens = 0;  // one of steps / tokens / epochs is > 0
  double budget_epochs = 0;
  double seconds = 0;         // > 0: the equal-wall-clock table
  int64_t seconds_steps = 0;  // train.steps of those runs
  bool pretrain = false;
  std::string pretrain_data;
  std::vector<std::string> pretrain_set;
  int64_t pretrain_steps = 0, pretrain_tokens = 0;
  std::string eval_split = "test";  // classify
  std::string eval_data;            // lm ("" = data.val)
  int eval_every = 0;               // 0 = the config's train.eval_every
  int64_t eval_max_tokens = -1;     // lm
  size_t max_memory = 0;            // 0 = no limit
  double time_limit_s = 0;          // 0 = no limit
  int64_t probe_steps = 4;          // steps measured (the first excluded) against time_limit_s
  std::string max_memory_text;
  int threads = 0;
  nlohmann::json reference;  // null or an object
  nlohmann::json raw;        // the spec as read
};

ExperimentSpec experiment_spec_from_json(const nlohmann::json& j, const std::string& source);
ExperimentSpec read_experiment_spec(const std::string& path);

enum class RunKind { Pretrain, Train };

struct PlannedRun {
  RunKind kind = RunKind::Train;
  std::string name;  // directory under OUT/runs: VARIANT-T, VARIANT-T-sS, pretrain-VARIANT-T, each
                     // with -seedN after T when the spec lists seeds
  std::string variant;
  int64_t T = 0;
  bool has_seed = false;  // the spec lists seeds: this run's train.seed is `seed`
  uint64_t seed = 0;
  bool timed = false;             // the equal-wall-clock table
  int budget_run = -1;            // timed runs: index of the budget run of the same (variant, T)
  int pretrain = -1;              // Train runs: index of their pretraining run, -1 = none
  std::vector<std::string> sets;  // every --set given to wersa-train (init_from added when run)
  Config config;                  // base + sets (num_classes resolved for classify)
  int64_t steps = 0;
  int64_t tokens = 0;  // planned: steps x batch x grad_accum x T (classify: a bound)
  MemoryEstimate memory;
  bool oom = false;
};

// train.steps of a timed run: `seconds` of training at the budget run's training rate `tok_per_s`
// (tokens per second of its steps), at least 1; 0 when there is no rate (the run keeps its plan).
int64_t timed_steps_from_rate(const PlannedRun& timed, double seconds, double tok_per_s);

struct ExperimentPlan {
  std::vector<PlannedRun> runs;  // in execution order: a pretraining run before its users
  int64_t train_docs = 0;        // classify: documents of the train split
  int num_classes = 0;           // classify
  std::string encode_input;      // pretrain corpus to encode into `encode_dir` first ("" = none)
  std::string encode_dir;
  std::string eval_data;  // lm: the validation data of the table
};

// The runs of `spec`, their steps, configs and memory estimates, and the OOM decisions
// (estimate > spec.max_memory). `out` is the experiment's output directory (pretrain shards).
ExperimentPlan plan_experiment(const ExperimentSpec& spec, const std::string& out);
// The plan as text (what --dry-run prints).
std::string describe_plan(const ExperimentSpec& spec, const ExperimentPlan& plan);

// ---- results ---------------------------------------------------------------------------------

// What one run produced (OUT/runs/NAME/result.json), see run_result_to_json.
struct RunResult {
  std::string status = "pending";  // ok | oom | too_slow | failed | pending
  int exit_code = 0;
  std::string error;       // last "error:" line of the log when failed
  double wall_s = 0;       // wall time of wersa-train (pretraining included for its users)
  int64_t peak_rss = 0;    // bytes (the larger of pretraining and training)
  int64_t steps_done = 0;  // from metrics.jsonl
  double tokens = 0;       // real tokens trained (metrics.jsonl)
  double flops = 0;        // model FLOPs of the training (pretraining included)
  double tok_per_s = 0;    // training throughput (steps after the first)
  // too_slow: the mean time of the measured steps, the whole training's extrapolated time, and
  // the time limit it exceeded (a rerun with a higher limit continues the run)
  double s_per_step = 0, extrapolated_s = 0, time_limit_s = 0;
  nlohmann::json eval;  // classify: wersa-eval --metrics-json; lm: mean_loss, perplexity, by_position
  // Where it trained: {"cpu", "cores", "blas_kernels", "date"} of the runner when the run ended (null
  // in files of earlier versions). Runs of one table can come from several machines (--import),
  // whose kernels round differently: the tables then say which rows came from where.
  nlohmann::json machine;
};
nlohmann::json run_result_to_json(const RunResult& r);
RunResult run_result_from_json(const nlohmann::json& j, const std::string& source);

// The lines of RUN/metrics.jsonl ([] when it is missing); a torn last line is ignored.
std::vector<nlohmann::json> read_metrics(const std::string& run_dir);
// Steps, real tokens, FLOPs and throughput of a finished run from its metrics.jsonl.
void summarize_metrics(const PlannedRun& run, const std::vector<nlohmann::json>& metrics, RunResult& r);

// results[i] belongs to plan.runs[i] (pretraining runs are not rows of the tables).
std::string results_markdown(const ExperimentSpec& spec, const ExperimentPlan& plan,
                             const std::vector<RunResult>& results);
std::string results_csv(const ExperimentSpec& spec, const ExperimentPlan& plan,
                        const std::vector<RunResult>& results);
nlohmann::json results_json(const ExperimentSpec& spec, const ExperimentPlan& plan,
                            const std::vector<RunResult>& results, const nlohmann::json& meta);
// Writes OUT/plots/*.dat and *.gp and runs gnuplot on each script (SVG). Returns "" on success,
// else one line saying what went wrong (gnuplot missing, or its error).
std::string write_plots(const ExperimentSpec& spec, const ExperimentPlan& plan,
                        const std::vector<RunResult>& results, const std::string& out);

std::string format_flops(double flops);      // "12.3 TFLOP"
std::string format_seconds(double seconds);  // "1:02:03" / "2:03" / "4.1 s"

}  // namespace wersa

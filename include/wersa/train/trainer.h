// Training and evaluation loops over the library: what wersa-train and wersa-eval run, and what
// the whole-model tests call directly.
#pragma once
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "wersa/data/shard.h"
#include "wersa/data/tokenizer.h"
#include "wersa/model/model.h"
#include "wersa/train/memory.h"

namespace wersa {

// Sequential batches over a token stream: sequence b of a batch is tokens [pos, pos+T] (T inputs
// and T shifted targets), and pos advances by T; a sequence that would run past the end wraps to
// 0. The whole state is `pos`, saved in checkpoints.
class Batcher {
 public:
  // pos must lie in [0, ds.size()) (checkpoints are validated before they get here).
  Batcher(const data::TokenDataset& ds, int64_t pos = 0);
  // Fills the workspace's host ids with the next batch, uploads them; returns the counted targets.
  int64_t next(Workspace& ws);
  int64_t pos() const { return pos_; }

 private:
  const data::TokenDataset& ds_;
  int64_t pos_;
  std::vector<int32_t> buf_;
};

struct TrainResult {
  std::vector<double> losses;                          // training loss of every step run by this call
  std::vector<std::pair<int64_t, double>> val_losses;  // (step, loss)
  int64_t final_step = 0;
  int interrupted = 0;          // the signal that stopped the run (0: ran to its end)
  std::string last_checkpoint;  // the checkpoint written last ("" when none)
  MemoryEstimate memory;        // the run's estimate, checked before allocating
  // Classifier runs: (step, validation accuracy, macro ROC AUC) of each evaluation.
  std::vector<std::array<double, 3>> val_metrics;
};

struct TrainOptions {
  std::string out_dir;  // run directory: metrics.jsonl and checkpoints ("" = none)
  bool resume = false;  // continue from the newest complete checkpoint in out_dir
  bool quiet = false;   // no per-step log lines
  int64_t stop_after =
      -1;                 // stop (as if interrupted) after this many steps of this call; -1 = run to the end
  size_t max_memory = 0;  // refuse a run whose estimate exceeds this (0: the available memory)
};

// Trains cfg (a classifier: train_classifier in classify.h). With out_dir: the directory is locked (a second
// trainer on it is refused), metrics and checkpoints are written there, every write checked. When
// InterruptHandlers are installed, a signal ends the run after the current step with a checkpoint
// (result.interrupted).
TrainResult train(const Config& cfg, const TrainOptions& opt);
TrainResult train_classifier(const Config& cfg, const TrainOptions& opt);

struct EvalResult {
  double mean_loss = 0;  // nats per token
  int64_t tokens = 0;
  double seconds = 0;
};
// Mean next-token loss over a token stream, in windows of `seq` inputs starting at positions
// 0, seq, 2 seq, ... (the last one shorter). per_token(pos, token, nll) receives every
// predicted position (pos = index of the predicted token in the stream).
EvalResult evaluate(Model& m, const data::TokenDataset& ds, int64_t seq, int64_t batch,
                    int64_t max_tokens = -1,
                    const std::function<void(int64_t, int32_t, double)>& per_token = {});

}  // namespace wersa

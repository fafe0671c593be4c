// Long-document classification (task.type classify): the data of a run, its training loop and its
// evaluation. Documents come from one JSON Lines file (data.train: records with text, label and,
// optionally, split; without a split field, a seeded stratified split by data.val_fraction and
// data.test_fraction), are tokenized once and truncated to train.seq_len tokens (data.truncate),
// and are batched by length (data/labeled.h), each batch padded to its longest document only.
// A training step runs grad_accum batches of train.batch_size documents; evaluation runs every
// document of the validation split once. The classes (task.labels, task.num_classes) are resolved
// from the data and saved in the run's config.json.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "wersa/data/labeled.h"
#include "wersa/data/tokenizer.h"
#include "wersa/model/model.h"
#include "wersa/train/metrics.h"
#include "wersa/train/trainer.h"

namespace wersa {

struct ClassifyData {
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::string tokenizer_spec;
  data::LabelMap labels;
  data::DocumentSet docs;
};
// Reads and tokenizes cfg's documents, resolving cfg.model.task.labels and num_classes from the
// data (or checking the data against the labels the config names). `path` = "" reads data.train.
ClassifyData load_classify_data(Config& cfg, const std::string& tokenizer_spec, const std::string& path = "",
                                bool quiet = false);

struct ClassifyEval {
  double loss = 0;            // mean cross-entropy over the documents (nats)
  ClassMetrics metrics;       // accuracy, macro-F1, macro ROC AUC, confusion, per class
  std::vector<int64_t> docs;  // the documents evaluated, in the order of `probs`
  std::vector<float> probs;   // docs.size() x C class probabilities
  int64_t tokens = 0;         // real tokens read
  double seconds = 0;
};
// Every document of `docs` once, in batches of up to `batch` documents of similar length.
ClassifyEval evaluate_classifier(Model& m, const data::DocumentSet& set, const std::vector<int64_t>& docs,
                                 int64_t batch);

// The classification training loop (train() calls it for task.type classify).
TrainResult train_classifier(const Config& cfg, const TrainOptions& opt);

}  // namespace wersa

// The classifier end to end on real text: training learns a separable task (novels against
// papers: synthetic abstracts everywhere, and arXiv's where ../shared/data is present), the run saves its
// resolved classes, resuming is bitwise identical, wersa-eval reproduces the trainer's evaluation and writes
// predictions, and train.init_from loads an LM's trunk.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "synthdata.h"
#include "testutil.h"
#include "trainutil.h"
#include "wersa/data/labeled.h"
#include "wersa/io/checkpoint.h"
#include "wersa/train/classify.h"
#include "wersa/train/trainer.h"

using namespace wersa;
using namespace wersa::test;
namespace fs = std::filesystem;

namespace {

// `per_class` documents of `bytes` bytes each: passages of novels (label "novel", real_text) and
// the openings of papers (label "arxiv"), interleaved, no split field. The papers are those of
// ../shared/data/arxiv11.jsonl.xz with `real` (the caller checks that it is present), else
// synthetic abstracts of tests/synthdata.h, so that every test runs on every machine.
std::string novels_vs_papers(const fs::path& dir, int per_class, size_t bytes, bool real = false) {
  std::vector<std::pair<std::string, std::string>> papers;  // id, text
  if (real) {
    data::LabeledReadOptions ro;
    ro.max_records = per_class;
    for (const data::LabeledRecord& r : data::read_labeled_jsonl(shared_data("arxiv11.jsonl.xz"), ro).records)
      papers.emplace_back(r.id, r.text);
  } else {
    for (const SynthRecord& r : synthetic_arxiv(per_class, bytes, bytes, false))
      papers.emplace_back(r.id, r.text);
  }
  EXPECT_EQ(papers.size(), size_t(per_class));
  const std::string novels = real_text(size_t(per_class) * bytes * 2);
  const fs::path p = dir / (real ? "docs.jsonl" : "synthetic.jsonl");
  std::ofstream f(p);
  for (int i = 0; i < per_class; ++i) {
    const std::string passage = utf8_prefix(novels.substr(size_t(i) * bytes * 2), bytes);
    f << nlohmann::json{{"id", "n" + std::to_string(i)}, {"text", passage}, {"label", "novel"}}.dump()
      << "\n";
    f << nlohmann::json{{"id", papers[size_t(i)].first},
                        {"text", utf8_prefix(papers[size_t(i)].second, bytes - bytes / 4 * size_t(i % 3))},
                        {"label", "arxiv"}}
             .dump()
      << "\n";
  }
  return p.string();
}

Config classifier_config(const std::string& docs) {
  Config c = config_from_file(source_dir() + "/configs/tiny.json");
  c.model.task.type = "classify";
  c.data.train = docs;
  c.data.val = "";
  c.data.val_fraction = 0.2, c.data.test_fraction = 0.2;
  c.train.steps = 30;
  c.train.seq_len = 160;
  c.train.batch_size = 4;
  c.train.warmup_steps = 3;
  c.train.lr = 3e-3;
  c.train.eval_every = 30;
  c.train.threads = 2;
  return c;
}

// The lines of metrics.jsonl that carry `key`.
std::vector<nlohmann::json> metric_lines(const fs::path& run, const std::string& key) {
  std::ifstream f(run / "metrics.jsonl");
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(f, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains(key)) out.push_back(j);
  }
  return out;
}

}  // namespace

namespace {

// Trains on `docs` (40 documents of each class), then evaluates with wersa-eval.
void learns_and_eval_reproduces(const TempDir& dir, const std::string& docs) {
  const Config c = classifier_config(docs);
  TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = dir / "run";
  fs::remove_all(opt.out_dir);
  const TrainResult r = train(c, opt);
  ASSERT_EQ(r.losses.size(), 30u);
  ASSERT_EQ(r.val_metrics.size(), 1u);
  // Two classes that differ in every byte statistic: a working classifier separates them.
  EXPECT_GE(r.val_metrics[0][1], 0.9) << "validation accuracy";
  EXPECT_GE(r.val_metrics[0][2], 0.95) << "validation macro ROC AUC";
  EXPECT_LT(r.val_losses[0].second, std::log(2.0) * 0.6);
  // The run saved the classes it resolved from the data (sorted names).
  const Config saved = io::load_checkpoint_config(r.last_checkpoint);
  EXPECT_EQ(saved.model.task.labels, (std::vector<std::string>{"arxiv", "novel"}));
  EXPECT_EQ(saved.model.task.num_classes, 2);
  const auto val = metric_lines(opt.out_dir, "val_accuracy");
  ASSERT_EQ(val.size(), 1u);
  EXPECT_EQ(val[0].at("val_docs").get<int64_t>(), 16);  // 20% of each class of 40

  // wersa-eval on the checkpoint: the same documents, the same figures.
  const std::string pred = dir / "pred.tsv", mj = dir / "metrics.json";
  const ToolRun e = run_tool("wersa-eval -m " + opt.out_dir + " --split validation --predictions " + pred +
                             " --metrics-json " + mj + " --threads 2");
  ASSERT_EQ(e.status, 0) << e.err;
  const auto j = nlohmann::json::parse(read_file(mj));
  EXPECT_NEAR(j.at("accuracy").get<double>(), val[0].at("val_accuracy").get<double>(), 1e-12);
  EXPECT_NEAR(j.at("loss").get<double>(), val[0].at("val_loss").get<double>(), 1e-6);
  EXPECT_NE(e.out.find("accuracy"), std::string::npos) << e.out;
  std::istringstream tsv(read_file(pred));
  std::string line;
  std::getline(tsv, line);
  EXPECT_EQ(line, "doc\tlabel\tpredicted\tp_arxiv\tp_novel");
  int rows = 0;
  while (std::getline(tsv, line)) {
    ++rows;
    std::istringstream cols(line);
    std::string doc, label, predicted;
    double p0 = 0, p1 = 0;
    cols >> doc >> label >> predicted >> p0 >> p1;
    EXPECT_NEAR(p0 + p1, 1.0, 1e-5) << line;
    EXPECT_EQ(predicted, p0 >= p1 ? "arxiv" : "novel") << line;
  }
  EXPECT_EQ(rows, 16);
  // The test split is there too, never seen in training.
  const ToolRun t = run_tool("wersa-eval -m " + opt.out_dir + " --split test --threads 2");
  ASSERT_EQ(t.status, 0) << t.err;
  EXPECT_NE(t.out.find("documents 16"), std::string::npos) << t.out;
}

}  // namespace

// On synthetic papers everywhere, and on real ones where ../shared/data has them.
TEST(ClassifyTrain, LearnsNovelsFromPapersAndEvalReproducesIt) {
  const TempDir dir("classify");
  {
    SCOPED_TRACE("synthetic papers");
    learns_and_eval_reproduces(dir, novels_vs_papers(dir.path, 40, 700));
  }
  if (!shared_data("arxiv11.jsonl.xz").empty()) {
    SCOPED_TRACE("arxiv11 papers");
    learns_and_eval_reproduces(dir, novels_vs_papers(dir.path, 40, 700, true));
  }
}

TEST(ClassifyTrain, ResumeIsBitwiseIdentical) {
  const TempDir dir("classify-resume");
  const std::string docs = novels_vs_papers(dir.path, 20, 400);
  Config c = classifier_config(docs);
  c.train.steps = 12, c.train.checkpoint_every = 5, c.train.grad_accum = 2, c.train.eval_every = 0;
  c.train.freeze_trunk_steps = 3;  // the freeze is part of what resumes
  TrainOptions full;
  full.quiet = true;
  full.out_dir = dir / "full";
  const TrainResult a = train(c, full);
  TrainOptions part = full;
  part.out_dir = dir / "part";
  part.stop_after = 7;
  train(c, part);
  part.stop_after = -1, part.resume = true;
  const TrainResult b = train(c, part);
  ASSERT_EQ(b.losses.size(), a.losses.size() - 5);
  for (size_t i = 0; i < b.losses.size(); ++i) EXPECT_EQ(b.losses[i], a.losses[i + 5]) << "step " << i + 6;
  EXPECT_EQ(metric_lines(part.out_dir, "loss").size(), 12u);
}

TEST(ClassifyTrain, InitFromTakesAnLmTrunkAndChecksIt) {
  const TempDir dir("classify-init");
  const std::string docs = novels_vs_papers(dir.path, 10, 300);
  Config lm = tiny_config(dir.path);
  lm.train.steps = 3;
  TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = dir / "lm";
  const std::string ck = train(lm, opt).last_checkpoint;
  Config c = classifier_config(docs);
  c.model.task.num_classes = 2;
  Model m(c.model, DType::F32);
  m.init(99);
  const int n = io::load_trunk_weights(ck, m);
  Model ref(lm.model, DType::F32, Device::CPU, false);
  io::load_model_weights(ck, ref);
  int same = 0;
  for (const Tensor& t : m.params_arena().tensors()) {
    if (std::string(t.name).rfind(kClassifierPrefix, 0) == 0) continue;
    for (const Tensor& u : ref.params_arena().tensors())
      if (std::string(u.name) == std::string(t.name)) {
        ASSERT_EQ(t.numel(), u.numel());
        EXPECT_EQ(std::memcmp(t.data, u.data, size_t(t.numel()) * 4), 0) << t.name;
        ++same;
      }
  }
  EXPECT_EQ(n, same + int(m.buffers_arena().tensors().size()));
  EXPECT_GT(same, 10);
  // Another trunk is refused, naming what differs.
  c.model.dim = 48;
  Model other(c.model, DType::F32);
  expect_error_contains([&] { io::load_trunk_weights(ck, other); }, "model.dim");
  // Through the trainer: init_from runs, and the tokenizer follows the checkpoint's.
  c = classifier_config(docs);
  c.train.init_from = ck, c.train.steps = 2, c.train.warmup_steps = 1, c.train.eval_every = 0;
  TrainOptions o2;
  o2.quiet = true;
  EXPECT_EQ(train(c, o2).losses.size(), 2u);
}

TEST(ClassifyTrain, UserErrorsAreOneLine) {
  const TempDir dir("classify-errors");
  const std::string docs = novels_vs_papers(dir.path, 5, 200);
  Config c = classifier_config(docs);
  TrainOptions opt;
  opt.quiet = true;
  c.data.val = docs;
  expect_error_contains([&] { train(c, opt); }, "data.val");
  c = classifier_config(docs);
  c.model.task.labels = {"arxiv", "poetry"};
  expect_error_contains([&] { train(c, opt); }, "novel");
  c = classifier_config(docs);
  c.model.task.num_classes = 3;
  expect_error_contains([&] { train(c, opt); }, "task.num_classes: 3");
}

// wersa-experiment: the spec and its errors, the plan (steps from the budget, memory estimates and
// OOM decisions from the real estimate_train_memory), model FLOPs against hand counts, and real
// end-to-end experiments (mode lm on real text, mode classify with pretraining on a few arxiv11
// papers) whose tables must agree with the runs' own files, and whose finished runs are skipped
// when the command is run again.
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "synthdata.h"
#include "testutil.h"
#include "trainutil.h"
#include "wersa/backend/backend.h"
#include "wersa/common/json.h"
#include "wersa/io/checkpoint.h"
#include "wersa/model/flops.h"
#include "wersa/train/experiment.h"
#include "wersa/train/memory.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace wersa;
using namespace wersa::test;

namespace {

std::string tiny() { return source_dir() + "/configs/tiny.json"; }

json lm_spec(const std::string& train, const std::string& val) {
  return {
      {"mode", "lm"},
      {"base", tiny()},
      {"set", {"data.train=" + train, "train.batch_size=2", "train.warmup_steps=1", "train.eval_every=0"}},
      {"variants",
       {{{"name", "softmax"}, {"set", {"model.attention.type=softmax"}}},
        {{"name", "wersa"}, {"set", json::array()}}}},
      {"lengths", {32, 64}},
      {"budget", {{"steps", 4}}},
      {"eval", {{"data", val}, {"every", 2}, {"max_tokens", 2000}}},
      {"threads", 2}};
}

ExperimentSpec parse(const json& j) { return experiment_spec_from_json(j, "spec.json"); }

json edited(json j, const std::string& key, const json& value) {
  if (value.is_null())
    j.erase(key);
  else
    j[key] = value;
  return j;
}

std::vector<std::string> csv_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    out.push_back(text.substr(pos, end - pos));
    pos = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

std::string fixed4(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

int64_t mtime_ns(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

void expect_svg(const std::string& path) {
  ASSERT_TRUE(fs::exists(path)) << path;
  const std::string s = read_file(path);
  EXPECT_TRUE(s.rfind("<?xml", 0) == 0 || s.rfind("<svg", 0) == 0) << path << ": " << s.substr(0, 60);
}

// Training-step lines of RUN/metrics.jsonl (steps 1, 2, ... in order, each once).
int step_lines(const std::string& run) {
  int n = 0;
  for (const json& m : read_metrics(run))
    if (m.contains("loss")) EXPECT_EQ(m.at("step").get<int>(), ++n) << run;
  return n;
}

bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

}  // namespace

TEST(ExperimentSpec, ParsesAndRefusesWithOneLineErrors) {
  const json good = lm_spec("t.txt", "v.txt");
  const ExperimentSpec s = parse(good);
  EXPECT_FALSE(s.classify);
  EXPECT_EQ(s.variants.size(), 2u);
  EXPECT_EQ(s.variants[0].set, std::vector<std::string>{"model.attention.type=softmax"});
  EXPECT_EQ(s.lengths, (std::vector<int>{32, 64}));
  EXPECT_EQ(s.budget_steps, 4);
  EXPECT_EQ(s.eval_every, 2);
  EXPECT_EQ(s.eval_max_tokens, 2000);
  EXPECT_EQ(s.time_limit_s, 0);
  const ExperimentSpec limited = parse(edited(good, "time_limit", {{"seconds", 90.5}}));
  EXPECT_EQ(limited.time_limit_s, 90.5);
  EXPECT_EQ(limited.probe_steps, 4);

  const std::vector<std::pair<json, std::string>> bad = {
      {edited(good, "lenghts", json::array({1})), "spec.json: unknown key 'lenghts'"},
      {edited(good, "time_limit", {{"probe_steps", 3}}), "spec.json: time_limit.seconds: is missing"},
      {edited(good, "time_limit", {{"seconds", -1}}), "spec.json: time_limit.seconds: expected"},
      {edited(good, "time_limit", {{"seconds", 60}, {"probe_steps", 1}}), "time_limit.probe_steps: expected"},
      {edited(good, "time_limit", {{"seconds", 60}, {"probes", 3}}), "unknown key 'time_limit.probes'"},
      {edited(good, "mode", "regress"), "spec.json: mode: expected \"classify\" or \"lm\""},
      {edited(good, "mode", nullptr), "spec.json: mode: is missing"},
      {edited(good, "base", 3), "spec.json: base: expected a non-empty string"},
      {edited(good, "set", json::array({"dim"})), "spec.json: set: expected \"section.key=value\""},
      {edited(good, "variants", json::array()), "spec.json: variants: expected a non-empty list"},
      {edited(good, "variants", json::array({{{"name", "a"}, {"sett", json::array()}}})),
       "spec.json: unknown key 'variants[0].sett'"},
      {edited(good, "variants", json::array({{{"name", "a"}}, {{"name", "a"}}})),
       "variants[1].name: 'a' is used twice"},
      {edited(good, "variants", json::array({{{"name", "a/b"}}})),
       "variants[0].name: 'a/b' names a directory"},
      {edited(good, "lengths", json::array({32, 0})),
       "spec.json: lengths[1]: expected an integer in [1, 1048576]"},
      {edited(good, "lengths", json::array({32, 32})), "lengths[1]: 32 is listed twice"},
      {edited(good, "budget", {{"steps", 4}, {"tokens", 100}}), "budget: expected exactly one of steps"},
      {edited(good, "budget", {{"epochs", 1}}), "budget.epochs: is for mode classify"},
      {edited(good, "budget", {{"steps", 4}, {"max_steps", 9}}),
       "budget.max_steps: only with budget.seconds"},
      {edited(good, "budget", {{"steps", 4}, {"seconds", -1}}), "budget.seconds: expected a number > 0"},
      {edited(good, "eval", {{"split", "test"}}), "spec.json: unknown key 'eval.split'"},
      {edited(good, "pretrain", {{"data", "x.txt"}, {"steps", 2}}), "pretrain: is for mode classify"},
      {edited(good, "max_memory", "lots"), "max_memory"},
      {edited(good, "threads", -1), "spec.json: threads: expected an integer in [0, 4096]"},
      {edited(good, "seeds", json::array()), "spec.json: seeds: expected a non-empty list"},
      {edited(good, "seeds", json::array({1, -2})), "spec.json: seeds[1]: expected an integer >= 0, got -2"},
      {edited(good, "seeds", json::array({1, 0.5})), "spec.json: seeds[1]: expected an integer >= 0"},
      {edited(good, "seeds", json::array({3, 3})), "spec.json: seeds[1]: 3 is listed twice"},
  };
  for (const auto& item : bad) {
    const auto& j = item.first;  // a named variable: C++17 lambdas cannot capture structured bindings
    expect_error_contains([&] { parse(j); }, item.second);
  }

  json c = good;
  c["mode"] = "classify";
  c.erase("eval");
  c["budget"] = {{"tokens", 1000}};
  expect_error_contains([&] { parse(c); }, "budget.tokens: is for mode lm");
  c["budget"] = {{"epochs", 2}};
  c["eval"] = {{"split", "dev"}};
  expect_error_contains([&] { parse(c); }, "eval.split: expected \"test\", \"validation\" or \"train\"");
  c["eval"] = {{"split", "test"}};
  c["reference"] = {{"name", "bow"}, {"accuracy", 1.5}};
  expect_error_contains([&] { parse(c); }, "reference.accuracy: expected a number in [0, 1]");
  c["reference"] = {{"name", "bow"}, {"accuracy", 0.83}, {"macro_auc", 0.98}};
  EXPECT_TRUE(parse(c).classify);

  // A bad override names the spec and the run.
  TempDir dir("exp_spec");
  json wrong = good;
  wrong["variants"][1]["set"] = {"model.attention.type=quadratic"};
  const ExperimentSpec ws = parse(wrong);
  expect_error_contains([&] { plan_experiment(ws, dir.path.string()); }, "spec.json: variant wersa, T 32");
  // Every shipped example parses.
  int shipped = 0;
  for (const auto& f : fs::directory_iterator(source_dir() + "/configs/experiments")) {
    if (f.path().extension() != ".json") continue;
    EXPECT_NO_THROW(read_experiment_spec(f.path().string())) << f.path();
    ++shipped;
  }
  EXPECT_GE(shipped, 2);
}

TEST(ExperimentPlan, StepsFromTheBudgetAndOomFromTheRealEstimate) {
  TempDir dir("exp_plan");
  const std::string text = write_text(dir.path, 0, 5000);
  json j = lm_spec(text, text);
  j["budget"] = {
      {"tokens", 1000}};  // batch 2 x T: ceil(1000 / 64) = 16 steps at T 32, ceil(1000 / 128) = 8 at T 64
  j["lengths"] = {32, 64, 4096};
  ExperimentSpec s = parse(j);
  ExperimentPlan p = plan_experiment(s, dir.path.string());
  ASSERT_EQ(p.runs.size(), 6u);
  EXPECT_EQ(p.runs[0].name, "softmax-32");
  EXPECT_EQ(p.runs[0].steps, 16);
  EXPECT_EQ(p.runs[1].steps, 8);
  EXPECT_EQ(p.runs[2].steps, 1);
  EXPECT_EQ(p.runs[0].config.train.seq_len, 32);
  EXPECT_EQ(p.runs[3].config.model.attention.type, AttentionKind::Wersa);
  EXPECT_EQ(p.runs[0].config.model.attention.type, AttentionKind::Softmax);
  EXPECT_EQ(p.runs[0].tokens, 16 * 2 * 32);
  for (const PlannedRun& r : p.runs) EXPECT_FALSE(r.oom) << r.name;  // no limit

  // The limit halfway between the two kinds' estimates at T = 4096 (computed here independently):
  // this engine's softmax is flash-style (O(T) memory) and stores less per token than WERSA, so
  // the long WERSA run is the one refused, and everything at short T fits.
  Config soft = config_from_file(tiny()), wersa = soft;
  config_set_all(soft, {"data.train=" + text, "train.batch_size=2", "train.warmup_steps=1",
                        "train.seq_len=4096", "model.attention.type=softmax", "train.steps=1"});
  config_set_all(wersa, {"data.train=" + text, "train.batch_size=2", "train.warmup_steps=1",
                         "train.seq_len=4096", "train.steps=1"});
  const size_t es = estimate_train_memory(soft).total, ew = estimate_train_memory(wersa).total;
  ASSERT_LT(es, ew);
  EXPECT_EQ(p.runs[2].memory.total, es);
  EXPECT_EQ(p.runs[5].memory.total, ew);
  j["max_memory"] = std::to_string((es + ew) / 2);
  s = parse(j);
  p = plan_experiment(s, dir.path.string());
  for (const PlannedRun& r : p.runs) EXPECT_EQ(r.oom, r.name == "wersa-4096") << r.name;
  EXPECT_NE(describe_plan(s, p).find("OOM: not started"), std::string::npos);

  // Equal wall clock: a second run per (variant, T), planned over max_steps.
  j["budget"] = {{"steps", 3}, {"seconds", 2.5}, {"max_steps", 50}};
  s = parse(j);
  p = plan_experiment(s, dir.path.string());
  ASSERT_EQ(p.runs.size(), 12u);
  EXPECT_EQ(p.runs[1].name, "softmax-32-s2.5");
  EXPECT_TRUE(p.runs[1].timed);
  EXPECT_EQ(p.runs[1].steps, 50);
  EXPECT_EQ(p.runs[0].steps, 3);
  EXPECT_EQ(p.runs[1].budget_run, 0);
  EXPECT_EQ(p.runs[0].budget_run, -1);
  {
    const std::string text = describe_plan(s, p);
    EXPECT_NE(text.substr(text.find("softmax-32-s2.5"), 80).find("steps 50"), std::string::npos) << text;
  }

  // Without max_steps a timed run trains seconds x the budget run's rate: 2.5 s at 1000 tokens/s
  // are 2500 tokens, 2500 / (batch x T) whole steps.
  j["budget"] = {{"steps", 3}, {"seconds", 2.5}};
  s = parse(j);
  p = plan_experiment(s, dir.path.string());
  ASSERT_EQ(p.runs.size(), 12u);
  for (size_t i = 0; i < p.runs.size(); ++i)
    if (p.runs[i].timed) {
      ASSERT_GE(p.runs[i].budget_run, 0);
      const PlannedRun& b = p.runs[size_t(p.runs[i].budget_run)];
      EXPECT_FALSE(b.timed);
      EXPECT_EQ(b.variant, p.runs[i].variant);
      EXPECT_EQ(b.T, p.runs[i].T);
    }
  const PlannedRun& t = p.runs[1];
  const int64_t per_step = int64_t(t.config.train.batch_size) * t.config.train.grad_accum * t.T;
  EXPECT_EQ(timed_steps_from_rate(t, 2.5, 1000.0), std::max<int64_t>(1, 2500 / per_step));
  EXPECT_EQ(timed_steps_from_rate(t, 2.5, 1000.0 * double(per_step)), 2500);
  EXPECT_EQ(timed_steps_from_rate(t, 2.5, 1e-9), 1);  // at least one step
  EXPECT_EQ(timed_steps_from_rate(t, 2.5, 0.0), 0);   // no rate: keep the plan
  const std::string plan_text = describe_plan(s, p);
  EXPECT_NE(plan_text.find("at the rate of its budget run"), std::string::npos);
  // Its steps are not known before its budget run has finished: the plan does not invent them.
  const std::string timed_line = plan_text.substr(plan_text.find("softmax-32-s2.5"), 80);
  EXPECT_NE(timed_line.find("steps -"), std::string::npos) << timed_line;

  // Equal tokens per step: batch_tokens / T sequences (at least one), so a token budget is the
  // same number of steps at every length.
  j["budget"] = {{"tokens", 1024}};
  j["batch_tokens"] = 128;
  s = parse(j);
  p = plan_experiment(s, dir.path.string());
  ASSERT_EQ(p.runs.size(), 6u);
  EXPECT_EQ(p.runs[0].config.train.batch_size, 4);  // T 32
  EXPECT_EQ(p.runs[1].config.train.batch_size, 2);  // T 64
  EXPECT_EQ(p.runs[2].config.train.batch_size, 1);  // T 4096: one sequence
  EXPECT_EQ(p.runs[0].steps, 8);
  EXPECT_EQ(p.runs[1].steps, 8);
  EXPECT_EQ(p.runs[2].steps, 1);
  expect_error_contains([&] { parse(edited(j, "batch_tokens", 0)); },
                        "spec.json: batch_tokens: expected an integer");
}

TEST(ExperimentPlan, ClassifyEpochsAndPretraining) {
  TempDir dir("exp_plan_cls");
  // 3 classes; 10 train, 3 validation, 2 test documents.
  std::string jsonl;
  for (int i = 0; i < 15; ++i)
    jsonl += json{{"id", i},
                  {"text", "document number " + std::to_string(i)},
                  {"label", "c" + std::to_string(i % 3)},
                  {"split", i < 10   ? "train"
                            : i < 13 ? "validation"
                                     : "test"}}
                 .dump() +
             "\n";
  write_file(dir / "docs.jsonl", jsonl);
  const std::string text = write_text(dir.path, 0, 5000);
  json j = {{"mode", "classify"},
            {"base", tiny()},
            {"set",
             {"task.type=classify", "data.train=" + (dir / "docs.jsonl"), "data.val=", "train.batch_size=4",
              "train.grad_accum=1", "train.warmup_steps=1"}},
            {"variants", {{{"name", "wersa"}}}},
            {"lengths", {64}},
            {"budget", {{"epochs", 2.5}}},
            {"pretrain", {{"data", text}, {"steps", 3}, {"set", {"train.lr=0.002"}}}}};
  const ExperimentSpec s = parse(j);
  const ExperimentPlan p = plan_experiment(s, dir.path.string());
  EXPECT_EQ(p.train_docs, 10);
  EXPECT_EQ(p.num_classes, 3);
  ASSERT_EQ(p.runs.size(), 2u);
  EXPECT_EQ(p.runs[0].kind, RunKind::Pretrain);
  EXPECT_EQ(p.runs[0].name, "pretrain-wersa-64");
  EXPECT_EQ(p.runs[0].steps, 3);
  EXPECT_FALSE(p.runs[0].config.model.task.classify());
  EXPECT_EQ(p.runs[0].config.data.train, text);
  EXPECT_EQ(p.runs[0].config.train.lr, 0.002);
  EXPECT_EQ(p.runs[1].pretrain, 0);
  EXPECT_EQ(p.runs[1].steps, 8);  // ceil(2.5 x ceil(10 / 4))
  EXPECT_EQ(p.runs[1].config.model.task.num_classes, 3);
  EXPECT_TRUE(p.encode_input.empty());  // a .txt corpus is used as it is
  j["pretrain"]["data"] = dir / "docs.jsonl";
  const ExperimentPlan q = plan_experiment(parse(j), dir.path.string());
  EXPECT_EQ(q.encode_input, dir / "docs.jsonl");
  EXPECT_EQ(q.runs[0].config.data.train, q.encode_dir + "/train_*.bin");
}

TEST(ExperimentPlan, SeedsRunEveryCellOncePerSeedWithItsOwnPretraining) {
  TempDir dir("exp_plan_seeds");
  const std::string text = write_text(dir.path, 0, 5000);
  std::string jsonl;
  for (int i = 0; i < 12; ++i)
    jsonl += json{{"text", "paper " + std::to_string(i)}, {"label", i % 2 ? "a" : "b"}}.dump() + "\n";
  write_file(dir / "docs.jsonl", jsonl);
  json j = {
      {"mode", "classify"},
      {"base", tiny()},
      {"set",
       {"task.type=classify", "data.train=" + (dir / "docs.jsonl"), "data.val=", "train.batch_size=2",
        "train.warmup_steps=1"}},
      {"variants", {{{"name", "softmax"}, {"set", {"model.attention.type=softmax"}}}, {{"name", "wersa"}}}},
      {"lengths", {32}},
      {"seeds", {7, 8}},
      {"budget", {{"steps", 2}, {"seconds", 1}}},
      {"pretrain", {{"data", text}, {"steps", 2}}}};
  const ExperimentSpec s = parse(j);
  EXPECT_EQ(s.seeds, (std::vector<uint64_t>{7, 8}));
  const ExperimentPlan p = plan_experiment(s, dir.path.string());
  // Per variant and seed: pretraining, budget run, timed run.
  ASSERT_EQ(p.runs.size(), 12u);
  const std::vector<std::string> names = {
      "pretrain-softmax-32-seed7", "softmax-32-seed7", "softmax-32-seed7-s1",
      "pretrain-softmax-32-seed8", "softmax-32-seed8", "softmax-32-seed8-s1",
      "pretrain-wersa-32-seed7",   "wersa-32-seed7",   "wersa-32-seed7-s1",
      "pretrain-wersa-32-seed8",   "wersa-32-seed8",   "wersa-32-seed8-s1"};
  for (size_t i = 0; i < names.size(); ++i) {
    const PlannedRun& r = p.runs[i];
    EXPECT_EQ(r.name, names[i]);
    EXPECT_TRUE(r.has_seed);
    const uint64_t want = (i / 3) % 2 ? 8 : 7;
    EXPECT_EQ(r.seed, want) << r.name;
    EXPECT_EQ(r.config.train.seed, want) << r.name;  // the child gets it through --set
    if (r.kind == RunKind::Train) {
      EXPECT_EQ(r.pretrain, int(i / 3 * 3)) << r.name;  // its own seed's pretraining
      if (r.timed) EXPECT_EQ(r.budget_run, int(i - 1)) << r.name;
    }
  }
  EXPECT_NE(describe_plan(s, p).find("2 variants x 1 lengths x 2 seeds"), std::string::npos);
  // Without seeds the names and the configs' own seed stay as they were.
  const ExperimentPlan q = plan_experiment(parse(edited(j, "seeds", nullptr)), dir.path.string());
  ASSERT_EQ(q.runs.size(), 6u);
  EXPECT_EQ(q.runs[1].name, "softmax-32");
  EXPECT_FALSE(q.runs[1].has_seed);
  EXPECT_EQ(q.runs[1].config.train.seed, config_from_file(tiny()).train.seed);
}

TEST(ExperimentReport, SeedsAreTheMeanAndSampleDeviationOfTheRunsThatFinished) {
  TempDir dir("exp_report_seeds");
  const std::string text = write_text(dir.path, 0, 5000);
  json j = lm_spec(text, text);
  j["lengths"] = {32};
  j["seeds"] = {1, 2, 3};
  const ExperimentSpec s = parse(j);
  const ExperimentPlan p = plan_experiment(s, dir.path.string());
  ASSERT_EQ(p.runs.size(), 6u);  // softmax x 3 seeds, wersa x 3 seeds
  std::vector<RunResult> res(p.runs.size());
  const double loss[6] = {2.0, 2.5, 3.25, 1.5, 1.75, 9.0};
  for (size_t i = 0; i < res.size(); ++i) {
    res[i].status = "ok";
    res[i].wall_s = 10.0 * double(i + 1);
    res[i].peak_rss = int64_t(i + 1) << 20;
    res[i].tok_per_s = 1000;
    res[i].eval = {{"mean_loss", loss[i]}, {"perplexity", std::exp(loss[i])}};
  }
  res[5].status = "failed", res[5].exit_code = 3;  // wersa seed 3: left out of the mean
  const std::string md = results_markdown(s, p, res);
  // softmax: mean 2.5833, sample sd of {2, 2.5, 3.25}, computed here in double.
  const double m = (2.0 + 2.5 + 3.25) / 3;
  const double sd = std::sqrt(((2.0 - m) * (2.0 - m) + (2.5 - m) * (2.5 - m) + (3.25 - m) * (3.25 - m)) / 2);
  EXPECT_NE(md.find("| softmax | 32 | " + fixed4(m) + " ± " + fixed4(sd) + " |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 20.0 s | "), std::string::npos) << md;  // mean train time of 10, 20, 30 s
  EXPECT_NE(md.find("ok (3 seeds)"), std::string::npos) << md;
  const double sw = std::sqrt(2 * 0.125 * 0.125);
  EXPECT_NE(md.find("| wersa | 32 | " + fixed4(1.625) + " ± " + fixed4(sw) + " |"), std::string::npos) << md;
  EXPECT_NE(md.find("1 failed (exit 3), 2 ok"), std::string::npos) << md;
  // Each seed's own row, with its seed.
  EXPECT_NE(md.find("| softmax | 32 | 2 | 2.5000 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| wersa | 32 | 3 | - |"), std::string::npos) << md;
  const std::vector<std::string> csv = csv_lines(results_csv(s, p, res));
  EXPECT_EQ(csv[0].rfind("table,variant,T,seed,status,", 0), 0u) << csv[0];
  EXPECT_EQ(csv[2].rfind("budget,softmax,32,2,ok,", 0), 0u) << csv[2];
  const json rj = results_json(s, p, res, json::object());
  EXPECT_EQ(rj["runs"][4]["seed"], 2);
  // No seeds: one plain value per row, no seed column.
  const ExperimentSpec s1 = parse(edited(j, "seeds", nullptr));
  const ExperimentPlan p1 = plan_experiment(s1, dir.path.string());
  ASSERT_EQ(p1.runs.size(), 2u);
  const std::vector<RunResult> r1 = {res[0], res[3]};
  const std::string md1 = results_markdown(s1, p1, r1);
  EXPECT_NE(md1.find("| softmax | 32 | 2.0000 | "), std::string::npos) << md1;
  EXPECT_EQ(md1.find("±"), std::string::npos) << md1;
  EXPECT_EQ(csv_lines(results_csv(s1, p1, r1))[1].rfind("budget,softmax,32,,ok,", 0), 0u);
}

TEST(ModelFlops, HandCountsOfEachKind) {
  // D 8, H 2, Hkv 1, d 4, F 16, V 10, m 3, L 2, K 3, G 2, one layer.
  ModelConfig m;
  m.vocab_size = 10, m.dim = 8, m.layers = 1, m.heads = 2, m.kv_heads = 1, m.ffn_dim = 16;
  m.attention.features = 3, m.attention.levels = 2, m.attention.conv_width = 3, m.attention.gate_dim = 2;
  // projections 2*8*8 + 2*2*8*4 + 2*8*8 = 384; SwiGLU 6*8*16 = 768; LM head 2*10*8 = 160.
  m.attention.type = AttentionKind::Softmax;
  ModelFlops f = model_flops(m, 5);
  EXPECT_EQ(f.projections, 384);
  EXPECT_EQ(f.ffn, 768);
  EXPECT_EQ(f.head, 160);
  EXPECT_EQ(f.attention, 96);  // causal, 3 keys on average: 2 heads x (2*4*3 + 2*4*3)
  EXPECT_EQ(f.total(), 1408);
  m.attention.causal = false;
  EXPECT_EQ(model_flops(m, 5).attention, 160);  // all 5 keys
  m.attention.causal = true;
  // linear: feature maps 3 * 2*4*3 = 72; update 1 * (2*3*4 + 3) = 27; readout 2 * (2*3*4 + 2*3 + 4) = 68.
  m.attention.type = AttentionKind::Linear;
  EXPECT_EQ(model_flops(m, 5).attention, 167);
  // wersa: + conv 2*8*3 = 48, gate MLP 2*8*2 + 2*2*3 = 44, Haar 7*2*4*3 = 168.
  m.attention.type = AttentionKind::Wersa;
  EXPECT_EQ(model_flops(m, 5).attention, 427);
  EXPECT_EQ(model_flops(m, 5).total(), 1739);
  EXPECT_EQ(train_flops(m, 5, 10), 3.0 * 1739 * 10);
  // Classifier head: 2 C D once per document of T tokens.
  m.task.type = "classify", m.task.num_classes = 4;
  EXPECT_EQ(model_flops(m, 8).head, 8);
  m.task = TaskConfig{};

  // Scaling with T: softmax attention grows linearly ((T + 1) / 2 keys), the others not at all.
  m.attention.type = AttentionKind::Softmax;
  EXPECT_EQ(model_flops(m, 7).attention, 2 * model_flops(m, 3).attention);
  EXPECT_EQ(model_flops(m, 4095).attention, 1024 * model_flops(m, 3).attention);
  EXPECT_EQ(model_flops(m, 4095).projections, model_flops(m, 3).projections);
  for (const AttentionKind k : {AttentionKind::Linear, AttentionKind::Wersa}) {
    m.attention.type = k;
    EXPECT_EQ(model_flops(m, 1).total(), model_flops(m, 1 << 20).total());
  }
}

TEST(Experiment, LanguageModelEndToEndAndSkipOnRerun) {
  TempDir dir("exp_lm");
  const std::string train = write_text(dir.path, 0, 60000), val = write_text(dir.path, 60000, 8000);
  json j = lm_spec(train, val);
  // Refuse wersa at T 64 by a limit between the two kinds' real estimates.
  Config soft = config_from_file(tiny()), wersa = soft;
  const std::vector<std::string> common = {"data.train=" + train, "train.batch_size=2",
                                           "train.warmup_steps=1", "train.seq_len=64", "train.steps=4"};
  config_set_all(soft, common), config_set_all(wersa, common);
  config_set(soft, "model.attention.type=softmax");
  const size_t es = estimate_train_memory(soft).total, ew = estimate_train_memory(wersa).total;
  ASSERT_LT(es, ew);
  j["max_memory"] = std::to_string((es + ew) / 2);
  write_file(dir / "spec.json", j.dump(2));
  const std::string out = dir / "out";
  const std::string cmd = "wersa-experiment " + (dir / "spec.json") + " -o " + out + " --progress-every 0";
  const ToolRun r = run_tool(cmd);
  ASSERT_EQ(r.status, 0) << r.err;

  const json res = read_json_file(out + "/results.json");
  ASSERT_EQ(res.at("runs").size(), 4u);
  EXPECT_NE(res.at("machine").at("cpu").get<std::string>(), "");
  EXPECT_NE(res.at("command").get<std::string>().find("spec.json"), std::string::npos);
  const std::vector<std::string> csv = csv_lines(read_file(out + "/results.csv"));
  ASSERT_EQ(csv.size(), 5u);
  const std::string md = read_file(out + "/results.md");
  EXPECT_EQ(r.out, md);
  for (size_t i = 0; i < 4; ++i) {
    const json& run = res["runs"][i];
    const std::string name = run.at("name").get<std::string>();
    const json& rr = run.at("result");
    if (name == "wersa-64") {
      EXPECT_EQ(rr.at("status"), "oom");
      EXPECT_FALSE(fs::exists(out + "/runs/wersa-64"));
      EXPECT_NE(md.find("| wersa | 64 | - |"), std::string::npos) << md;
      EXPECT_NE(md.find("OOM (est. "), std::string::npos) << md;
      EXPECT_EQ(csv[i + 1].rfind("budget,wersa,64,,oom,", 0), 0u) << csv[i + 1];
      continue;
    }
    ASSERT_EQ(rr.at("status"), "ok") << name;
    // The run's own files: every step in metrics.jsonl, a checkpoint, its evaluation.
    EXPECT_EQ(step_lines(out + "/runs/" + name), 4) << name;
    EXPECT_EQ(rr.at("steps_done"), 4) << name;
    const int64_t T = run.at("T").get<int64_t>();
    EXPECT_NEAR(rr.at("tokens").get<double>(), 4.0 * 2 * T, 1.0) << name;
    Config c = name.rfind("softmax", 0) == 0 ? soft : wersa;
    config_set(c, "train.seq_len=" + std::to_string(T));
    EXPECT_NEAR(rr.at("flops").get<double>(), train_flops(c.model, T, 4.0 * 2 * T),
                1e-6 * rr.at("flops").get<double>())
        << name;
    EXPECT_GT(rr.at("peak_rss").get<int64_t>(), 1 << 20);
    EXPECT_LT(rr.at("peak_rss").get<int64_t>(), int64_t(8) << 30);
    EXPECT_GT(rr.at("wall_s").get<double>(), 0);
    EXPECT_EQ(rr.at("machine").at("blas_kernels"), blas_kernel_name()) << rr.dump();
    EXPECT_EQ(rr.at("machine").at("cores").get<unsigned>(), std::thread::hardware_concurrency());
    const double loss = rr.at("eval").at("mean_loss").get<double>();
    EXPECT_GT(loss, 0.5);
    EXPECT_LT(loss, 8);
    const json& bp = rr.at("eval").at("by_position");
    ASSERT_EQ(bp.size(), 1u);
    EXPECT_EQ(bp[0].at("range"), "0-" + std::to_string(T - 1));
    // The evaluation's own output holds the figure the table shows.
    EXPECT_NE(read_file(out + "/runs/" + name + "/eval-log.txt")
                  .find("mean_loss " + std::to_string(loss).substr(0, 6)),
              std::string::npos);
    const std::string variant = run.at("variant").get<std::string>();
    EXPECT_NE(md.find("| " + variant + " | " + std::to_string(T) + " | " + fixed4(loss) + " |"),
              std::string::npos)
        << md;
    EXPECT_EQ(csv[i + 1].rfind("budget," + variant + "," + std::to_string(T) + ",,ok,0,4,", 0), 0u)
        << csv[i + 1];
    // Validation lines of metrics.jsonl (eval.every 2) feed the learning curves.
    int vals = 0;
    for (const json& m : read_metrics(out + "/runs/" + name)) vals += m.contains("val_loss");
    EXPECT_EQ(vals, 2) << name;
  }
  EXPECT_NE(md.find("\nTrained on: "), std::string::npos) << md;
  EXPECT_NE(md.find("BLAS kernels " + blas_kernel_name() + ": softmax-32 ("), std::string::npos) << md;
  EXPECT_NE(r.err.find("[1/4] softmax T=32: training softmax-32"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("experiment ETA"), std::string::npos) << r.err;
  if (have_gnuplot()) {
    for (const char* f : {"curves-T32.svg", "curves-T64.svg", "time-vs-T.svg", "memory-vs-T.svg"})
      expect_svg(out + "/plots/" + f);
  } else {
    EXPECT_NE(r.err.find("gnuplot not found"), std::string::npos) << r.err;
  }

  // Again: every finished run is skipped, its files untouched, the tables the same.
  const int64_t before = mtime_ns(out + "/runs/softmax-32/result.json");
  const ToolRun again = run_tool(cmd);
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(mtime_ns(out + "/runs/softmax-32/result.json"), before);
  size_t skipped = 0;
  for (size_t p = again.err.find("skipped"); p != std::string::npos; p = again.err.find("skipped", p + 1))
    ++skipped;
  EXPECT_EQ(skipped, 3u) << again.err;
  EXPECT_EQ(read_file(out + "/results.md"), md);
  EXPECT_EQ(csv_lines(read_file(out + "/results.csv")), csv);

  // --import: a new output directory takes the finished rows of the first one's results.json (as
  // when OUT was lost and its tables were kept), trains nothing and reports the same table; rows
  // of a run planned otherwise are refused.
  const std::string out2 = dir / "out2";
  const ToolRun imp = run_tool("wersa-experiment " + (dir / "spec.json") + " -o " + out2 +
                               " --progress-every 0 --import " + out + "/results.json");
  ASSERT_EQ(imp.status, 0) << imp.err;
  EXPECT_EQ(read_file(out2 + "/results.md"), md);
  EXPECT_FALSE(fs::exists(out2 + "/runs/softmax-32/metrics.jsonl"));
  EXPECT_NE(imp.err.find("softmax T=32: finished in " + out + "/results.json: imported"), std::string::npos)
      << imp.err;
  json other = j;
  other["set"].push_back("train.weight_decay=0.05");
  write_file(dir / "other.json", other.dump());
  expect_one_line_error(run_tool("wersa-experiment " + (dir / "other.json") + " -o " + (dir / "out3") +
                                 " --import " + out + "/results.json"),
                        "/results.json: run 'softmax-32' was trained otherwise than");

  // --dry-run prints the plan and runs nothing.
  const ToolRun dry = run_tool("wersa-experiment " + (dir / "spec.json") + " --dry-run");
  EXPECT_EQ(dry.status, 0) << dry.err;
  EXPECT_NE(dry.out.find("wersa-64"), std::string::npos);
  EXPECT_NE(dry.out.find("OOM: not started"), std::string::npos) << dry.out;
  // Command-line and spec errors: one line.
  expect_one_line_error(run_tool("wersa-experiment " + (dir / "spec.json")), "--out DIR is required", 2);
  j["lenghts"] = {1};
  write_file(dir / "bad.json", j.dump());
  expect_one_line_error(run_tool("wersa-experiment " + (dir / "bad.json") + " -o " + out),
                        "bad.json: unknown key 'lenghts'");
}

TEST(Experiment, TimedRunTrainsTheStepsOfItsBudgetRunsRate) {
  TempDir dir("exp_timed");
  const std::string train = write_text(dir.path, 0, 60000), val = write_text(dir.path, 60000, 8000);
  json j = lm_spec(train, val);
  j["variants"] = {{{"name", "wersa"}, {"set", json::array()}}};
  j["lengths"] = {32};
  j["budget"] = {{"steps", 4}, {"seconds", 0.5}};
  j["eval"] = {{"data", val}, {"max_tokens", 2000}};
  write_file(dir / "spec.json", j.dump(2));
  const std::string out = dir / "out";
  const ToolRun r =
      run_tool("wersa-experiment " + (dir / "spec.json") + " -o " + out + " --progress-every 0");
  ASSERT_EQ(r.status, 0) << r.err;
  const json res = read_json_file(out + "/results.json");
  ASSERT_EQ(res.at("runs").size(), 2u);
  const json& budget = res["runs"][0].at("result");
  const json& timed = res["runs"][1].at("result");
  ASSERT_EQ(budget.at("status"), "ok");
  ASSERT_EQ(timed.at("status"), "ok");
  // The timed run's schedule is the budget run's rate times the seconds, trained to its end.
  const ExperimentSpec s = parse(j);
  const ExperimentPlan p = plan_experiment(s, out);
  const int64_t steps = timed_steps_from_rate(p.runs[1], 0.5, budget.at("tok_per_s").get<double>());
  ASSERT_GE(steps, 1);
  EXPECT_EQ(timed.at("steps_done").get<int64_t>(), steps);
  EXPECT_EQ(step_lines(out + "/runs/wersa-32-s0.5"), steps);
  EXPECT_NE(read_file(out + "/runs/wersa-32-s0.5/log.txt").find("--set train.steps=" + std::to_string(steps)),
            std::string::npos);
  EXPECT_NE(r.err.find("tokens/s of wersa-32)"), std::string::npos) << r.err;
}

// time_limit: a run whose extrapolated training time exceeds the limit stops after its probe and
// its row says "too slow" with the time per step measured on its steps 2..probe_steps (from its
// own metrics.jsonl); a rerun keeps the row, and a higher limit continues the run from its
// checkpoint to the end.
TEST(Experiment, TooSlowRunsStopAfterTheProbeAndContinueUnderAHigherLimit) {
  TempDir dir("exp_slow");
  const std::string train = write_text(dir.path, 0, 60000), val = write_text(dir.path, 60000, 8000);
  json j = lm_spec(train, val);
  j["variants"] = {{{"name", "wersa"}, {"set", json::array()}}};
  j["lengths"] = {32};
  j["budget"] = {{"steps", 1000}};
  j["eval"] = {{"data", val}, {"max_tokens", 500}};
  j["time_limit"] = {{"seconds", 0.001}, {"probe_steps", 3}};
  write_file(dir / "spec.json", j.dump(2));
  const std::string out = dir / "out", run = out + "/runs/wersa-32";
  const std::string cmd = "wersa-experiment " + (dir / "spec.json") + " -o " + out + " --progress-every 0";
  const ToolRun r = run_tool(cmd);
  ASSERT_EQ(r.status, 0) << r.err;
  const json rr = read_json_file(run + "/result.json");
  ASSERT_EQ(rr.at("status"), "too_slow") << rr.dump();
  double ms = 0;
  for (const json& m : read_metrics(run))
    if (m.contains("loss") && (m["step"] == 2 || m["step"] == 3)) ms += m.at("ms").get<double>();
  const double s_per_step = ms / 2 / 1000;
  EXPECT_NEAR(rr.at("s_per_step").get<double>(), s_per_step, 1e-12 * s_per_step);
  EXPECT_NEAR(rr.at("extrapolated_s").get<double>(), 1000 * s_per_step, 1e-9 * s_per_step);
  EXPECT_EQ(rr.at("time_limit_s").get<double>(), 0.001);
  const int64_t stopped = rr.at("steps_done").get<int64_t>();
  EXPECT_GE(stopped, 3);
  EXPECT_LT(stopped, 1000);
  EXPECT_NE(io::find_latest_checkpoint(run), "");
  const std::string md = read_file(out + "/results.md");
  EXPECT_NE(md.find("too slow ("), std::string::npos) << md;
  EXPECT_NE(md.find(" s/step measured, est. "), std::string::npos) << md;
  EXPECT_NE(r.err.find("too slow: "), std::string::npos) << r.err;
  const ToolRun dry = run_tool("wersa-experiment " + (dir / "spec.json") + " --dry-run");
  EXPECT_NE(dry.out.find("time limit: "), std::string::npos) << dry.out;

  // The same limit: the row stands, nothing is trained.
  const ToolRun again = run_tool(cmd);
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_NE(again.err.find("too slow before"), std::string::npos) << again.err;
  EXPECT_EQ(read_json_file(run + "/result.json").at("steps_done").get<int64_t>(), stopped);

  // A limit it fits in: the run continues from its checkpoint (no re-probe) and finishes.
  j["time_limit"] = {{"seconds", 1e6}, {"probe_steps", 3}};
  write_file(dir / "spec.json", j.dump(2));
  const ToolRun more = run_tool(cmd);
  ASSERT_EQ(more.status, 0) << more.err;
  EXPECT_NE(more.err.find("from step "), std::string::npos) << more.err;
  const json ok = read_json_file(run + "/result.json");
  EXPECT_EQ(ok.at("status"), "ok") << ok.dump();
  EXPECT_EQ(step_lines(run), 1000);
}

TEST(Experiment, ClassifyWithPretrainingEndToEnd) {
  TempDir dir("exp_cls");
  // 30 train, 8 validation and 10 test papers of 700 to 1500 characters with their own splits:
  // the arXiv-like abstracts of tests/synthdata.h, so that the test runs on every machine.
  std::string jsonl;
  int splits[3] = {0, 0, 0};
  for (const SynthRecord& rec : synthetic_arxiv(80, 700, 1500)) {
    const int k = rec.split == "train" ? 0 : rec.split == "validation" ? 1 : 2;
    if (splits[k] >= (k == 0 ? 30 : k == 1 ? 8 : 10)) continue;
    ++splits[k];
    jsonl += synthetic_jsonl({rec});
  }
  ASSERT_EQ(splits[0], 30);
  ASSERT_EQ(splits[1], 8);
  ASSERT_EQ(splits[2], 10);
  write_file(dir / "docs.jsonl", jsonl);
  const json j = {
      {"mode", "classify"},
      {"base", tiny()},
      {"set",
       {"task.type=classify", "data.train=" + (dir / "docs.jsonl"), "data.val=", "train.batch_size=4",
        "train.warmup_steps=1", "train.eval_every=0"}},
      {"variants", {{{"name", "linear"}, {"set", {"model.attention.type=linear"}}}, {{"name", "wersa"}}}},
      {"lengths", {64}},
      {"budget", {{"steps", 5}}},
      {"pretrain", {{"data", dir / "docs.jsonl"}, {"steps", 3}}},  // JSON Lines: encoded into shards first
      {"eval", {{"split", "test"}, {"every", 5}}},
      {"threads", 2},
      {"reference", {{"name", "bag of words"}, {"accuracy", 0.83}, {"macro_auc", 0.98}}}};
  write_file(dir / "spec.json", j.dump(2));
  const std::string out = dir / "out";
  const ToolRun r = run_tool("wersa-experiment " + (dir / "spec.json") + " -o " + out);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(out + "/pretrain-data/dataset.json"));
  const json res = read_json_file(out + "/results.json");
  ASSERT_EQ(res.at("runs").size(), 4u);
  const std::string md = read_file(out + "/results.md");
  EXPECT_NE(md.find("| *bag of words* | - | 0.8300 | - | 0.9800 |"), std::string::npos) << md;
  for (const json& run : res["runs"]) {
    const std::string name = run.at("name").get<std::string>();
    const json& rr = run.at("result");
    ASSERT_EQ(rr.at("status"), "ok") << name << "\n" << r.err;
    if (run.at("kind") == "pretrain") {
      EXPECT_EQ(step_lines(out + "/runs/" + name), 3);
      continue;
    }
    EXPECT_EQ(run.at("pretrain"), "pretrain-" + run.at("variant").get<std::string>() + "-64");
    EXPECT_NE(read_file(out + "/runs/" + name + "/log.txt").find("trunk initialised from"),
              std::string::npos);
    // The table's figures are the evaluation's own (wersa-eval --metrics-json).
    const json ev = read_json_file(out + "/runs/" + name + "/eval.json");
    EXPECT_EQ(ev.at("split"), "test");
    EXPECT_EQ(rr.at("eval").at("accuracy"), ev.at("accuracy"));
    EXPECT_NE(md.find("| " + run.at("variant").get<std::string>() + " | 64 | " +
                      fixed4(ev.at("accuracy").get<double>()) + " | " +
                      fixed4(ev.at("macro_f1").get<double>()) + " |"),
              std::string::npos)
        << md;
    // Its cost includes the pretraining.
    const json& pre = res["runs"][0].at("name") == run.at("pretrain") ? res["runs"][0] : res["runs"][2];
    EXPECT_GT(rr.at("flops").get<double>(), pre.at("result").at("flops").get<double>());
    EXPECT_GE(rr.at("wall_s").get<double>(), pre.at("result").at("wall_s").get<double>());
    EXPECT_EQ(step_lines(out + "/runs/" + name), 5);
  }
  if (have_gnuplot()) expect_svg(out + "/plots/curves-T64.svg");
}

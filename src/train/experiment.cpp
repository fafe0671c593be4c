// The experiment spec (parsing and validation), the plan of runs it implies (steps from the
// budget, configs, memory estimates, OOM decisions) and the per-run result files. The tables and
// plots are in experiment_report.cpp; running the children is wersa-experiment's job.
#include "wersa/train/experiment.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "wersa/common/error.h"
#include "wersa/common/file.h"
#include "wersa/common/json.h"
#include "wersa/data/labeled.h"
#include "wersa/model/flops.h"
#include "wersa/tensor/arena.h"

namespace wersa {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// ---- reading the spec -----------------------------------------------------------------------

// An object of the spec whose keys are checked against `allowed`.
struct Obj {
  const json& j;
  std::string src, path;  // file, key path of this object ("" = top level)

  Obj(const json& v, std::string source, std::string p, const std::vector<std::string>& allowed)
      : j(v), src(std::move(source)), path(std::move(p)) {
    WERSA_CHECK(j.is_object(), src, ": ", path.empty() ? "the spec" : path, ": expected a JSON object, got ",
                json_brief(j));
    for (const auto& item : j.items())
      if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
        std::string known;
        for (const std::string& a : allowed) known += (known.empty() ? "" : ", ") + a;
        WERSA_FAIL(src, ": unknown key '", key(printable(item.key())), "' (expected one of: ", known, ")");
      }
  }
  std::string key(const std::string& k) const { return path.empty() ? k : path + "." + k; }
  bool has(const std::string& k) const { return j.contains(k); }
  [[noreturn]] void bad(const std::string& k, const std::string& expected) const {
    WERSA_FAIL(src, ": ", key(k), ": expected ", expected, ", got ", json_brief(j.at(k)));
  }
  std::string str(const std::string& k, bool non_empty = true) const {
    const json& v = j.at(k);
    if (!v.is_string() || (non_empty && v.get<std::string>().empty())) bad(k, "a non-empty string");
    return v.get<std::string>();
  }
  int64_t integer(const std::string& k, int64_t lo, int64_t hi) const {
    const json& v = j.at(k);
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      bad(k, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v.get<int64_t>();
  }
  double number(const std::string& k, bool positive) const {
    const json& v = j.at(k);
    if (!v.is_number() || !std::isfinite(v.get<double>()) || (positive && v.get<double>() <= 0))
      bad(k, positive ? "a number > 0" : "a number");
    return v.get<double>();
  }
  std::vector<std::string> sets(const std::string& k) const {
    const json& v = j.at(k);
    if (!v.is_array()) bad(k, "a list of \"section.key=value\" strings");
    std::vector<std::string> out;
    for (const json& e : v) {
      if (!e.is_string() || e.get<std::string>().find('=') == std::string::npos ||
          e.get<std::string>().front() == '=')
        WERSA_FAIL(src, ": ", key(k), ": expected \"section.key=value\" strings, got ", json_brief(e));
      out.push_back(e.get<std::string>());
    }
    return out;
  }
};

constexpr int64_t kMaxSteps = 1000000000;

bool is_jsonl(const std::string& p) {
  for (const char* ext : {".jsonl", ".jsonl.xz", ".jsonl.gz", ".ndjson", ".ndjson.xz", ".ndjson.gz"}) {
    const std::string e(ext);
    if (p.size() >= e.size() && p.compare(p.size() - e.size(), e.size(), e) == 0) return true;
  }
  return false;
}

int64_t ceil_div(double a, double b) { return int64_t(std::ceil(a / b - 1e-9)); }

}  // namespace

ExperimentSpec experiment_spec_from_json(const json& j, const std::string& src) {
  const Obj top(j, src, "",
                {"mode", "title", "base", "set", "variants", "lengths", "seeds", "batch_tokens", "budget",
                 "pretrain", "eval", "max_memory", "time_limit", "threads", "reference"});
  ExperimentSpec s;
  s.path = src;
  s.raw = j;
  for (const char* k : {"mode", "base", "variants", "lengths", "budget"})
    WERSA_CHECK(top.has(k), src, ": ", k, ": is missing (every spec names it)");
  const std::string mode = top.str("mode");
  if (mode != "classify" && mode != "lm") top.bad("mode", "\"classify\" or \"lm\"");
  s.classify = mode == "classify";
  if (top.has("title")) s.title = top.str("title");
  s.base = top.str("base");
  if (top.has("set")) s.set = top.sets("set");

  const json& vs = j.at("variants");
  if (!vs.is_array() || vs.empty()) top.bad("variants", "a non-empty list of {\"name\", \"set\"}");
  std::set<std::string> names;
  for (size_t i = 0; i < vs.size(); ++i) {
    const Obj v(vs[i], src, "variants[" + std::to_string(i) + "]", {"name", "set"});
    WERSA_CHECK(v.has("name"), src, ": ", v.key("name"), ": is missing");
    ExperimentVariant var{v.str("name"), {}};
    for (char c : var.name)
      WERSA_CHECK(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.', src, ": ",
                  v.key("name"), ": '", printable(var.name),
                  "' names a directory: expected letters, digits, '-', '_' or '.'");
    WERSA_CHECK(names.insert(var.name).second, src, ": ", v.key("name"), ": '", var.name, "' is used twice");
    if (v.has("set")) var.set = v.sets("set");
    s.variants.push_back(std::move(var));
  }

  const json& ls = j.at("lengths");
  if (!ls.is_array() || ls.empty()) top.bad("lengths", "a non-empty list of sequence lengths");
  for (size_t i = 0; i < ls.size(); ++i) {
    WERSA_CHECK(ls[i].is_number_integer() && ls[i].get<int64_t>() >= 1 && ls[i].get<int64_t>() <= 1048576,
                src, ": lengths[", i, "]: expected an integer in [1, 1048576], got ", json_brief(ls[i]));
    const int T = ls[i].get<int>();
    WERSA_CHECK(std::find(s.lengths.begin(), s.lengths.end(), T) == s.lengths.end(), src, ": lengths[", i,
                "]: ", T, " is listed twice");
    s.lengths.push_back(T);
  }

  if (top.has("seeds")) {
    const json& ss = j.at("seeds");
    if (!ss.is_array() || ss.empty()) top.bad("seeds", "a non-empty list of seeds (integers >= 0)");
    for (size_t i = 0; i < ss.size(); ++i) {
      WERSA_CHECK(ss[i].is_number_unsigned() || (ss[i].is_number_integer() && ss[i].get<int64_t>() >= 0), src,
                  ": seeds[", i, "]: expected an integer >= 0, got ", json_brief(ss[i]));
      const uint64_t seed = ss[i].get<uint64_t>();
      WERSA_CHECK(std::find(s.seeds.begin(), s.seeds.end(), seed) == s.seeds.end(), src, ": seeds[", i,
                  "]: ", seed, " is listed twice");
      s.seeds.push_back(seed);
    }
  }

  if (top.has("batch_tokens")) s.batch_tokens = top.integer("batch_tokens", 1, int64_t(1) << 40);

  const Obj b(j.at("budget"), src, "budget", {"steps", "tokens", "epochs", "seconds", "max_steps"});
  const int given = int(b.has("steps")) + int(b.has("tokens")) + int(b.has("epochs"));
  WERSA_CHECK(given == 1, src,
              ": budget: expected exactly one of steps, tokens (lm) or epochs (classify), got ", given);
  if (b.has("steps")) s.budget_steps = b.integer("steps", 1, kMaxSteps);
  if (b.has("tokens")) {
    WERSA_CHECK(!s.classify, src,
                ": budget.tokens: is for mode lm (a classifier's tokens depend on its documents: use "
                "budget.steps or budget.epochs)");
    s.budget_tokens = b.integer("tokens", 1, int64_t(1) << 50);
  }
  if (b.has("epochs")) {
    WERSA_CHECK(s.classify, src, ": budget.epochs: is for mode classify (use budget.steps or budget.tokens)");
    s.budget_epochs = b.number("epochs", true);
  }
  if (b.has("seconds")) s.seconds = b.number("seconds", true);
  if (b.has("max_steps")) {
    WERSA_CHECK(s.seconds > 0, src, ": budget.max_steps: only with budget.seconds");
    s.seconds_steps = b.integer("max_steps", 1, kMaxSteps);
  }

  if (top.has("pretrain")) {
    WERSA_CHECK(s.classify, src, ": pretrain: is for mode classify");
    const Obj p(j.at("pretrain"), src, "pretrain", {"data", "steps", "tokens", "set"});
    WERSA_CHECK(p.has("data"), src, ": pretrain.data: is missing (a corpus: .txt, shards or .jsonl[.xz])");
    WERSA_CHECK(p.has("steps") != p.has("tokens"), src, ": pretrain: expected one of steps or tokens");
    s.pretrain = true;
    s.pretrain_data = p.str("data");
    if (p.has("steps")) s.pretrain_steps = p.integer("steps", 1, kMaxSteps);
    if (p.has("tokens")) s.pretrain_tokens = p.integer("tokens", 1, int64_t(1) << 50);
    if (p.has("set")) s.pretrain_set = p.sets("set");
  }

  if (top.has("eval")) {
    const Obj e(j.at("eval"), src, "eval",
                s.classify ? std::vector<std::string>{"split", "every"}
                           : std::vector<std::string>{"data", "every", "max_tokens"});
    if (e.has("split")) {
      s.eval_split = e.str("split");
      if (s.eval_split != "test" && s.eval_split != "validation" && s.eval_split != "train")
        e.bad("split", "\"test\", \"validation\" or \"train\"");
    }
    if (e.has("data")) s.eval_data = e.str("data");
    if (e.has("every")) s.eval_every = int(e.integer("every", 1, kMaxSteps));
    if (e.has("max_tokens")) s.eval_max_tokens = e.integer("max_tokens", 1, int64_t(1) << 50);
  }
  if (top.has("max_memory")) {
    s.max_memory_text = top.str("max_memory");
    s.max_memory = parse_bytes(s.max_memory_text, src + ": max_memory");
  }
  if (top.has("time_limit")) {
    const Obj t(j.at("time_limit"), src, "time_limit", {"seconds", "probe_steps"});
    WERSA_CHECK(t.has("seconds"), src, ": time_limit.seconds: is missing");
    s.time_limit_s = t.number("seconds", true);
    if (t.has("probe_steps")) s.probe_steps = t.integer("probe_steps", 2, 1000);
  }
  if (top.has("threads")) s.threads = int(top.integer("threads", 0, 4096));
  if (top.has("reference")) {
    WERSA_CHECK(s.classify, src, ": reference: is for mode classify");
    const Obj r(j.at("reference"), src, "reference", {"name", "accuracy", "macro_f1", "macro_auc"});
    WERSA_CHECK(r.has("name"), src, ": reference.name: is missing");
    r.str("name");
    for (const char* k : {"accuracy", "macro_f1", "macro_auc"})
      if (r.has(k)) {
        const double v = r.number(k, false);
        WERSA_CHECK(v >= 0 && v <= 1, src, ": reference.", k, ": expected a number in [0, 1], got ", v);
      }
    s.reference = j.at("reference");
  }
  return s;
}

ExperimentSpec read_experiment_spec(const std::string& path) {
  return experiment_spec_from_json(read_json_file(path), path);
}

// ---- the plan ---------------------------------------------------------------------------------

namespace {

Config resolve(const ExperimentSpec& spec, const std::vector<std::string>& sets, const std::string& what) {
  Config c = config_from_file(spec.base);
  config_set_all(c, sets, spec.path + ": " + what);
  return c;
}

std::string seconds_tag(double s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

}  // namespace

ExperimentPlan plan_experiment(const ExperimentSpec& spec, const std::string& out) {
  ExperimentPlan plan;
  const Config base = resolve(spec, spec.set, "set");
  if (spec.classify) {
    WERSA_CHECK(base.model.task.classify(), spec.path,
                ": mode classify needs task.type = \"classify\" (in the base config or in set)");
    WERSA_CHECK(!base.data.train.empty(), spec.path,
                ": data.train: is empty (set it to the JSON Lines documents)");
    data::LabeledDataset recs = data::read_labeled_jsonl(base.data.train);
    WERSA_CHECK(!recs.records.empty(), base.data.train, ": holds no documents");
    const data::LabelMap labels = base.model.task.labels.empty()
                                      ? data::LabelMap::from_records(recs, base.model.task.num_classes)
                                      : data::LabelMap::from_names(base.model.task.labels);
    if (!recs.has_split)
      data::assign_splits(recs, labels, {base.data.val_fraction, base.data.test_fraction, base.train.seed});
    for (const auto& r : recs.records) plan.train_docs += r.split == data::Split::Train;
    plan.num_classes = int(labels.num_classes());
    WERSA_CHECK(plan.train_docs > 0, base.data.train, ": no document in the train split");
  } else {
    WERSA_CHECK(!base.model.task.classify(), spec.path, ": mode lm needs task.type = \"lm\"");
    plan.eval_data = !spec.eval_data.empty() ? spec.eval_data : base.data.val;
    WERSA_CHECK(!plan.eval_data.empty(), spec.path,
                ": eval.data: is missing and data.val is empty (mode lm needs validation data)");
  }
  std::string pretrain_train = spec.pretrain_data;
  if (spec.pretrain && is_jsonl(spec.pretrain_data)) {
    plan.encode_input = spec.pretrain_data;
    plan.encode_dir = (fs::path(out) / "pretrain-data").string();
    pretrain_train = plan.encode_dir + "/train_*.bin";
  }

  const std::string threads = "train.threads=" + std::to_string(spec.threads);
  // One pass per seed of the spec, or one with the configs' own train.seed.
  const bool seeded = !spec.seeds.empty();
  const std::vector<uint64_t> seeds = seeded ? spec.seeds : std::vector<uint64_t>{0};
  for (const ExperimentVariant& v : spec.variants) {
    for (const int T : spec.lengths) {
      for (const uint64_t seed : seeds) {
        std::vector<std::string> common = spec.set;
        common.insert(common.end(), v.set.begin(), v.set.end());
        common.push_back("train.seq_len=" + std::to_string(T));
        if (spec.batch_tokens > 0)
          common.push_back("train.batch_size=" + std::to_string(std::max<int64_t>(1, spec.batch_tokens / T)));
        if (seeded) common.push_back("train.seed=" + std::to_string(seed));
        const std::string cell = std::to_string(T) + (seeded ? "-seed" + std::to_string(seed) : "");
        const std::string where = "variant " + v.name + ", T " + std::to_string(T) +
                                  (seeded ? ", seed " + std::to_string(seed) : "");
        const Config c0 = resolve(spec, common, where);
        const int64_t per_step = int64_t(c0.train.batch_size) * c0.train.grad_accum;
        int64_t steps = spec.budget_steps;
        if (spec.budget_tokens > 0) steps = ceil_div(double(spec.budget_tokens), double(per_step) * T);
        if (spec.budget_epochs > 0)
          steps =
              ceil_div(spec.budget_epochs * double(ceil_div(double(plan.train_docs), c0.train.batch_size)),
                       c0.train.grad_accum);
        steps = std::max<int64_t>(1, steps);

        int pre = -1;
        if (spec.pretrain) {
          PlannedRun p;
          p.kind = RunKind::Pretrain;
          p.name = "pretrain-" + v.name + "-" + cell;
          p.variant = v.name, p.T = T, p.has_seed = seeded, p.seed = seed;
          p.steps = spec.pretrain_steps > 0
                        ? spec.pretrain_steps
                        : std::max<int64_t>(1, ceil_div(double(spec.pretrain_tokens), double(per_step) * T));
          p.sets = common;
          for (const std::string& s :
               {std::string("task.type=lm"), std::string("task.labels=[]"), std::string("task.num_classes=0"),
                std::string("train.freeze_trunk_steps=0"), std::string("train.class_weights=none"),
                std::string("train.init_from="), "data.train=" + pretrain_train, std::string("data.val="),
                std::string("train.eval_every=0"), "train.steps=" + std::to_string(p.steps), threads})
            p.sets.push_back(s);
          p.sets.insert(p.sets.end(), spec.pretrain_set.begin(), spec.pretrain_set.end());
          p.config = resolve(spec, p.sets, "pretrain of " + where);
          p.tokens = p.steps * int64_t(p.config.train.batch_size) * p.config.train.grad_accum * T;
          p.memory = estimate_train_memory(p.config);
          p.oom = spec.max_memory > 0 && p.memory.total > spec.max_memory;
          pre = int(plan.runs.size());
          plan.runs.push_back(std::move(p));
        }
        int budget_run = -1;
        for (const bool timed : {false, true}) {
          if (timed && spec.seconds <= 0) continue;
          PlannedRun r;
          r.name = v.name + "-" + cell + (timed ? "-s" + seconds_tag(spec.seconds) : "");
          r.variant = v.name, r.T = T, r.timed = timed, r.pretrain = pre, r.has_seed = seeded, r.seed = seed;
          if (timed)
            r.budget_run = budget_run;
          else
            budget_run = int(plan.runs.size());
          r.steps = timed ? (spec.seconds_steps > 0 ? spec.seconds_steps : 10 * steps) : steps;
          r.sets = common;
          r.sets.push_back("train.steps=" + std::to_string(r.steps));
          r.sets.push_back(threads);
          if (spec.eval_every > 0) r.sets.push_back("train.eval_every=" + std::to_string(spec.eval_every));
          if (!spec.classify && !spec.eval_data.empty()) r.sets.push_back("data.val=" + spec.eval_data);
          r.config = resolve(spec, r.sets, where);
          if (spec.classify && r.config.model.task.num_classes == 0)
            r.config.model.task.num_classes = plan.num_classes;
          r.tokens = r.steps * int64_t(r.config.train.batch_size) * r.config.train.grad_accum * T;
          r.memory = estimate_train_memory(r.config);
          r.oom = (spec.max_memory > 0 && r.memory.total > spec.max_memory) ||
                  (pre >= 0 && plan.runs[size_t(pre)].oom);
          plan.runs.push_back(std::move(r));
        }
      }
    }
  }
  return plan;
}

int64_t timed_steps_from_rate(const PlannedRun& timed, double seconds, double tok_per_s) {
  WERSA_ASSERT(timed.timed && timed.T > 0);
  if (!(tok_per_s > 0) || !(seconds > 0)) return 0;
  const double per_step =
      double(timed.config.train.batch_size) * timed.config.train.grad_accum * double(timed.T);
  return std::clamp<int64_t>(int64_t(seconds * tok_per_s / per_step), 1, kMaxSteps);
}

std::string describe_plan(const ExperimentSpec& spec, const ExperimentPlan& plan) {
  std::ostringstream os;
  os << "experiment " << spec.path << ": mode " << (spec.classify ? "classify" : "lm") << ", base "
     << spec.base << ", " << spec.variants.size() << " variants x " << spec.lengths.size() << " lengths";
  if (!spec.seeds.empty()) os << " x " << spec.seeds.size() << " seeds";
  if (spec.seconds > 0) os << ", plus an equal-wall-clock table of " << spec.seconds << " s per run";
  os << "\n";
  if (spec.classify)
    os << "documents: " << plan.train_docs << " in the train split, " << plan.num_classes
       << " classes; the table reports the " << spec.eval_split << " split\n";
  else
    os << "validation data: " << plan.eval_data << "\n";
  if (!plan.encode_input.empty())
    os << "pretraining corpus: " << plan.encode_input << " -> shards in " << plan.encode_dir << "\n";
  os << "memory limit: " << (spec.max_memory ? format_bytes(spec.max_memory) : std::string("none")) << "\n";
  if (spec.time_limit_s > 0)
    os << "time limit: " << format_seconds(spec.time_limit_s)
       << " of training per run, extrapolated from steps 2-" << spec.probe_steps
       << " (too slow: stopped there)\n";
  int i = 0;
  for (const PlannedRun& r : plan.runs) {
    // A timed run's steps come from its budget run's rate, known only when that run has finished.
    const bool from_rate = r.timed && spec.seconds_steps == 0;
    char line[320];
    std::snprintf(line, sizeof line, "%3d. %-28s %-8s T %-7lld steps %-9s tokens %-12s est. %-10s %s\n", ++i,
                  r.name.c_str(),
                  r.kind == RunKind::Pretrain ? "pretrain"
                  : r.timed                   ? "timed"
                                              : "train",
                  static_cast<long long>(r.T), from_rate ? "-" : std::to_string(r.steps).c_str(),
                  from_rate ? "-" : std::to_string(r.tokens).c_str(), format_bytes(r.memory.total).c_str(),
                  r.oom      ? "OOM: not started"
                  : !r.timed ? ""
                  : !from_rate
                      ? ("stopped after " + seconds_tag(spec.seconds) + " s").c_str()
                      : ("steps: " + seconds_tag(spec.seconds) + " s at the rate of its budget run").c_str());
    os << line;
  }
  return os.str();
}

// ---- results of one run -------------------------------------------------------------------------

json run_result_to_json(const RunResult& r) {
  return {{"status", r.status},
          {"exit_code", r.exit_code},
          {"error", r.error},
          {"wall_s", r.wall_s},
          {"peak_rss", r.peak_rss},
          {"steps_done", r.steps_done},
          {"tokens", r.tokens},
          {"flops", r.flops},
          {"tok_per_s", r.tok_per_s},
          {"eval", r.eval},
          {"s_per_step", r.s_per_step},
          {"extrapolated_s", r.extrapolated_s},
          {"time_limit_s", r.time_limit_s},
          {"machine", r.machine}};
}

RunResult run_result_from_json(const json& j, const std::string& src) {
  RunResult r;
  try {
    r.status = j.at("status").get<std::string>();
    r.exit_code = j.at("exit_code").get<int>();
    r.error = j.at("error").get<std::string>();
    r.wall_s = j.at("wall_s").get<double>();
    r.peak_rss = j.at("peak_rss").get<int64_t>();
    r.steps_done = j.at("steps_done").get<int64_t>();
    r.tokens = j.at("tokens").get<double>();
    r.flops = j.at("flops").get<double>();
    r.tok_per_s = j.at("tok_per_s").get<double>();
    r.eval = j.at("eval");
    r.s_per_step = j.value("s_per_step", 0.0);  // absent from the files of earlier versions
    r.extrapolated_s = j.value("extrapolated_s", 0.0);
    r.time_limit_s = j.value("time_limit_s", 0.0);
    r.machine = j.value("machine", json());
  } catch (const json::exception& e) {
    WERSA_FAIL(src, ": not a result file of wersa-experiment (", e.what(), ")");
  }
  return r;
}

std::vector<json> read_metrics(const std::string& run_dir) {
  const fs::path p = fs::path(run_dir) / "metrics.jsonl";
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return {};
  const std::string text = read_file(p.string());
  std::vector<json> out;
  size_t pos = 0;
  int64_t line = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;  // torn last line (a run still writing, or killed)
    ++line;
    json j =
        parse_json(std::string_view(text).substr(pos, end - pos), p.string() + ":" + std::to_string(line));
    if (j.is_object()) out.push_back(std::move(j));
    pos = end + 1;
  }
  return out;
}

void summarize_metrics(const PlannedRun& run, const std::vector<json>& metrics, RunResult& r) {
  r.steps_done = 0, r.tokens = 0, r.flops = 0;
  double tok_rest = 0, ms_rest = 0;
  for (const json& m : metrics) {
    if (!m.contains("loss") || !m.contains("ms") || !m.contains("tok_per_s")) continue;
    const double ms = m["ms"].get<double>(), tok = m["tok_per_s"].get<double>() * ms / 1000.0;
    r.steps_done = std::max(r.steps_done, m["step"].get<int64_t>());
    r.tokens += tok;
    // The FLOPs of a step at its mean real length (classify: documents of different lengths).
    int64_t T = run.T;
    if (m.contains("docs") && m["docs"].get<double>() > 0)
      T = std::max<int64_t>(1, int64_t(std::llround(tok / m["docs"].get<double>())));
    r.flops += train_flops(run.config.model, T, tok);
    if (m["step"].get<int64_t>() > 1) tok_rest += tok, ms_rest += ms;
  }
  r.tok_per_s = ms_rest > 0 ? tok_rest / (ms_rest / 1000.0) : 0;
  if (r.tok_per_s == 0 && !metrics.empty() && metrics.front().contains("tok_per_s"))
    r.tok_per_s = metrics.front()["tok_per_s"].get<double>();
}

}  // namespace wersa

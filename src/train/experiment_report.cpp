// The report of an experiment: results.md (the paper's table shape), results.csv, results.json,
// and the gnuplot scripts, data files and SVG plots under OUT/plots.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "wersa/common/error.h"
#include "wersa/common/file.h"
#include "wersa/common/progress.h"
#include "wersa/common/stats.h"
#include "wersa/tensor/arena.h"
#include "wersa/train/experiment.h"

namespace wersa {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string format_flops(double flops) {
  const char* units[] = {"FLOP", "kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP", "EFLOP"};
  int u = 0;
  while (u < 6 && std::fabs(flops) >= 1000) flops /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g %s", flops, units[u]);
  return buf;
}

std::string format_seconds(double s) {
  if (s < 60) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s", s);
    return buf;
  }
  return human_duration(s);
}

namespace {

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "-";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

double num(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return std::nan("");
  return j[key].get<double>();
}

std::string status_text(const PlannedRun& p, const RunResult& r) {
  if (r.status == "ok") return "ok";
  if (r.status == "oom") return "OOM (est. " + format_bytes(p.memory.total) + ")";
  if (r.status == "too_slow") {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3g", r.s_per_step);
    return std::string("too slow (") + buf + " s/step measured, est. " + format_seconds(r.extrapolated_s) +
           " for " + std::to_string(p.steps) + " steps)";
  }
  if (r.status == "failed") return "failed (exit " + std::to_string(r.exit_code) + ")";
  return "not run";
}

// The by-position ranges ("0-63", ...) of the lm rows, ordered by their start.
std::vector<std::string> position_ranges(const ExperimentPlan& plan, const std::vector<RunResult>& results) {
  std::map<long, std::string> by_lo;
  for (size_t i = 0; i < plan.runs.size(); ++i)
    if (results[i].eval.is_object() && results[i].eval.contains("by_position"))
      for (const json& b : results[i].eval["by_position"]) {
        const std::string range = b.at("range").get<std::string>();
        by_lo.emplace(std::atol(range.c_str()), range);
      }
  std::vector<std::string> out;
  for (const auto& kv : by_lo) out.push_back(kv.second);
  return out;
}

double position_loss(const RunResult& r, const std::string& range) {
  if (!r.eval.is_object() || !r.eval.contains("by_position")) return std::nan("");
  for (const json& b : r.eval["by_position"])
    if (b.at("range").get<std::string>() == range) return b.at("mean_loss").get<double>();
  return std::nan("");
}

std::string row(const std::vector<std::string>& cells) {
  std::string s = "|";
  for (const std::string& c : cells) s += " " + c + " |";
  return s + "\n";
}

// "0.4123" for one value, "0.4123 ± 0.0101" (sample standard deviation) for several, "-" for none.
std::string spread(const std::vector<double>& v, int digits) {
  if (v.empty()) return "-";
  if (v.size() == 1) return fixed(v[0], digits);
  const MeanSd m = mean_sd(v);
  return fixed(m.mean, digits) + " ± " + fixed(m.sd, digits);
}

// The rows of a table: the indices of the runs each row stands for. One run per row, or with
// `by_cell` the runs of every seed of the same (variant, T), in the order of the plan.
std::vector<std::vector<size_t>> table_rows(const ExperimentPlan& plan, bool timed, bool by_cell) {
  std::vector<std::vector<size_t>> rows;
  std::map<std::pair<std::string, int64_t>, size_t> where;
  for (size_t i = 0; i < plan.runs.size(); ++i) {
    const PlannedRun& p = plan.runs[i];
    if (p.kind != RunKind::Train || p.timed != timed) continue;
    if (!by_cell) {
      rows.push_back({i});
      continue;
    }
    const auto it = where.emplace(std::make_pair(p.variant, p.T), rows.size());
    if (it.second) rows.emplace_back();
    rows[it.first->second].push_back(i);
  }
  return rows;
}

// The status cell of a row of several seeds: "ok (3 seeds)", or how many of them ended how.
std::string seeds_status(const ExperimentPlan& plan, const std::vector<RunResult>& results,
                         const std::vector<size_t>& idx) {
  std::map<std::string, int> n;
  for (const size_t i : idx) n[results[i].status == "ok" ? "ok" : status_text(plan.runs[i], results[i])] += 1;
  if (n.size() == 1 && n.count("ok")) return "ok (" + std::to_string(idx.size()) + " seeds)";
  std::string s;
  for (const auto& kv : n) s += (s.empty() ? "" : ", ") + std::to_string(kv.second) + " " + kv.first;
  return s;
}

// per_seed: one row per run with its seed (the spec lists seeds); otherwise one row per (variant,
// T) whose cells are the mean +- standard deviation over its seeds that finished.
std::string table(const ExperimentSpec& spec, const ExperimentPlan& plan,
                  const std::vector<RunResult>& results, bool timed, bool per_seed = false) {
  const bool seeded = !spec.seeds.empty();
  const std::vector<std::string> ranges =
      spec.classify ? std::vector<std::string>{} : position_ranges(plan, results);
  std::vector<std::string> head = {"variant", "T"};
  if (per_seed) head.push_back("seed");
  if (spec.classify)
    for (const char* h : {"accuracy", "macro-F1", "ROC AUC", "train time", "model FLOPs", "peak memory"})
      head.push_back(h);
  else {
    for (const char* h : {"val loss", "perplexity", "tokens/s", "train time", "model FLOPs", "peak memory"})
      head.push_back(h);
    for (const std::string& r : ranges) head.push_back("loss " + r);
  }
  head.push_back("status");
  const size_t text_cols = per_seed ? 3 : 2;
  std::string s = row(head);
  std::vector<std::string> rule;
  for (size_t i = 0; i < head.size(); ++i)
    rule.push_back(i < text_cols || i + 1 == head.size() ? "---" : "---:");
  s += row(rule);
  for (const std::vector<size_t>& idx : table_rows(plan, timed, seeded && !per_seed)) {
    const PlannedRun& p = plan.runs[idx.front()];
    // The values of one column over the runs of this row that finished.
    auto values = [&](auto get) {
      std::vector<double> v;
      for (const size_t i : idx)
        if (results[i].status == "ok" && std::isfinite(get(results[i]))) v.push_back(get(results[i]));
      return v;
    };
    auto metric = [&](const char* key, int digits) {
      return spread(values([&](const RunResult& r) { return num(r.eval, key); }), digits);
    };
    std::vector<std::string> c = {p.variant, std::to_string(p.T)};
    if (per_seed) c.push_back(std::to_string(p.seed));
    if (spec.classify) {
      c.push_back(metric("accuracy", 4));
      c.push_back(metric("macro_f1", 4));
      c.push_back(metric("macro_auc", 4));
    } else {
      c.push_back(metric("mean_loss", 4));
      c.push_back(metric("perplexity", 2));
      c.push_back(spread(values([](const RunResult& r) { return r.tok_per_s; }), 0));
    }
    const std::vector<double> wall = values([](const RunResult& r) { return r.wall_s; });
    const std::vector<double> flops = values([](const RunResult& r) { return r.flops; });
    const std::vector<double> rss = values([](const RunResult& r) { return double(r.peak_rss); });
    c.push_back(wall.empty() ? "-" : format_seconds(mean_sd(wall).mean));
    c.push_back(flops.empty() ? "-" : format_flops(mean_sd(flops).mean));
    c.push_back(rss.empty() ? "-" : format_bytes(size_t(*std::max_element(rss.begin(), rss.end()))));
    for (const std::string& range : ranges)
      c.push_back(spread(values([&](const RunResult& r) { return position_loss(r, range); }), 4));
    c.push_back(idx.size() == 1 ? status_text(p, results[idx.front()]) : seeds_status(plan, results, idx));
    s += row(c);
  }
  if (spec.classify && spec.reference.is_object()) {
    std::vector<std::string> c = {"*" + spec.reference["name"].get<std::string>() + "*", "-"};
    if (per_seed) c.push_back("-");
    for (const char* k : {"accuracy", "macro_f1", "macro_auc"}) c.push_back(fixed(num(spec.reference, k), 4));
    for (int k = 0; k < 3; ++k) c.push_back("-");
    c.push_back("reference");
    s += row(c);
  }
  return s;
}

std::string budget_text(const ExperimentSpec& spec) {
  std::ostringstream os;
  if (spec.budget_steps) os << spec.budget_steps << " steps";
  if (spec.budget_tokens) os << spec.budget_tokens << " training tokens";
  if (spec.budget_epochs) os << spec.budget_epochs << " epochs";
  os << " per run";
  return os.str();
}

}  // namespace

std::string results_markdown(const ExperimentSpec& spec, const ExperimentPlan& plan,
                             const std::vector<RunResult>& results) {
  WERSA_ASSERT(results.size() == plan.runs.size());
  std::ostringstream os;
  os << "# " << (spec.title.empty() ? "Experiment " + spec.path : spec.title) << "\n\n";
  os << "Mode " << (spec.classify ? "classify" : "lm") << ", base `" << spec.base
     << "`, equal budget: " << budget_text(spec);
  if (spec.classify)
    os << "; metrics on the " << spec.eval_split << " split";
  else
    os << "; validation data `" << plan.eval_data << "`";
  if (!spec.seeds.empty()) {
    os << "; " << spec.seeds.size() << " seeds (";
    for (size_t i = 0; i < spec.seeds.size(); ++i) os << (i ? ", " : "") << spec.seeds[i];
    os << "), each cell the mean ± sample standard deviation over the seeds that finished (train time "
          "and FLOPs: the mean; peak memory: the largest)";
  }
  os << ".\n\n" << table(spec, plan, results, false);
  if (spec.seconds > 0)
    os << "\nEqual wall clock: " << spec.seconds << " s of training per run"
       << (spec.seconds_steps > 0
               ? " (planned over " + std::to_string(spec.seconds_steps) + " steps, stopped by SIGINT)"
               : std::string(" (steps: that many seconds at the training tokens/s of the "
                             "budget run of the same variant and T)"))
       << ".\n\n"
       << table(spec, plan, results, true);
  if (!spec.seeds.empty()) {
    os << "\nEach seed" << (spec.seconds > 0 ? " (equal budget)" : "") << ":\n\n"
       << table(spec, plan, results, false, true);
    if (spec.seconds > 0)
      os << "\nEach seed (equal wall clock):\n\n" << table(spec, plan, results, true, true);
  }
  // Where the runs trained, when they name it: one line per machine with its runs.
  std::vector<std::pair<std::string, std::vector<std::string>>> where;
  for (size_t i = 0; i < plan.runs.size(); ++i) {
    const json& m = results[i].machine;
    if (!m.is_object() || plan.runs[i].kind == RunKind::Pretrain) continue;
    const std::string d = m.value("cpu", std::string("?")) + ", " + std::to_string(m.value("cores", 0)) +
                          " cores, BLAS kernels " + m.value("blas_kernels", std::string("?"));
    auto it = std::find_if(where.begin(), where.end(), [&](const auto& w) { return w.first == d; });
    if (it == where.end()) it = where.insert(where.end(), {d, {}});
    it->second.push_back(plan.runs[i].name + " (" + m.value("date", std::string("?")).substr(0, 10) + ")");
  }
  if (!where.empty()) {
    os << "\nTrained on:";
    for (const auto& [d, runs] : where) {
      os << (where.size() > 1 ? "\n- " : " ") << d << ":";
      for (size_t k = 0; k < runs.size(); ++k) os << (k ? ", " : " ") << runs[k];
    }
    os << "\n";
  }
  os << "\nTrain time: wall time of wersa-train; peak memory: its peak RSS; model FLOPs: 3 x forward FLOPs "
        "per "
        "token (a multiply-add = 2) x the tokens trained";
  if (spec.pretrain) os << "; pretraining included in time, FLOPs and memory";
  os << ". OOM: the run's memory estimate exceeds max_memory";
  if (spec.max_memory) os << " (" << format_bytes(spec.max_memory) << ")";
  os << ", so it was not started.\n";
  return os.str();
}

std::string results_csv(const ExperimentSpec& spec, const ExperimentPlan& plan,
                        const std::vector<RunResult>& results) {
  WERSA_ASSERT(results.size() == plan.runs.size());
  const std::vector<std::string> ranges =
      spec.classify ? std::vector<std::string>{} : position_ranges(plan, results);
  std::string s =
      "table,variant,T,seed,status,exit_code,steps,tokens,train_seconds,flops,peak_rss_bytes,memory_estimate_"
      "bytes";
  s += spec.classify ? ",accuracy,macro_f1,macro_auc,loss" : ",val_loss,perplexity,tok_per_s";
  for (const std::string& r : ranges) s += ",loss_" + r;
  s += "\n";
  auto cell = [](double v) {
    if (!std::isfinite(v)) return std::string();
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.10g", v);
    return std::string(buf);
  };
  for (size_t i = 0; i < plan.runs.size(); ++i) {
    const PlannedRun& p = plan.runs[i];
    if (p.kind != RunKind::Train) continue;
    const RunResult& r = results[i];
    s += std::string(p.timed ? "seconds" : "budget") + "," + p.variant + "," + std::to_string(p.T) + "," +
         (p.has_seed ? std::to_string(p.seed) : std::string()) + "," + r.status + "," +
         std::to_string(r.exit_code) + "," + std::to_string(r.steps_done) + "," + cell(r.tokens) + "," +
         cell(r.wall_s) + "," + cell(r.flops) + "," + std::to_string(r.peak_rss) + "," +
         std::to_string(p.memory.total);
    if (spec.classify)
      for (const char* k : {"accuracy", "macro_f1", "macro_auc", "loss"}) s += "," + cell(num(r.eval, k));
    else
      s += "," + cell(num(r.eval, "mean_loss")) + "," + cell(num(r.eval, "perplexity")) + "," +
           cell(r.tok_per_s);
    for (const std::string& range : ranges) s += "," + cell(position_loss(r, range));
    s += "\n";
  }
  return s;
}

json results_json(const ExperimentSpec& spec, const ExperimentPlan& plan,
                  const std::vector<RunResult>& results, const json& meta) {
  WERSA_ASSERT(results.size() == plan.runs.size());
  json runs = json::array();
  for (size_t i = 0; i < plan.runs.size(); ++i) {
    const PlannedRun& p = plan.runs[i];
    const MemoryEstimate& m = p.memory;
    runs.push_back({{"name", p.name},
                    {"kind", p.kind == RunKind::Pretrain ? "pretrain" : "train"},
                    {"table", p.kind == RunKind::Pretrain ? ""
                              : p.timed                   ? "seconds"
                                                          : "budget"},
                    {"variant", p.variant},
                    {"T", p.T},
                    {"seed", p.has_seed ? json(p.seed) : json(nullptr)},
                    {"steps", p.steps},
                    {"planned_tokens", p.tokens},
                    {"pretrain", p.pretrain >= 0 ? plan.runs[size_t(p.pretrain)].name : ""},
                    {"set", p.sets},
                    {"memory_estimate",
                     {{"total", m.total},
                      {"params", m.params},
                      {"grads", m.grads},
                      {"optimizer", m.optimizer},
                      {"activations", m.activations},
                      {"scratch", m.scratch}}},
                    {"oom", p.oom},
                    {"status_text", status_text(p, results[i])},
                    {"result", run_result_to_json(results[i])}});
  }
  json j = meta;
  j["spec_path"] = spec.path;
  j["spec"] = spec.raw;
  j["mode"] = spec.classify ? "classify" : "lm";
  j["max_memory"] = spec.max_memory;
  if (spec.classify)
    j["train_docs"] = plan.train_docs, j["num_classes"] = plan.num_classes;
  else
    j["eval_data"] = plan.eval_data;
  j["flops_convention"] = "training = 3 x forward FLOPs per token (multiply-add = 2) x tokens trained";
  j["runs"] = runs;
  if (spec.reference.is_object()) j["reference"] = spec.reference;
  return j;
}

// ---- plots ------------------------------------------------------------------------------------

namespace {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

const char* kTerminal =
    "set terminal svg size 1000,420 dynamic noenhanced font 'sans,11' background '#ffffff'\n";

struct Series {
  std::string title, file;
};

std::string plot_cmd(const std::vector<Series>& s, const char* style) {
  std::string c = "plot ";
  for (size_t i = 0; i < s.size(); ++i)
    c += (i ? ", " : "") + std::string("'") + s[i].file + "' using 1:2 with " + style + " lw 2 title '" +
         s[i].title + "'";
  return c + "\n";
}

}  // namespace

std::string write_plots(const ExperimentSpec& spec, const ExperimentPlan& plan,
                        const std::vector<RunResult>& results, const std::string& out) {
  const fs::path dir = fs::path(out) / "plots";
  fs::create_directories(dir);
  std::vector<std::string> scripts;
  const std::string val_key = spec.classify ? "val_accuracy" : "val_loss";
  // Learning curves: one plot per T, one line per variant (the equal-budget runs).
  for (const int T : spec.lengths) {
    std::vector<Series> loss, val;
    for (size_t i = 0; i < plan.runs.size(); ++i) {
      const PlannedRun& p = plan.runs[i];
      if (p.kind != RunKind::Train || p.timed || p.T != T || results[i].status != "ok") continue;
      std::string lt, vt;
      for (const json& m : read_metrics((fs::path(out) / "runs" / p.name).string())) {
        const std::string step = std::to_string(m.at("step").get<int64_t>());
        if (m.contains("loss") && m["loss"].is_number())
          lt += step + " " + std::to_string(m["loss"].get<double>()) + "\n";
        if (m.contains(val_key) && m[val_key].is_number())
          vt += step + " " + std::to_string(m[val_key].get<double>()) + "\n";
      }
      const std::string seed = p.has_seed ? "-seed" + std::to_string(p.seed) : "";
      const std::string stem = "T" + std::to_string(T) + "-" + p.variant + seed;
      const std::string title = p.variant + (p.has_seed ? " seed " + std::to_string(p.seed) : "");
      if (!lt.empty())
        write_file((dir / ("loss-" + stem + ".dat")).string(), "# step loss\n" + lt),
            loss.push_back({title, "loss-" + stem + ".dat"});
      if (!vt.empty())
        write_file((dir / ("val-" + stem + ".dat")).string(), "# step " + val_key + "\n" + vt),
            val.push_back({title, "val-" + stem + ".dat"});
    }
    if (loss.empty()) continue;
    const std::string name = "curves-T" + std::to_string(T);
    std::string gp = kTerminal + std::string("set output '") + name + ".svg'\nset grid\nset key top right\n";
    if (!val.empty()) gp += "set multiplot layout 1,2 title 'T = " + std::to_string(T) + "'\n";
    gp += "set xlabel 'step'\nset ylabel 'training loss'\nset title 'training loss'\n" +
          plot_cmd(loss, "lines");
    if (!val.empty())
      gp += "set ylabel '" + val_key + "'\nset title 'validation'\n" + plot_cmd(val, "linespoints") +
            "unset multiplot\n";
    write_file((dir / (name + ".gp")).string(), gp);
    scripts.push_back(name);
  }
  // Training time and peak memory against T, one line per variant (the mean over its seeds).
  for (const bool memory : {false, true}) {
    std::vector<Series> s;
    for (const ExperimentVariant& v : spec.variants) {
      std::string t;
      for (const int T : spec.lengths) {
        double sum = 0;
        int n = 0;
        for (size_t i = 0; i < plan.runs.size(); ++i) {
          const PlannedRun& p = plan.runs[i];
          if (p.kind != RunKind::Train || p.timed || p.variant != v.name || p.T != T ||
              results[i].status != "ok")
            continue;
          sum += memory ? double(results[i].peak_rss) / (1 << 20) : results[i].wall_s, ++n;
        }
        if (n > 0) t += std::to_string(T) + " " + std::to_string(sum / n) + "\n";
      }
      if (t.empty()) continue;
      const std::string file = std::string(memory ? "memory-" : "time-") + v.name + ".dat";
      write_file((dir / file).string(),
                 std::string("# T ") + (memory ? "peak_rss_MiB" : "train_seconds") + "\n" + t);
      s.push_back({v.name, file});
    }
    if (s.empty()) continue;
    const std::string name = memory ? "memory-vs-T" : "time-vs-T";
    std::string gp = kTerminal + std::string("set output '") + name + ".svg'\nset grid\nset logscale x 2\n" +
                     "set key top left\nset xlabel 'sequence length T'\nset ylabel '" +
                     (memory ? "peak memory (MiB)" : "training time (s)") + "'\nset title '" +
                     (memory ? "peak memory of wersa-train" : "wall time of wersa-train") + "'\n" +
                     plot_cmd(s, "linespoints");
    write_file((dir / (name + ".gp")).string(), gp);
    scripts.push_back(name);
  }
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0)
    return "gnuplot not found: wrote the plot scripts and data to " + dir.string() +
           " but no SVG (install gnuplot-nox)";
  for (const std::string& name : scripts) {
    const std::string cmd =
        "cd " + shell_quote(dir.string()) + " && gnuplot " + name + ".gp > " + name + ".log 2>&1";
    if (std::system(cmd.c_str()) != 0)
      return "gnuplot failed on " + (dir / (name + ".gp")).string() + " (see " +
             (dir / (name + ".log")).string() + ")";
  }
  return "";
}

}  // namespace wersa

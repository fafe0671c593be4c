// wersa-experiment: runs a comparison of attention kinds from a spec file (train/experiment.h):
// every (variant, length) is a child `wersa-train` (the sibling binary of this one) whose wall
// time and peak RSS (wait4) are measured, then a child `wersa-eval`; finished runs
// (OUT/runs/NAME/result.json) are skipped on a later invocation, and an interrupted run continues
// from its newest complete checkpoint (`wersa-train --resume`). Writes OUT/results.md, .csv,
// .json and OUT/plots/*.svg, and prints the markdown table. Exit status: 0 when every run
// finished or was refused for memory, 1 when one failed (the tables are written anyway), 2 for
// a bad command line, 130 when interrupted (rerun the same command to continue).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "wersa/backend/backend.h"
#include "wersa/common/cli.h"
#include "wersa/common/file.h"
#include "wersa/common/json.h"
#include "wersa/common/progress.h"
#include "wersa/io/checkpoint.h"
#include "wersa/tensor/arena.h"
#include "wersa/train/experiment.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace wersa;

namespace {

volatile sig_atomic_t g_interrupted = 0;
void on_signal(int sig) { g_interrupted = sig; }

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Child {
  int status = -1;  // exit status (128 + signal when killed by one)
  double wall_s = 0;
  int64_t peak_rss = 0;  // bytes
};

// Called about every 200 ms while a child runs; returns true to send it SIGINT.
using Poll = std::function<bool(pid_t)>;

// Runs argv[0] with argv, stdout and stderr to `log` (appended), waits with wait4.
Child run_child(const std::vector<std::string>& argv, const std::string& log, const Poll& poll) {
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  WERSA_CHECK(fd >= 0, log, ": cannot open for writing: ", std::strerror(errno));
  const std::string line = "$ " + [&] {
    std::string s;
    for (const std::string& a : argv) s += (s.empty() ? "" : " ") + a;
    return s;
  }() + "\n";
  WERSA_CHECK(::write(fd, line.data(), line.size()) == ssize_t(line.size()), log, ": write failed");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const Clock::time_point t0 = Clock::now();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  WERSA_CHECK(pid >= 0, "fork failed: ", std::strerror(errno));
  if (pid == 0) {
    // Its own process group, so that a Ctrl-C of the terminal reaches the runner only, which
    // passes one SIGINT on (a second SIGINT would stop wersa-train without its checkpoint); and
    // SIGTERM when the runner dies (even by SIGKILL), so that no orphan trains on: wersa-train
    // then finishes its step, checkpoints and exits, and the next invocation resumes it.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(128 + SIGTERM);
    ::dup2(fd, 1), ::dup2(fd, 2);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "error: cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(fd);
  Child c;
  bool signalled = false;
  for (;;) {
    int st = 0;
    rusage ru{};
    const pid_t r = ::wait4(pid, &st, WNOHANG, &ru);
    if (r == pid) {
      c.wall_s = since(t0);
      c.peak_rss = int64_t(ru.ru_maxrss) * 1024;
      c.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return c;
    }
    WERSA_CHECK(r == 0 || errno == EINTR, "wait4 failed: ", std::strerror(errno));
    if (!signalled && ((poll && poll(pid)) || g_interrupted)) ::kill(pid, SIGINT), signalled = true;
    // About 200 ms between polls, but a signal to the runner is passed on within 20 ms.
    for (int k = 0; k < 10 && (signalled || !g_interrupted); ++k)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string last_error_line(const std::string& log) {
  std::ifstream in(log);
  std::string line, last;
  while (std::getline(in, line))
    if (line.rfind("error:", 0) == 0) last = line;
  return last;
}

// The peak resident memory (VmHWM) of a running process, in bytes (0 when unreadable).
int64_t peak_rss_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  return 0;
}

std::string machine_cpu() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      std::string v = line.substr(line.find(':') + 1);
      return v.erase(0, v.find_first_not_of(' '));
    }
  return "unknown";
}

// Where a run trained (RunResult::machine).
json run_machine() {
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&now));
  return {{"cpu", machine_cpu()},
          {"cores", std::thread::hardware_concurrency()},
          {"blas_kernels", blas_kernel_name()},
          {"date", date}};
}

json meta(int argc, char** argv) {
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
  utsname u{};
  ::uname(&u);
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S%z", std::localtime(&now));
  std::error_code ec;
  return {{"command", cmd},
          {"cwd", fs::current_path(ec).string()},
          {"date", date},
          {"machine",
           {{"uname",
             std::string(u.sysname) + " " + u.nodename + " " + u.release + " " + u.version + " " + u.machine},
            {"cpu", machine_cpu()},
            {"cores", std::thread::hardware_concurrency()}}}};
}

// wersa-eval's "key value" lines and "by_position LO-HI tokens N mean_loss X" lines.
json parse_lm_eval(const std::string& text, const std::string& where) {
  json j = {{"by_position", json::array()}};
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string key;
    ls >> key;
    if (key == "by_position") {
      std::string range, w1, w2;
      int64_t n = 0;
      double loss = 0;
      ls >> range >> w1 >> n >> w2 >> loss;
      WERSA_CHECK(ls && w1 == "tokens" && w2 == "mean_loss", where, ": unexpected line '", line, "'");
      j["by_position"].push_back({{"range", range}, {"tokens", n}, {"mean_loss", loss}});
    } else if (key == "mean_loss" || key == "perplexity" || key == "bits_per_token" || key == "tok_per_s" ||
               key == "tokens") {
      double v = 0;
      ls >> v;
      WERSA_CHECK(bool(ls), where, ": unexpected line '", line, "'");
      j[key] = v;
    }
  }
  WERSA_CHECK(j.contains("mean_loss"), where, ": no mean_loss line");
  return j;
}

struct Runner {
  ExperimentSpec spec;
  ExperimentPlan plan;
  fs::path out, bin;
  bool force = false;
  double progress_every = 10;
  std::string device = "cpu";  // --device: every child's train.device and wersa-eval --device
  std::vector<RunResult> results;
  std::vector<bool> selected;  // the runs this invocation trains (--only)
  // For the experiment ETA: planned tokens and seconds of the runs trained by this invocation.
  double done_tokens = 0, done_seconds = 0;

  fs::path run_dir(size_t i) const { return out / "runs" / plan.runs[i].name; }
  std::string tool(const char* name) const { return (bin / name).string(); }

  bool finished(size_t i) {
    const fs::path f = run_dir(i) / "result.json";
    std::error_code ec;
    if (force || !fs::is_regular_file(f, ec)) return false;
    results[i] = run_result_from_json(read_json_file(f.string()), f.string());
    // A too-slow row stands while the limit it exceeded does; a higher limit continues the run.
    return results[i].status == "ok" || (results[i].status == "too_slow" && spec.time_limit_s > 0 &&
                                         results[i].time_limit_s == spec.time_limit_s);
  }

  // --import FILE: the finished rows (ok, too slow) of an earlier invocation's results.json, from
  // this machine or another, become OUT/runs/NAME/result.json where that run has none, so that a
  // protocol whose output directory was lost continues from its kept (e.g. committed) tables. A
  // row is taken only for a run of this plan trained with the same T, steps and --set list; a row
  // of the same name trained otherwise is an error, so rows of another protocol never mix in.
  void import_results(const std::string& file) {
    const json j = read_json_file(file);
    WERSA_CHECK(j.is_object() && j.contains("runs") && j["runs"].is_array(), file,
                ": not the results.json of a wersa-experiment (no list 'runs')");
    for (const json& row : j["runs"]) {
      WERSA_CHECK(row.is_object() && row.contains("name") && row.contains("result"), file,
                  ": a row of 'runs' without its name or result");
      const std::string name = row["name"].get<std::string>();
      size_t i = 0;
      while (i < plan.runs.size() && plan.runs[i].name != name) ++i;
      if (i == plan.runs.size()) {
        std::fprintf(stderr, "--import %s: %s is not a run of this spec, ignored\n", file.c_str(),
                     name.c_str());
        continue;
      }
      const PlannedRun& p = plan.runs[i];
      const RunResult res = run_result_from_json(row["result"], file);
      if (res.status != "ok" && res.status != "too_slow") continue;
      WERSA_CHECK(row.value("T", int64_t(-1)) == p.T && row.value("steps", int64_t(-1)) == p.steps &&
                      row.value("set", json()) == json(p.sets),
                  file, ": run '", name, "' was trained otherwise than ", spec.path,
                  " plans it (T, steps or --set differ); rows of another protocol are not imported");
      const fs::path dir = run_dir(i), f = dir / "result.json";
      std::error_code ec;
      if (fs::exists(f, ec)) {
        note(i, "has its own " + f.string() + "; the row of " + file + " is not used");
        continue;
      }
      fs::create_directories(dir);
      write_file(f.string(), row["result"].dump(2) + "\n");
      note(i, std::string(res.status == "ok" ? "finished" : "too slow") + " in " + file + ": imported");
    }
  }

  // Time left: `current_left_s` of run i, then the later runs (timed ones take spec.seconds, the others
  // their planned tokens at the rate of the runs finished so far), plus `current_left_tokens`.
  std::string experiment_eta(size_t i, double current_left_tokens, double current_left_s) const {
    double tokens = current_left_tokens, secs = current_left_s;
    for (size_t k = i + 1; k < plan.runs.size(); ++k) {
      if (plan.runs[k].oom || results[k].status == "ok" || !selected[k]) continue;
      if (plan.runs[k].timed)
        secs += spec.seconds;
      else
        tokens += double(plan.runs[k].tokens);
    }
    if (tokens > 0 && done_tokens <= 0) return "?";
    return human_duration(secs + (tokens > 0 ? tokens * done_seconds / done_tokens : 0));
  }

  void note(size_t i, const std::string& what) const {
    const PlannedRun& p = plan.runs[i];
    const std::string seed = p.has_seed ? " seed " + std::to_string(p.seed) : "";
    std::fprintf(stderr, "[%zu/%zu] %s T=%lld%s: %s\n", i + 1, plan.runs.size(), p.variant.c_str(),
                 static_cast<long long>(p.T), seed.c_str(), what.c_str());
  }

  void encode_pretrain_data() {
    if (plan.encode_input.empty()) return;
    std::error_code ec;
    if (!force && fs::is_regular_file(fs::path(plan.encode_dir) / "dataset.json", ec)) return;
    const Config base = [&] {
      Config c = config_from_file(spec.base);
      config_set_all(c, spec.set, spec.path + ": set");
      return c;
    }();
    const std::string tok = base.data.tokenizer.empty() ? "byte" : base.data.tokenizer;
    std::fprintf(stderr, "encoding the pretraining corpus %s into %s (%s tokenizer)\n",
                 plan.encode_input.c_str(), plan.encode_dir.c_str(), tok.c_str());
    const std::string log = (out / "pretrain-data.log").string();
    const Child c = run_child({tool("wersa-tokenize"), "encode", "--tokenizer", tok, "--input",
                               plan.encode_input, "--out", plan.encode_dir, "--val-fraction", "0.01",
                               "--overwrite", "--quiet", "--threads", std::to_string(spec.threads)},
                              log, {});
    if (g_interrupted) throw Error("interrupted while encoding the pretraining corpus");
    WERSA_CHECK(c.status == 0, "encoding ", plan.encode_input, " failed (exit ", c.status, "; see ", log,
                "): ", last_error_line(log));
  }

  void run(size_t i) {
    const PlannedRun& p = plan.runs[i];
    RunResult& r = results[i];
    if (p.oom) {
      r.status = "oom";
      note(i, "OOM: estimate " + format_bytes(p.memory.total) + " exceeds max_memory " +
                  format_bytes(spec.max_memory) + ", not started");
      return;
    }
    if (finished(i)) {
      note(i, std::string(r.status == "ok" ? "done" : "too slow") + " before (" + run_dir(i).string() +
                  "/result.json), skipped");
      return;
    }
    const PlannedRun* pre = p.pretrain >= 0 ? &plan.runs[size_t(p.pretrain)] : nullptr;
    if (pre && results[size_t(p.pretrain)].status != "ok") {
      r.status = "failed", r.exit_code = results[size_t(p.pretrain)].exit_code;
      r.error = "its pretraining run " + pre->name + " failed";
      note(i, r.error);
      return;
    }
    const fs::path dir = run_dir(i);
    std::vector<std::string> argv = {tool("wersa-train"), "--config", spec.base, "--out", dir.string()};
    std::vector<std::string> sets = p.sets;
    // A timed run without max_steps: the steps its budget run trains in spec.seconds, so that its
    // schedule ends in time; SIGINT only stops it if it runs far slower (2 x seconds + 30 s).
    int64_t steps = p.steps;
    double stop_after = spec.seconds;
    std::string plan_note;
    if (p.timed && spec.seconds_steps == 0) {
      const RunResult* b = p.budget_run >= 0 ? &results[size_t(p.budget_run)] : nullptr;
      const int64_t n = b && b->status == "ok" ? timed_steps_from_rate(p, spec.seconds, b->tok_per_s) : 0;
      if (n > 0) {
        steps = n, stop_after = 2 * spec.seconds + 30;
        char buf[160];
        std::snprintf(buf, sizeof buf, " (%s at %.0f tokens/s of %s)", format_seconds(spec.seconds).c_str(),
                      b->tok_per_s, plan.runs[size_t(p.budget_run)].name.c_str());
        plan_note = buf;
        for (std::string& s : sets)
          if (s.rfind("train.steps=", 0) == 0) s = "train.steps=" + std::to_string(steps);
      } else {
        plan_note = " planned (no rate from its budget run), stopped after " + format_seconds(spec.seconds);
      }
    } else if (p.timed) {
      plan_note = " planned, stopped after " + format_seconds(spec.seconds);
    }
    if (pre)
      sets.push_back("train.init_from=" + io::find_latest_checkpoint(run_dir(size_t(p.pretrain)).string()));
    // Only where it is not the default, so that the commands of CPU runs (command.json, which
    // decides whether an interrupted run may continue) stay those of earlier versions.
    if (device != "cpu") sets.push_back("train.device=" + device);
    for (const std::string& s : sets) argv.push_back("--set"), argv.push_back(s);
    if (spec.max_memory) argv.push_back("--max-memory"), argv.push_back(std::to_string(spec.max_memory));
    // Continue what an earlier invocation left: its checkpoint when it has a usable one, else afresh.
    json attempts = json::array();
    const int64_t from = prepare_run_dir(i, argv, steps, attempts);
    const double left_share = from > 0 ? double(steps - from) / double(steps) : 1.0;
    if (from >= steps) {
      note(i, "trained to step " + std::to_string(from) + " by an earlier invocation; evaluating");
    } else {
      if (from > 0) argv.push_back("--resume"), plan_note += " from step " + std::to_string(from);
      note(i, std::string(from > 0                      ? "resuming"
                          : p.kind == RunKind::Pretrain ? "pretraining"
                                                        : "training") +
                  " " + p.name + ", " + std::to_string(steps) + " steps" + plan_note + " (experiment ETA " +
                  experiment_eta(i, double(p.timed ? 0 : p.tokens) * left_share, p.timed ? spec.seconds : 0) +
                  ")");
    }
    // Progress from the child's metrics.jsonl; a timed run's clock starts when it opens that file
    // (after its data is loaded), and SIGINT stops it when the clock runs out.
    const Clock::time_point t0 = Clock::now();
    Clock::time_point started{}, last_note = t0, last_record = t0 - std::chrono::seconds(10);
    bool have_start = false;
    const int64_t first = std::max<int64_t>(from, 0);
    int64_t last_step = first;
    const fs::path metrics = dir / "metrics.jsonl";
    // time_limit: an attempt that starts before the probe's end measures steps first+2 ..
    // probe_steps (its first step, with the warm-up, is left out), extrapolates the whole run, and
    // is stopped at the probe's end when that exceeds the limit.
    bool probing = spec.time_limit_s > 0 && !p.timed && first + 1 < spec.probe_steps;
    bool too_slow = false;
    double s_per_step = 0;
    Clock::time_point last_probe = t0;
    const Poll poll = [&](pid_t pid) {
      std::error_code ec;
      if (probing && since(last_probe) >= 0.1) {
        last_probe = Clock::now();
        double ms = 0;
        int64_t n = 0;
        for (const json& m : read_metrics(dir.string()))
          if (m.contains("ms") && m.value("step", int64_t(0)) > first + 1 &&
              m.value("step", int64_t(0)) <= spec.probe_steps)
            ms += m["ms"].get<double>(), ++n;
        if (n >= spec.probe_steps - first - 1) {
          probing = false;
          s_per_step = ms / 1000.0 / double(n);
          too_slow = s_per_step * double(steps) > spec.time_limit_s;
          if (too_slow) return true;
        }
      }
      if (since(last_record) >= 10) {  // this attempt and its time so far, should the runner be killed
        last_record = Clock::now();
        record_attempts(dir, attempts, json{{"wall_s", since(t0)}, {"peak_rss", peak_rss_of(pid)}});
      }
      if (!have_start && fs::exists(metrics, ec) && from <= 0) started = Clock::now(), have_start = true;
      if (!have_start && from > 0) started = t0, have_start = true;
      if (!have_start) return false;
      const double el = since(started);
      if (since(last_note) >= progress_every) {
        last_note = Clock::now();
        int64_t step = last_step;
        for (const json& m : read_metrics(dir.string()))
          if (m.contains("loss")) step = std::max(step, m["step"].get<int64_t>());
        last_step = step;
        if (step > first) {
          const double left = p.timed && spec.seconds_steps > 0
                                  ? std::max(0.0, spec.seconds - el)
                                  : el * double(steps - step) / double(step - first);
          // This run's own ETA, then the later runs at the rate of the finished ones (or of this one).
          const double rate_tokens = done_tokens, rate_secs = done_seconds;
          if (done_tokens <= 0 && !p.timed)
            done_tokens = double(p.tokens) * double(step - first) / double(p.steps), done_seconds = el;
          note(i, "step " + std::to_string(step) + "/" + std::to_string(steps) + ", ETA " +
                      human_duration(left) + " (experiment ETA " + experiment_eta(i, 0, left) + ")");
          done_tokens = rate_tokens, done_seconds = rate_secs;
        }
      }
      return p.timed && el >= stop_after;
    };
    Child c;
    c.status = 0;
    if (from < steps) {
      c = run_child(argv, (dir / "log.txt").string(), poll);
      record_attempts(dir, attempts,
                      json{{"wall_s", c.wall_s}, {"peak_rss", c.peak_rss}, {"exit", c.status}});
    }
    if (g_interrupted) throw Error("interrupted during " + p.name + "; rerun the same command to continue");
    r = RunResult{};
    r.exit_code = c.status;
    // Its train time and peak over every attempt (an attempt whose runner was killed: up to its last record).
    for (const json& a : attempts)
      r.wall_s += a.value("wall_s", 0.0), r.peak_rss = std::max(r.peak_rss, a.value("peak_rss", int64_t(0)));
    const bool ok = c.status == 0 || (p.timed && c.status == 128 + SIGINT);
    summarize_metrics(p, read_metrics(dir.string()), r);
    r.machine = run_machine();
    if (too_slow && c.status == 128 + SIGINT) {
      r.status = "too_slow", r.s_per_step = s_per_step, r.time_limit_s = spec.time_limit_s;
      r.extrapolated_s = s_per_step * double(steps);
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "too slow: %.3g s per step over steps %lld-%lld, %s for its %lld steps > %s", s_per_step,
                    static_cast<long long>(first + 2), static_cast<long long>(spec.probe_steps),
                    format_seconds(r.extrapolated_s).c_str(), static_cast<long long>(steps),
                    format_seconds(spec.time_limit_s).c_str());
      r.error = buf;
      write_file((dir / "result.json").string(), run_result_to_json(r).dump(2) + "\n");
      note(i, r.error + "; stopped at step " + std::to_string(r.steps_done) + " (checkpoint kept)");
      return;
    }
    if (!ok) {
      r.status = "failed", r.error = last_error_line((dir / "log.txt").string());
      note(i, "failed (exit " + std::to_string(c.status) + "): " + r.error);
      write_file((dir / "result.json").string(), run_result_to_json(r).dump(2) + "\n");
      return;
    }
    if (!p.timed && from < steps) done_tokens += double(p.tokens) * left_share, done_seconds += c.wall_s;
    if (p.kind == RunKind::Train) evaluate(i, r);
    if (r.status == "pending") r.status = "ok";
    if (pre && r.status == "ok") {  // the row's cost includes its pretraining
      const RunResult& pr = results[size_t(p.pretrain)];
      r.wall_s += pr.wall_s, r.flops += pr.flops, r.peak_rss = std::max(r.peak_rss, pr.peak_rss);
    }
    write_file((dir / "result.json").string(), run_result_to_json(r).dump(2) + "\n");
    note(i, r.status + " in " + format_seconds(c.wall_s) + ", " + std::to_string(r.steps_done) +
                " steps, peak " + format_bytes(size_t(c.peak_rss)) + (r.error.empty() ? "" : ": " + r.error));
  }

  // Waits while a wersa-train of an earlier invocation still holds DIR/.lock: a runner killed by a
  // signal leaves its child to finish the step and write its checkpoint (SIGTERM on the runner's death).
  void wait_for_run_dir(size_t i, const fs::path& dir) const {
    std::error_code ec;
    if (!fs::exists(dir / ".lock", ec)) return;
    for (int waited = 0;; ++waited) {
      try {
        const DirLock lock(dir.string(), ".lock", "a wersa-train of an earlier invocation");
        return;
      } catch (const Error& e) {
        const std::string what = e.what();
        if (what.find("is using this directory") == std::string::npos) throw;
        if (waited == 0) note(i, "waiting for it to checkpoint and exit: " + what);
        WERSA_CHECK(waited < 3600, what);
        if (g_interrupted) throw Error("interrupted while waiting for " + dir.string());
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
  }

  // Prepares the directory of run i and returns the step to continue from: the step of its newest
  // complete checkpoint when an earlier invocation ran the same command there (>= steps: training
  // finished, only the evaluation is left), or 0 after emptying the directory (nothing usable; the
  // progress output says why). `attempts` receives the earlier attempts' times.
  int64_t prepare_run_dir(size_t i, const std::vector<std::string>& argv, int64_t steps, json& attempts) {
    const PlannedRun& p = plan.runs[i];
    const fs::path dir = run_dir(i);
    const std::vector<std::string> command(argv.begin() + 1, argv.end());  // the tools may move
    std::error_code ec;
    std::string afresh = "new";
    int64_t from = 0;
    if (fs::is_directory(dir, ec) && !fs::is_empty(dir, ec)) {
      afresh.clear();
      wait_for_run_dir(i, dir);
      try {
        const io::CheckpointSearch found = io::find_checkpoints(dir.string(), true);
        const fs::path cmd = dir / "command.json";
        if (force)
          afresh = "--force";
        else if (p.timed)
          afresh = "a timed run's clock cannot continue";
        else if (!fs::is_regular_file(cmd, ec))
          afresh = "no command.json";
        else if (read_json_file(cmd.string()) != json(command))
          afresh = "its command line has changed (an edited spec?)";
        else if (found.newest.empty())
          afresh = "no complete checkpoint";
        else
          from = io::load_checkpoint_state(found.newest).step;
        if (afresh.empty() && fs::is_regular_file(dir / "attempts.json", ec)) {
          try {  // damaged: its earlier times are lost, the checkpoint is still good
            attempts = read_json_file((dir / "attempts.json").string());
            WERSA_CHECK(attempts.is_array(), "not a list");
            for (json& a : attempts) {  // an attempt without its exit status: its runner was killed
              WERSA_CHECK(a.is_object(), "not a list of objects");
              a = json{{"wall_s", a.value("wall_s", 0.0)},
                       {"peak_rss", a.value("peak_rss", int64_t(0))},
                       {"exit", a.value("exit", -1)}};
            }
          } catch (const std::exception& e) {
            note(i,
                 dir.string() + "/attempts.json unreadable (" + e.what() + "): its earlier times are lost");
            attempts = json::array();
          }
        }
        if (afresh.empty() && from > steps) afresh = "its checkpoint is beyond the planned steps";
      } catch (const std::exception& e) {
        afresh = e.what(), from = 0, attempts = json::array();
      }
      if (afresh.empty())
        note(i, "continuing " + dir.string() + " from its checkpoint step-" + std::to_string(from));
      else
        note(i, "starting afresh (" + afresh + "): " + dir.string() + " emptied");
    }
    if (!afresh.empty()) {
      fs::remove_all(dir);
      fs::create_directories(dir);
      write_file((dir / "command.json").string(), json(command).dump() + "\n");
    }
    fs::remove(dir / "result.json", ec);
    return from;
  }

  // Writes run i's attempts: the earlier ones and `current` (rewritten while it runs).
  static void record_attempts(const fs::path& dir, json& attempts, const json& current) {
    if (attempts.empty() || attempts.back().contains("exit")) attempts.push_back(json::object());
    attempts.back() = current;
    write_file((dir / "attempts.json").string(), attempts.dump() + "\n");
  }

  void evaluate(size_t i, RunResult& r) {
    const PlannedRun& p = plan.runs[i];
    const fs::path dir = run_dir(i);
    const std::string log = (dir / "eval-log.txt").string(), threads = std::to_string(spec.threads);
    std::vector<std::string> argv = {tool("wersa-eval"), "-m",  dir.string(), "--threads", threads,
                                     "--device",         device};
    if (spec.classify) {
      argv.insert(argv.end(), {"--split", spec.eval_split, "--metrics-json", (dir / "eval.json").string()});
    } else {
      std::error_code ec;
      const std::string& d = plan.eval_data;
      const bool text = fs::is_regular_file(d, ec) && d.size() > 4 && d.compare(d.size() - 4, 4, ".bin") != 0;
      argv.insert(argv.end(), {text ? "--text" : "--shards", d, "--by-position"});
      if (spec.eval_max_tokens > 0)
        argv.insert(argv.end(), {"--max-tokens", std::to_string(spec.eval_max_tokens)});
    }
    note(i, "evaluating " + p.name);
    const Child c = run_child(argv, log, {});
    if (g_interrupted)
      throw Error("interrupted while evaluating " + p.name + "; rerun the same command to continue");
    if (c.status != 0) {
      r.status = "failed", r.exit_code = c.status, r.error = "wersa-eval: " + last_error_line(log);
      return;
    }
    if (spec.classify) {
      r.eval = read_json_file((dir / "eval.json").string());
    } else {
      // The eval log holds the command line and the tool's log lines too; the figures are its stdout lines.
      r.eval = parse_lm_eval(read_file(log), log);
    }
  }

  void report(int argc, char** argv, bool print) {
    for (size_t i = 0; i < plan.runs.size(); ++i) {
      if (plan.runs[i].oom)
        results[i].status = "oom";
      else if (results[i].status == "pending")
        finished(i);
    }
    write_file((out / "results.md").string(), results_markdown(spec, plan, results));
    write_file((out / "results.csv").string(), results_csv(spec, plan, results));
    write_file((out / "results.json").string(),
               results_json(spec, plan, results, meta(argc, argv)).dump(2) + "\n");
    const std::string plots = write_plots(spec, plan, results, out.string());
    if (!plots.empty()) std::fprintf(stderr, "%s\n", plots.c_str());
    if (print) std::fputs(results_markdown(spec, plan, results).c_str(), stdout);
    std::fprintf(stderr, "wrote %s/results.md, results.csv, results.json%s\n", out.string().c_str(),
                 plots.empty() ? " and plots/*.svg" : "");
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace wersa::cli;
  CLI::App app{
      "wersa-experiment: train and evaluate every variant x length of an experiment spec, and tabulate",
      "wersa-experiment"};
  std::string spec_path, out;
  bool dry_run = false, force = false, report_only = false;
  std::vector<std::string> only;
  double progress_every = 10;
  std::string device = "cpu";
  std::vector<std::string> imports;
  app.add_option("spec", spec_path, "experiment spec (JSON; see configs/experiments/)")
      ->required()
      ->check(existing_file());
  app.add_option("-o,--out", out, "output directory: runs/, results.md, results.csv, results.json, plots/")
      ->check(output_dir());
  app.add_flag("--dry-run", dry_run,
               "print the plan (runs, steps, memory estimates, OOM decisions) and stop");
  app.add_flag("--force", force, "rerun runs that already finished (default: skip them)");
  app.add_flag("--report-only", report_only,
               "run nothing: rewrite the tables and plots from the finished runs");
  app.add_option("--only", only,
                 "run only these runs, by name as --dry-run lists them (NAME,NAME; a trailing * matches a "
                 "prefix); the others are left as they are")
      ->delimiter(',');
  app.add_option("--progress-every", progress_every, "seconds between progress lines of a running child")
      ->check(number(0, 1e6))
      ->capture_default_str();
  app.add_option("--import", imports,
                 "results.json of an earlier invocation of this spec (kept or committed, from any machine): "
                 "its finished rows count as finished here (repeatable)")
      ->check(existing_file());
  app.add_option(
         "--device", device,
         "where every run trains and is evaluated: cpu or cuda (sets train.device; wersa-eval --device)")
      ->check(one_of({"cpu", "cuda"}))
      ->capture_default_str();
  return run_cli([&] {
    std::string help;
    if (parse_flags(app, argc, argv, &help)) {
      std::fputs(help.c_str(), stdout);
      return 0;
    }
    if (out.empty() && !dry_run) usage_error(app, "--out DIR is required (except with --dry-run)");
    Runner r;
    r.spec = read_experiment_spec(spec_path);
    r.out = out.empty() ? fs::path("OUT") : fs::absolute(out);  // OUT: a --dry-run without --out
    r.plan = plan_experiment(r.spec, r.out.string());
    std::vector<bool>& selected = r.selected;
    selected.assign(r.plan.runs.size(), only.empty());
    for (const std::string& pat : only) {
      const bool prefix = !pat.empty() && pat.back() == '*';
      const std::string stem = prefix ? pat.substr(0, pat.size() - 1) : pat;
      bool any = false;
      for (size_t i = 0; i < r.plan.runs.size(); ++i) {
        const std::string& name = r.plan.runs[i].name;
        if (prefix ? name.rfind(stem, 0) == 0 : name == stem) selected[i] = true, any = true;
      }
      if (!any) usage_error(app, "--only: '" + pat + "' names no run of the spec (see --dry-run)");
    }
    for (size_t i = 0; i < r.plan.runs.size(); ++i)  // a fine-tuning needs its pretraining
      if (selected[i] && r.plan.runs[i].pretrain >= 0) selected[size_t(r.plan.runs[i].pretrain)] = true;
    if (dry_run) {
      std::fputs(describe_plan(r.spec, r.plan).c_str(), stdout);
      return 0;
    }
    std::error_code ec;
    r.bin = fs::read_symlink("/proc/self/exe", ec).parent_path();
    WERSA_CHECK(!ec, "/proc/self/exe: cannot read: ", ec.message());
    for (const char* t : {"wersa-train", "wersa-eval", "wersa-tokenize"})
      WERSA_CHECK(::access((r.bin / t).c_str(), X_OK) == 0, (r.bin / t).string(),
                  ": not found (wersa-experiment runs the tools beside it)");
    r.force = force, r.progress_every = progress_every, r.device = device;
    r.results.assign(r.plan.runs.size(), RunResult{});
    fs::create_directories(r.out / "runs");
    const DirLock lock(r.out.string(), ".lock", "wersa-experiment");
    for (const std::string& f : imports) r.import_results(f);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);
    std::fputs(describe_plan(r.spec, r.plan).c_str(), stderr);
    const Clock::time_point t0 = Clock::now();
    for (size_t i = 0; i < r.plan.runs.size(); ++i) r.finished(i);  // for the ETA: what is left to do
    if (!report_only) {
      try {
        r.encode_pretrain_data();
        for (size_t i = 0; i < r.plan.runs.size(); ++i)
          if (selected[i]) r.run(i);
      } catch (const Error& e) {
        if (!g_interrupted) throw;
        std::fprintf(stderr, "error: %s\n", e.what());
        r.force = false;
        r.report(argc, argv, false);
        return 128 + int(g_interrupted);
      }
    }
    r.report(argc, argv, true);
    int failed = 0;
    for (const RunResult& x : r.results) failed += x.status == "failed";
    std::fprintf(stderr, "experiment done in %s: %zu runs, %d failed\n", format_seconds(since(t0)).c_str(),
                 r.plan.runs.size(), failed);
    return failed ? 1 : 0;
  });
}

// wersa-train as a process, stopped the ways a long run is stopped: SIGINT / SIGTERM / SIGHUP
// (finish the step, checkpoint, exit 128 + signal; a second signal exits at once) and SIGKILL at
// aimed moments (while a checkpoint is being written) and at random ones. After each, --resume
// must continue from the newest complete checkpoint, and the finished run must match an
// uninterrupted one bitwise (losses and the final checkpoint's files), with each step once in
// metrics.jsonl and no torn line.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "testutil.h"
#include "trainutil.h"
#include "wersa/io/checkpoint.h"

using namespace wersa;
using namespace wersa::test;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// wersa-train with args, stdout and stderr into `log`; returns the pid.
pid_t start_train(const std::vector<std::string>& args, const std::string& log) {
  const std::string bin = std::string(WERSA_BIN_DIR) + "/wersa-train";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv{const_cast<char*>(bin.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// Exit status (or 128 + signal when killed; then *killed is set, so that an exit with 128 + signal,
// what wersa-train does after a signal, is told apart from a death by that signal).
int wait_for(pid_t pid, bool* killed = nullptr) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (killed) *killed = WIFSIGNALED(st);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

bool any_checkpoint(const fs::path& run) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run, ec))
    if (e.path().filename().string().rfind("step-", 0) == 0) return true;
  return false;
}

bool any_tmp_checkpoint(const fs::path& run) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) == 0 && n.size() > 4 && n.substr(n.size() - 4) == ".tmp") return true;
  }
  return false;
}

int64_t metrics_lines(const fs::path& run) {
  std::error_code ec;
  if (!fs::exists(run / "metrics.jsonl", ec)) return 0;
  const std::string t = read_file((run / "metrics.jsonl").string());
  return int64_t(std::count(t.begin(), t.end(), '\n'));
}

struct TrainRun {
  TempDir dir{"crash"};
  std::string config;
  TrainRun(int steps, int checkpoint_every, int seq_len = 64, int batch = 4) {
    Config c = tiny_config(dir.path);
    c.train.seq_len = seq_len;
    c.train.batch_size = batch;
    c.train.steps = steps;
    c.train.checkpoint_every = checkpoint_every;
    c.train.threads = 1;
    write_file(dir / "config.json", config_to_json(c).dump(2));
    config = dir / "config.json";
  }
  std::vector<std::string> args(const std::string& out, bool resume) const {
    std::vector<std::string> a{"--config", config, "--out", dir / out};
    if (resume) a.push_back("--resume");
    return a;
  }
  std::vector<double> reference(int steps) {
    EXPECT_EQ(wait_for(start_train(args("ref", false), dir / "ref.log")), 0) << read_file(dir / "ref.log");
    const std::vector<double> l = metrics_losses(dir / "ref");
    EXPECT_EQ(int64_t(l.size()), steps);
    return l;
  }
};

void wait_until(const std::function<bool()>& cond, double seconds) {
  const auto t0 = Clock::now();
  while (!cond() && std::chrono::duration<double>(Clock::now() - t0).count() < seconds)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
}

}  // namespace

TEST(Crash, SignalFinishesTheStepWritesACheckpointAndResumesBitwise) {
  const int steps = 60;
  TrainRun run(steps, 0);  // no periodic checkpoints: without the signal handling all would be lost
  const std::vector<double> want = run.reference(steps);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    const std::string out = "sig" + std::to_string(sig);
    const fs::path dir = run.dir.path / out;
    const pid_t pid = start_train(run.args(out, false), run.dir / (out + ".log"));
    wait_until([&] { return metrics_lines(dir) >= 3; }, 60);
    ::kill(pid, sig);
    bool killed = true;
    EXPECT_EQ(wait_for(pid, &killed), 128 + sig);
    EXPECT_FALSE(killed) << "died of the signal instead of exiting with 128 + signal";
    const std::string log = read_file(run.dir / (out + ".log"));
    const int64_t done = metrics_lines(dir);
    ASSERT_GE(done, 3) << log;
    ASSERT_LT(done, steps) << "the run ended before the signal";
    char ck[32];
    std::snprintf(ck, sizeof ck, "step-%06lld", static_cast<long long>(done));
    EXPECT_TRUE(fs::exists(dir / ck / "state.json")) << log;
    EXPECT_NE(log.find("error: interrupted by SIG"), std::string::npos) << log;
    EXPECT_NE(log.find(std::string(ck) + " written; continue with --resume"), std::string::npos) << log;
    EXPECT_EQ(wait_for(start_train(run.args(out, true), run.dir / (out + ".log"))), 0);
    EXPECT_EQ(metrics_losses(dir), want) << "signal " << sig;
    // The final checkpoint is byte for byte the uninterrupted run's.
    expect_same_checkpoint(run.dir.path / "ref" / io::checkpoint_name(steps),
                           dir / io::checkpoint_name(steps));
  }
}

// The second signal ends the run at once: within a fraction of a step, with 128 + signal, and
// without a checkpoint (none is periodic here, so any step-* directory would be the signal's).
TEST(Crash, SecondSignalExitsAtOnce) {
  TrainRun run(100000, 0, 1024, 32);  // steps of about a second: the second signal comes within one
  const fs::path dir = run.dir.path / "run";
  const pid_t pid = start_train(run.args("run", false), run.dir / "run.log");
  wait_until([&] { return metrics_lines(dir) >= 1; }, 60);
  ASSERT_GE(metrics_lines(dir), 1) << read_file(run.dir / "run.log");
  // The first signal lands well inside step 2 (a tenth of a step after step 1 was logged), not
  // between step 1's log line and its check for a signal, where it would start a checkpoint.
  const std::string m = read_file((dir / "metrics.jsonl").string());
  const double step_ms = nlohmann::json::parse(m.substr(0, m.find('\n'))).at("ms").get<double>();
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(step_ms / 10));
  ::kill(pid, SIGINT);
  wait_until([&] { return read_file(run.dir / "run.log").find("interrupt received") != std::string::npos; },
             10);
  const int64_t steps_before = metrics_lines(dir);
  const auto t0 = Clock::now();
  ::kill(pid, SIGINT);
  bool killed = true;
  EXPECT_EQ(wait_for(pid, &killed), 128 + SIGINT);
  const double exit_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  EXPECT_FALSE(killed) << "died of the signal instead of exiting with 128 + signal";
  const std::string log = read_file(run.dir / "run.log");
  EXPECT_NE(log.find("second signal, exiting now"), std::string::npos) << log;
  EXPECT_FALSE(any_checkpoint(dir)) << "a checkpoint was written after the second signal";
  EXPECT_EQ(log.find("written; continue with --resume"), std::string::npos) << log;
  // The step in progress was not finished, and the exit took far less than a step.
  EXPECT_EQ(metrics_lines(dir), steps_before);
  std::fprintf(stderr, "exit %.1f ms after the second signal; a step %.0f ms\n", exit_ms, step_ms);
  EXPECT_LT(exit_ms, step_ms / 2) << "the exit took " << exit_ms << " ms, a step " << step_ms << " ms";
}

// SIGKILL while checkpoints are written (aimed: the moment a step-*.tmp directory appears, plus a
// random delay of up to 3 ms) and at random moments, bounded in count and time; then the run is
// finished with --resume and compared with the uninterrupted one.
TEST(Crash, KillNineAnywhereThenResumeMatchesBitwise) {
  // Enough steps that the run outlasts the kills: 40 were done within three kills once the CPU
  // kernels got faster (the count of kills, not the speed, is what this test needs).
  const int steps = 150;
  TrainRun run(steps, 1);
  const std::vector<double> want = run.reference(steps);
  const fs::path dir = run.dir.path / "run";
  std::mt19937 rng(20261201);
  int kills = 0, inside_writes = 0;
  const auto t0 = Clock::now();
  for (int attempt = 0; attempt < 12 && std::chrono::duration<double>(Clock::now() - t0).count() < 60;
       ++attempt) {
    const bool aimed = attempt % 2 == 0;
    const pid_t pid = start_train(run.args("run", attempt > 0), run.dir / "run.log");
    if (aimed) {
      const int64_t before = metrics_lines(dir);
      wait_until([&] { return metrics_lines(dir) > before + 1 && any_tmp_checkpoint(dir); }, 30);
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 400));
    }
    ::kill(pid, SIGKILL);
    const int status = wait_for(pid);
    if (status == 0) break;  // it finished first
    ASSERT_EQ(status, 128 + SIGKILL) << read_file(run.dir / "run.log");
    ++kills;
    if (any_tmp_checkpoint(dir)) ++inside_writes;
  }
  std::fprintf(stderr, "%d kills, %d of them inside a checkpoint write\n", kills, inside_writes);
  EXPECT_GE(kills, 4);
  EXPECT_GE(inside_writes, 1) << "no kill landed inside a checkpoint write";
  const pid_t pid = start_train(run.args("run", true), run.dir / "run.log");
  ASSERT_EQ(wait_for(pid), 0) << read_file(run.dir / "run.log");
  EXPECT_EQ(metrics_losses(dir), want);
  expect_same_checkpoint(run.dir.path / "ref" / io::checkpoint_name(steps), dir / io::checkpoint_name(steps));
}

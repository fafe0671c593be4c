// wersa-experiment continues an interrupted experiment: a classify spec with pretraining on a few
// arxiv11 papers is started as a child process and stopped four times in the middle of a run (after
// a checkpoint): SIGINT (the runner passes it on, its wersa-train checkpoints), SIGKILL of the runner
// and its wersa-train (a crash), SIGKILL of the runner alone (its wersa-train gets SIGTERM, checkpoints
// and exits while the next invocation waits), and a crash before any checkpoint (the run is started
// afresh). Each time the same command is run again; the finished experiment must equal an
// uninterrupted one bitwise in every training loss and every evaluation figure.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "synthdata.h"
#include "testutil.h"
#include "trainutil.h"
#include "wersa/common/json.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace wersa;
using namespace wersa::test;

namespace {

// The first `per_split` papers of each split of arxiv11, each cut to `chars` characters.
std::string arxiv_sample(const std::string& arxiv, int per_split, size_t chars) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(("xz -dc '" + arxiv + "'").c_str(), "r"), pclose);
  EXPECT_TRUE(p);
  std::string raw;
  char buf[1 << 16];
  for (size_t k; p && (k = fread(buf, 1, sizeof buf, p.get())) > 0;) raw.append(buf, k);
  std::map<std::string, int> taken;
  std::string out;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t end = std::min(raw.find('\n', pos), raw.size());
    const std::string line = raw.substr(pos, end - pos);
    pos = end + 1;
    const size_t at = line.rfind("\"split\"");
    if (line.empty() || at == std::string::npos) continue;
    const std::string split = line.substr(at).find("train") != std::string::npos        ? "train"
                              : line.substr(at).find("validation") != std::string::npos ? "validation"
                                                                                        : "test";
    if (taken[split] >= per_split) continue;
    json rec = parse_json(line, "arxiv11");
    std::string text = rec.at("text").get<std::string>().substr(0, chars);
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) text.pop_back();
    if (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xC0) text.pop_back();
    rec["text"] = text;
    ++taken[split];
    out += rec.dump() + "\n";
  }
  EXPECT_EQ(taken["train"], per_split);
  EXPECT_EQ(taken["test"], per_split);
  return out;
}

// wersa-experiment started in the background, its output in files.
struct Runner {
  pid_t pid = -1;
  std::string out, err;
};

Runner start(const std::vector<std::string>& args, const fs::path& dir, int invocation) {
  Runner r;
  r.out = (dir / ("stdout" + std::to_string(invocation))).string();
  r.err = (dir / ("stderr" + std::to_string(invocation))).string();
  std::vector<std::string> argv = {std::string(WERSA_BIN_DIR) + "/wersa-experiment"};
  argv.insert(argv.end(), args.begin(), args.end());
  r.pid = ::fork();
  if (r.pid == 0) {
    if (!std::freopen(r.out.c_str(), "w", stdout) || !std::freopen(r.err.c_str(), "w", stderr)) ::_exit(120);
    std::vector<char*> a;
    for (std::string& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    ::execv(a[0], a.data());
    ::_exit(121);
  }
  EXPECT_GT(r.pid, 0);
  return r;
}

// Exit status (128 + signal when killed by one).
int wait_for(const Runner& r) {
  int st = 0;
  EXPECT_EQ(::waitpid(r.pid, &st, 0), r.pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Waits (polling every 2 ms, at most 5 minutes) until `file` exists; false when the runner ended first.
bool wait_until_exists(const Runner& r, const fs::path& file) {
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  while (!fs::exists(file, ec)) {
    int st = 0;
    if (::waitpid(r.pid, &st, WNOHANG) == r.pid) {
      ADD_FAILURE() << "wersa-experiment ended before " << file << " existed:\n" << read_file(r.err);
      return false;
    }
    if (std::chrono::steady_clock::now() - t0 > std::chrono::minutes(5)) {
      ADD_FAILURE() << "timed out waiting for " << file;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// The pid of the wersa-train holding run directory `run` (its .lock names it).
pid_t trainer_pid(const fs::path& run) {
  return pid_t(std::atoi(read_file((run / ".lock").string()).c_str()));
}

// A crash of runner and trainer: the runner is stopped first, so it never sees its child die.
void crash(const Runner& r, const fs::path& run) {
  const pid_t child = trainer_pid(run);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::kill(r.pid, SIGSTOP), 0);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  EXPECT_EQ(wait_for(r), 128 + SIGKILL);
}

// Every step's loss once; the run ended at step `steps`.
void expect_same_losses(const fs::path& ref, const fs::path& run, size_t steps) {
  const std::vector<double> a = metrics_losses(ref), b = metrics_losses(run);
  ASSERT_EQ(a.size(), steps) << ref;
  ASSERT_EQ(b.size(), steps) << run;
  for (size_t k = 0; k < steps; ++k) EXPECT_EQ(a[k], b[k]) << run << " step " << k + 1;  // bitwise
}

TEST(ExperimentResume, InterruptedRunsContinueFromTheirCheckpointsBitwise) {
  const std::string arxiv = shared_data("arxiv11.jsonl.xz");
  TempDir dir("exp_resume");
  // Real papers where ../shared/data has them, synthetic arXiv-like ones (tests/synthdata.h)
  // elsewhere, so that the test runs on every machine.
  write_file(dir / "docs.jsonl",
             arxiv.empty() ? wersa::test::synthetic_jsonl(wersa::test::synthetic_arxiv(60, 800, 1500))
                           : arxiv_sample(arxiv, 12, 1500));
  constexpr int kSteps = 80;
  const json spec = {
      {"mode", "classify"},
      {"base", source_dir() + "/configs/tiny.json"},
      {"set",
       {"task.type=classify", "data.train=" + (dir / "docs.jsonl"), "data.val=", "train.batch_size=4",
        "train.warmup_steps=5", "train.eval_every=0", "train.checkpoint_every=20", "train.log_every=20",
        "model.attention.causal=false"}},
      {"variants", {{{"name", "linear"}, {"set", {"model.attention.type=linear"}}}, {{"name", "wersa"}}}},
      {"lengths", {128}},
      {"budget", {{"steps", kSteps}}},
      {"pretrain", {{"data", dir / "docs.jsonl"}, {"steps", kSteps}}},
      {"eval", {{"split", "test"}}},
      {"threads", 2}};
  write_file(dir / "spec.json", spec.dump(2));
  const std::string ref = dir / "ref", out = dir / "out";
  const std::vector<std::string> args = {dir / "spec.json", "-o", out, "--progress-every", "0"};

  // The reference: uninterrupted, in two pieces: --only the fine-tuning of linear (which brings
  // its pretraining along), then the rest.
  const Runner r00 = start({dir / "spec.json", "-o", ref, "--only", "linear-128"}, dir.path, 100);
  ASSERT_EQ(wait_for(r00), 0) << read_file(r00.err);
  EXPECT_TRUE(fs::exists(ref + "/runs/pretrain-linear-128/result.json"));
  EXPECT_TRUE(fs::exists(ref + "/runs/linear-128/result.json"));
  EXPECT_FALSE(fs::exists(ref + "/runs/pretrain-wersa-128"));
  EXPECT_FALSE(fs::exists(ref + "/runs/wersa-128"));
  const Runner r0 = start({dir / "spec.json", "-o", ref}, dir.path, 0);
  ASSERT_EQ(wait_for(r0), 0) << read_file(r0.err);
  EXPECT_NE(read_file(r0.err).find("done before (" + ref + "/runs/linear-128"), std::string::npos);

  const fs::path runs = fs::path(out) / "runs";
  const fs::path pre_linear = runs / "pretrain-linear-128", linear = runs / "linear-128",
                 pre_wersa = runs / "pretrain-wersa-128", wersa = runs / "wersa-128";
  // 1. SIGINT during the pretraining of linear, after its first checkpoint.
  const Runner r1 = start(args, dir.path, 1);
  ASSERT_TRUE(wait_until_exists(r1, pre_linear / "step-000020" / "state.json"));
  ASSERT_EQ(::kill(r1.pid, SIGINT), 0);
  ASSERT_EQ(wait_for(r1), 130) << read_file(r1.err);
  EXPECT_NE(read_file(pre_linear / "log.txt").find("interrupted by SIGINT"), std::string::npos);
  EXPECT_FALSE(fs::exists(pre_linear / "result.json"));
  EXPECT_TRUE(fs::exists(pre_linear / "step-000020"));
  EXPECT_FALSE(fs::exists(pre_linear / "step-000080"));  // stopped in the middle: kSteps is 80

  // 2. Continued; crash (SIGKILL of runner and trainer) during the fine-tuning of linear.
  const Runner r2 = start(args, dir.path, 2);
  ASSERT_TRUE(wait_until_exists(r2, linear / "step-000020" / "state.json"));
  crash(r2, linear);
  EXPECT_FALSE(fs::exists(linear / "result.json"));
  const std::string e2 = read_file(r2.err);
  EXPECT_NE(e2.find("continuing " + pre_linear.string() + " from its checkpoint step-"), std::string::npos)
      << e2;
  EXPECT_NE(e2.find("resuming pretrain-linear-128"), std::string::npos) << e2;

  // 3. Continued; SIGKILL of the runner alone during the pretraining of wersa: its trainer is sent
  // SIGTERM, checkpoints and exits, and the next invocation waits for it.
  const Runner r3 = start(args, dir.path, 3);
  ASSERT_TRUE(wait_until_exists(r3, pre_wersa / "step-000020" / "state.json"));
  ASSERT_EQ(::kill(r3.pid, SIGKILL), 0);
  EXPECT_EQ(wait_for(r3), 128 + SIGKILL);
  EXPECT_NE(read_file(r3.err).find("continuing " + linear.string() + " from its checkpoint step-"),
            std::string::npos)
      << read_file(r3.err);

  // 4. Continued; a crash during the fine-tuning of wersa, and its checkpoints lost: afresh.
  const Runner r4 = start(args, dir.path, 4);
  ASSERT_TRUE(wait_until_exists(r4, wersa / "step-000020" / "state.json"));
  crash(r4, wersa);
  EXPECT_NE(read_file(pre_wersa / "log.txt").find("interrupted by SIGTERM"), std::string::npos);
  EXPECT_NE(read_file(r4.err).find("continuing " + pre_wersa.string()), std::string::npos)
      << read_file(r4.err);
  for (const auto& e : fs::directory_iterator(wersa))
    if (e.path().filename().string().rfind("step-", 0) == 0) fs::remove_all(e.path());

  // 5. To the end.
  const Runner r5 = start(args, dir.path, 5);
  ASSERT_EQ(wait_for(r5), 0) << read_file(r5.err);
  const std::string e5 = read_file(r5.err);
  EXPECT_NE(e5.find("starting afresh (no complete checkpoint): " + wersa.string()), std::string::npos) << e5;
  EXPECT_NE(e5.find("done before (" + pre_linear.string()), std::string::npos) << e5;

  // The interrupted runs were resumed by wersa-train (not retrained from step 0), the afresh one not.
  for (const fs::path& run : {pre_linear, linear, pre_wersa})
    EXPECT_NE(read_file(run / "log.txt").find("resumed from " + (run / "step-0000").string()),
              std::string::npos)
        << run;
  EXPECT_EQ(read_file(wersa / "log.txt").find("resumed from"), std::string::npos);

  // The same experiment as the uninterrupted one: every loss and every evaluation figure, bitwise.
  const json a = read_json_file(ref + "/results.json"), b = read_json_file(out + "/results.json");
  ASSERT_EQ(a.at("runs").size(), 4u);
  ASSERT_EQ(b.at("runs").size(), 4u);
  for (size_t k = 0; k < 4; ++k) {
    const json &ra = a["runs"][k], &rb = b["runs"][k];
    const std::string name = ra.at("name").get<std::string>();
    ASSERT_EQ(rb.at("name"), name);
    const json &xa = ra.at("result"), &xb = rb.at("result");
    ASSERT_EQ(xb.at("status"), "ok") << name;
    expect_same_losses(fs::path(ref) / "runs" / name, runs / name, kSteps);
    EXPECT_EQ(xa.at("steps_done"), xb.at("steps_done")) << name;
    for (const char* key : {"tokens", "flops"})  // sums of per-step rates x times: equal to rounding
      EXPECT_NEAR(xa.at(key).get<double>(), xb.at(key).get<double>(), 1e-9 * xa.at(key).get<double>())
          << name << " " << key;
    json ea = xa.at("eval"), eb = xb.at("eval");
    if (ea.is_object()) ea.erase("checkpoint"), eb.erase("checkpoint");  // the run directory's path
    EXPECT_EQ(ea, eb) << name;
    EXPECT_GT(xb.at("wall_s").get<double>(), 0) << name;
    if (ra.at("kind") == "train") {
      for (const char* key : {"accuracy", "macro_f1", "macro_auc", "loss"})
        EXPECT_EQ(xa.at("eval").at(key), xb.at("eval").at(key)) << name << " " << key;
    }
  }
  // Its train time counts every attempt: linear-128 ran twice, the first attempt killed.
  const json att = read_json_file((linear / "attempts.json").string());
  ASSERT_EQ(att.size(), 2u) << att.dump();
  EXPECT_EQ(att[0].at("exit"), -1);
  EXPECT_EQ(att[1].at("exit"), 0);
  EXPECT_EQ(read_json_file((wersa / "attempts.json").string()).size(), 1u);  // afresh: one attempt

  // 6. Interrupted after its training, before its evaluation had written result.json: only evaluated.
  fs::remove(linear / "result.json");
  const int64_t ckpt_before =
      fs::last_write_time(linear / "step-000080" / "state.json").time_since_epoch().count();
  const Runner r6 = start(args, dir.path, 6);
  ASSERT_EQ(wait_for(r6), 0) << read_file(r6.err);
  EXPECT_NE(read_file(r6.err).find("trained to step 80 by an earlier invocation; evaluating"),
            std::string::npos)
      << read_file(r6.err);
  EXPECT_EQ(fs::last_write_time(linear / "step-000080" / "state.json").time_since_epoch().count(),
            ckpt_before);
  const json c = read_json_file(out + "/results.json");
  EXPECT_EQ(c["runs"][1].at("result").at("eval"), b["runs"][1].at("result").at("eval"));
  EXPECT_EQ(c["runs"][1].at("result").at("wall_s"), b["runs"][1].at("result").at("wall_s"));
}

}  // namespace

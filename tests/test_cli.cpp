// The command-line tools as a user runs them: bad input ends with one "error:" line and a
// non-zero exit; wersa-eval's per-token losses of a text's beginning do not depend on its end.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "testutil.h"
#include "wersa/backend/backend.h"

namespace fs = std::filesystem;
using namespace wersa::test;

TEST(Cli, BadConfigsAreOneLineErrors) {
  const TempDir d("badcfg");
  std::ofstream(d / "malformed.json") << "{\"model\": {\"dim\": 64,, }";
  std::ofstream(d / "unknown.json") << "{\"model\": {\"dimm\": 64}}";
  std::ofstream(d / "range.json") << "{\"model\": {\"dim\": -4}}";
  expect_one_line_error(run_tool("wersa-train --config " + (d / "malformed.json")), "malformed.json");
  expect_one_line_error(run_tool("wersa-train --config " + (d / "unknown.json")), "model.dimm");
  expect_one_line_error(run_tool("wersa-train --config " + (d / "range.json")), "model.dim");
  expect_one_line_error(run_tool("wersa-train --config " + (d / "nonexistent.json")), "nonexistent.json", 2);
  expect_one_line_error(
      run_tool("wersa-train --config " + source_dir() + "/configs/tiny.json --set model.heads=5"),
      "model.heads");
  expect_one_line_error(run_tool("wersa-train --config " + source_dir() +
                                 "/configs/tiny.json --set data.train=" + (d / "missing.txt")),
                        "missing.txt");
}

TEST(Cli, TruncatedShardIsAOneLineError) {
  const TempDir d("shard");
  // A valid llm.c header claiming 1000 uint16 tokens, followed by only 10.
  std::vector<int32_t> header(256, 0);
  header[0] = 20240520, header[1] = 1, header[2] = 1000;
  std::ofstream f(d / "train_000.bin", std::ios::binary);
  f.write(reinterpret_cast<const char*>(header.data()), 1024);
  std::vector<uint16_t> toks(10, 7);
  f.write(reinterpret_cast<const char*>(toks.data()), 20);
  f.close();
  expect_one_line_error(run_tool("wersa-train --config " + source_dir() +
                                 "/configs/tiny.json --set data.train=" + (d / "train_000.bin")),
                        "train_000.bin");
}

TEST(Cli, TrainThenEvalPerTokenIsCausal) {
  const TempDir d("eval");
  const std::string text = real_text(60000);
  std::ofstream(d / "train.txt") << text.substr(0, 50000);
  const std::string doc = text.substr(50000, 3000);
  std::string changed = doc;
  for (size_t i = 2000; i < changed.size(); ++i) changed[i] = char('a' + (i % 26));
  std::ofstream(d / "a.txt") << doc;
  std::ofstream(d / "b.txt") << changed;
  const ToolRun tr = run_tool("wersa-train --config " + source_dir() +
                              "/configs/tiny.json --set train.steps=3 --set train.warmup_steps=1 " +
                              "--set train.eval_every=0 --set data.train=" + (d / "train.txt") +
                              " --set data.val= --out " + (d / "run"));
  ASSERT_EQ(tr.status, 0) << tr.err;
  ASSERT_TRUE(fs::exists(d.path / "run" / "step-000003" / "model.safetensors"));
  const ToolRun ea = run_tool("wersa-eval --checkpoint " + (d / "run") + " --text " + (d / "a.txt") +
                              " --seq 256 --per-token " + (d / "a.tsv"));
  const ToolRun eb = run_tool("wersa-eval --checkpoint " + (d / "run") + " --text " + (d / "b.txt") +
                              " --seq 256 --per-token " + (d / "b.tsv"));
  ASSERT_EQ(ea.status, 0) << ea.err;
  ASSERT_EQ(eb.status, 0) << eb.err;
  EXPECT_NE(ea.out.find("perplexity"), std::string::npos) << ea.out;
  std::ifstream fa(d / "a.tsv"), fb(d / "b.tsv");
  std::string la, lb;
  int64_t lines = 0, differ_after = 0;
  while (std::getline(fa, la) && std::getline(fb, lb)) {
    const int64_t pos = std::stoll(la.substr(0, la.find('\t')));
    if (pos < 2000)
      EXPECT_EQ(la, lb) << "position " << pos << " changed when only positions >= 2000 did";
    else
      differ_after += la != lb;
    ++lines;
  }
  EXPECT_EQ(lines, 2999);
  EXPECT_GT(differ_after, 900);
}

// The tools set libgomp's spin count for themselves (it is read when the library loads, so they
// re-execute once): the training log shows the setting in effect, and a user's own setting stands.
TEST(Cli, ToolsSetTheOpenMpWaitingThemselvesUnlessTheUserDid) {
  const TempDir d("ompwait");
  std::ofstream(d / "train.txt") << real_text(20000);
  const std::string train = "wersa-train --config " + source_dir() +
                            "/configs/tiny.json --set train.steps=1 --set train.warmup_steps=1 "
                            "--set train.eval_every=0 --set data.val= --set data.train=" +
                            (d / "train.txt");
  struct Env {  // this process's environment for one child, restored afterwards
    std::string name;
    std::string old;
    bool had;
    Env(const char* n, const char* v) : name(n), had(std::getenv(n) != nullptr) {
      if (had) old = std::getenv(n);
      if (v)
        setenv(n, v, 1);
      else
        unsetenv(n);
    }
    ~Env() {
      if (had)
        setenv(name.c_str(), old.c_str(), 1);
      else
        unsetenv(name.c_str());
    }
  };
  {
    const Env a("OMP_WAIT_POLICY", nullptr), b("GOMP_SPINCOUNT", nullptr);
    const ToolRun r = run_tool(train + " --out " + (d / "a"));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE((r.out + r.err).find(std::string(" threads (GOMP_SPINCOUNT=") + wersa::kOmpSpinCount + ")"),
              std::string::npos)
        << r.out << r.err;
  }
  {
    const Env a("OMP_WAIT_POLICY", "passive"), b("GOMP_SPINCOUNT", nullptr);
    const ToolRun r = run_tool(train + " --out " + (d / "b"));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE((r.out + r.err).find(" threads (OMP_WAIT_POLICY=passive)"), std::string::npos)
        << r.out << r.err;
  }
  {
    const Env a("OMP_WAIT_POLICY", nullptr), b("GOMP_SPINCOUNT", "123");
    const ToolRun r = run_tool(train + " --out " + (d / "c"));
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE((r.out + r.err).find(" threads (GOMP_SPINCOUNT=123)"), std::string::npos) << r.out << r.err;
  }
}

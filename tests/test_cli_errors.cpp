// Every tool, every bad command line: exit status 2, exactly one line on stderr, starting with
// "error: TOOL:" and naming the flag. --help prints to stdout and exits 0. Nothing here loads
// a model or trains: every case fails while the flags are parsed. parse_generate_flags is also
// called directly, as a fuzz target would.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "generate_flags.h"
#include "testutil.h"
#include "wersa/common/cli.h"
#include "wersa/io/checkpoint.h"

namespace fs = std::filesystem;
using namespace wersa;
using namespace wersa::test;

namespace {

struct Case {
  std::string args;    // after the tool name
  std::string needle;  // what the message must name (the flag)
};

struct Fixture {
  TempDir dir{"clierr"};
  std::string ck, text, sub, file;
  Fixture() {
    Config cfg;
    cfg.model.dim = 16;
    cfg.model.layers = 1;
    cfg.model.heads = 2;
    cfg.model.kv_heads = 1;
    cfg.model.ffn_dim = 32;
    cfg.model.attention.features = 8;
    cfg.train.seq_len = 16;
    Model m(cfg.model, DType::F32, Device::CPU, false);
    m.init(1);
    ck = dir / "ck";
    fs::create_directories(ck);
    io::save_checkpoint(ck, 1,
                        {&m, nullptr, nullptr, config_to_json(cfg), io::CheckpointState{1, 0, 0, 0}, ""});
    text = dir / "text.txt";
    write_file(text, "Some text to read.\n");
    sub = dir / "subdir";
    fs::create_directories(sub);
    file = dir / "plain.txt";
    write_file(file, "x");
  }
};

const Fixture& fx() {
  static const Fixture f;
  return f;
}

void expect_usage_error(const std::string& tool, const Case& c) {
  const ToolRun r = run_tool(tool + " " + c.args);
  const std::string what = tool + " " + c.args;
  EXPECT_EQ(r.status, 2) << what << "\n" << r.err;
  EXPECT_EQ(r.err.rfind("error: " + tool + ": ", 0), 0u) << what << "\n" << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << "\n" << r.err;
  EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << what << "\n" << r.err;
  EXPECT_NE(r.err.find(c.needle), std::string::npos)
      << what << ": expected '" << c.needle << "' in " << r.err;
  EXPECT_TRUE(r.out.empty()) << what << "\n" << r.out;
}

}  // namespace

TEST(CliErrors, Generate) {
  const Fixture& f = fx();
  const std::string m = "-m " + f.ck + " -p x ";
  const std::vector<Case> cases = {
      {m + "-n -5", "-n,--n-predict"},
      {m + "-n abc", "-n,--n-predict"},
      {m + "-n 2.5", "-n,--n-predict"},
      {m + "-n 99999999999999999999", "-n,--n-predict"},
      {m + "-n", "-n,--n-predict"},
      {m + "-n 1 -n 2", "-n,--n-predict"},
      {m + "-c -1", "-c,--ctx-size"},
      {m + "-b 0", "-b,--batch-size"},
      {m + "-b 2000000", "-b,--batch-size"},
      {m + "--temp -1", "--temp"},
      {m + "--temp nan", "--temp"},
      {m + "--temp inf", "--temp"},
      {m + "--temp x", "--temp"},
      {m + "-s -5", "-s,--seed"},
      {m + "-s x", "-s,--seed"},
      {m + "-t -1", "-t,--threads"},
      {m + "--top-k -1", "--top-k"},
      {m + "--top-p 0", "--top-p"},
      {m + "--top-p 1.5", "--top-p"},
      {m + "--min-p -0.1", "--min-p"},
      {m + "--min-p 1.1", "--min-p"},
      {m + "--repeat-penalty 0", "--repeat-penalty"},
      {m + "--repeat-penalty -1", "--repeat-penalty"},
      {m + "--repeat-last-n -2", "--repeat-last-n"},
      {"-m " + f.ck + " -f " + f.sub, "is a directory"},
      {"-m " + f.ck + " -f " + f.sub, "-f,--file"},
      {"-m " + f.ck + " -f " + f.dir / "missing.txt", "-f,--file"},
      {m + "-f " + f.text, "--file"},  // -p and -f together
      {m + "--save-state " + f.dir / "no/such/dir/s.st", "--save-state"},
      {m + "--save-state " + f.sub, "--save-state"},
      {m + "--load-state " + f.sub, "--load-state"},
      {m + "--load-state " + f.dir / "missing.st", "--load-state"},
      {m + "--weights f16", "--weights"},
      {m + "--weights f32,bf16", "--weights"},
      {m + "--bogus", "--bogus"},
      {m + "stray", "stray"},
      {"-p x", "--model"},
      {"-m " + f.dir / "missing" + " -p x", "--model"},
      {"-m " + f.file + " -p x", "--model"},
      {"-m " + f.ck, "-p"},  // no prompt
  };
  for (const Case& c : cases) expect_usage_error("wersa-generate", c);
}

TEST(CliErrors, Eval) {
  const Fixture& f = fx();
  const std::string m = "-m " + f.ck + " --text " + f.text + " ";
  const std::vector<Case> cases = {
      {m + "--batch 0", "--batch"},
      {m + "--batch x", "--batch"},
      {m + "--seq 0", "--seq"},
      {m + "--seq -3", "--seq"},
      {m + "--max-tokens 0", "--max-tokens"},
      {m + "--max-tokens -2", "--max-tokens"},
      {m + "--threads -1", "--threads"},
      {m + "--weights bf", "--weights"},
      {m + "--per-token " + f.dir / "no/such/dir/t.tsv", "--per-token"},
      {m + "--per-token " + f.sub, "--per-token"},
      {m + "--shards x", "--shards"},  // --text and --shards together
      {m + "--nope", "--nope"},
      {"-m " + f.ck + " --text " + f.sub, "--text"},
      {"-m " + f.ck + " --text " + f.dir / "missing.txt", "--text"},
      {"-m " + f.ck, "--text"},  // no data
      {"--text " + f.text, "--checkpoint"},
      {"-m " + f.dir / "missing" + " --text " + f.text, "--checkpoint"},
  };
  for (const Case& c : cases) expect_usage_error("wersa-eval", c);
}

TEST(CliErrors, Train) {
  const Fixture& f = fx();
  const std::string cfg = "--config " + source_dir() + "/configs/tiny.json ";
  const std::vector<Case> cases = {
      {"", "--config"},
      {"--config " + f.sub, "--config"},
      {"--config " + f.dir / "missing.json", "--config"},
      {cfg + "--set model.dim", "--set"},
      {cfg + "--set =3", "--set"},
      {cfg + "--out " + f.file, "--out"},
      {cfg + "--resume", "--resume"},
      {cfg + "--bogus", "--bogus"},
  };
  for (const Case& c : cases) expect_usage_error("wersa-train", c);
}

TEST(CliErrors, Experiment) {
  const Fixture& f = fx();
  const std::string spec = source_dir() + "/configs/experiments/lm-novels.json ";
  // --only is checked against the plan's run names, so its spec must plan from any directory.
  const std::string planned = f.dir / "planned.json";
  write_file(planned,
             nlohmann::json{{"title", "t"},
                            {"mode", "lm"},
                            {"base", source_dir() + "/configs/tiny.json"},
                            {"set", {"data.train=" + f.text, "data.val=" + f.text, "train.warmup_steps=1"}},
                            {"variants", {{{"name", "wersa"}, {"set", nlohmann::json::array()}}}},
                            {"lengths", {16}},
                            {"budget", {{"steps", 1}}}}
                 .dump());
  const std::vector<Case> cases = {
      {"", "spec"},
      {f.sub, "spec"},
      {f.dir / "missing.json", "spec"},
      {spec + "-o " + f.file, "--out"},
      {spec + "--progress-every -1", "--progress-every"},
      {planned + " -o " + f.dir / "exp" + " --only wersa-9999", "--only"},
      {spec + "--bogus", "--bogus"},
      {spec, "--out DIR is required"},
  };
  for (const Case& c : cases) expect_usage_error("wersa-experiment", c);
}

TEST(CliErrors, Bench) {
  const Fixture& f = fx();
  const std::string cfg = "--config " + source_dir() + "/configs/tiny.json ";
  const std::vector<Case> cases = {
      {"", "--config"},
      {cfg + "-r 0", "-r,--repetitions"},
      {cfg + "-r 1001", "-r,--repetitions"},
      {cfg + "-b 0", "-b,--batch-size"},
      {cfg + "-t -1", "-t,--threads"},
      {cfg + "-p 1,x", "-p,--n-prompt"},
      {cfg + "-p 8,", "-p,--n-prompt"},
      {cfg + "-n -1", "-n,--n-gen"},
      {cfg + "-d ,", "-d,--n-depth"},
      {cfg + "--bw-mib -1", "--bw-mib"},
      {cfg + "--streams 0", "--streams"},
      {cfg + "--streams 2,x", "--streams"},
      {cfg + "--seed -1", "--seed"},
      {cfg + "--json " + f.dir / "no/such/dir/b.json", "--json"},
      {cfg + "--json " + f.sub, "--json"},
      {cfg + "--set x", "--set"},
      {cfg + "--attention ''", "--attention"},
      {cfg + "--weights f16", "--weights"},
      {cfg + "--weights bf16,bf16", "--weights"},
      {cfg + "--weights f32,", "--weights"},
      {"-m " + f.dir / "missing", "--model"},
      {"--config " + f.sub, "--config"},
      {cfg + "--bogus", "--bogus"},
  };
  for (const Case& c : cases) expect_usage_error("wersa-bench", c);
}

TEST(CliErrors, Tokenize) {
  const Fixture& f = fx();
  const std::string train = "train --input " + f.text + " --out " + f.dir / "tok/t.model" + " ";
  const std::string encode = "encode --tokenizer byte --input " + f.text + " --out " + f.dir / "enc" + " ";
  const std::string decode = "decode --tokenizer byte --ids 1 ";
  const std::vector<Case> cases = {
      {"", "subcommand"},
      {"frobnicate", "frobnicate"},
      {train, "--vocab-size"},
      {train + "--vocab-size 0", "--vocab-size"},
      {train + "--vocab-size x", "--vocab-size"},
      {train + "--vocab-size 400 --model-type word", "--model-type"},
      {train + "--vocab-size 400 --sample-sentences -1", "--sample-sentences"},
      {train + "--vocab-size 400 --character-coverage 0", "--character-coverage"},
      {train + "--vocab-size 400 --character-coverage 1.5", "--character-coverage"},
      {train + "--vocab-size 400 --seed -1", "--seed"},
      {train + "--vocab-size 400 --threads -1", "--threads"},
      {train + "--vocab-size 400 --invalid-utf8 maybe", "--invalid-utf8"},
      {train + "--vocab-size 400 --field ''", "--field"},
      {"train --vocab-size 400 --input " + f.dir / "missing" + " --out " + f.dir / "t.model", "--input"},
      {"train --vocab-size 400 --input " + f.text + " --out " + f.sub, "--out"},
      {encode + "--val-fraction 1", "--val-fraction"},
      {encode + "--val-fraction -0.5", "--val-fraction"},
      {encode + "--shard-tokens 0", "--shard-tokens"},
      {encode + "--threads -2", "--threads"},
      {"encode --tokenizer byte --input " + f.text + " --out " + f.file, "--out"},
      {"encode --tokenizer " + f.dir / "missing.model" + " --input " + f.text + " --out x", "--tokenizer"},
      {decode + "--start -1", "--start"},
      {decode + "--count -2", "--count"},
      {decode + "--out " + f.dir / "no/such/dir/o.txt", "--out"},
      {"decode --tokenizer byte", "--input"},
      {"decode --ids 1", "--tokenizer"},
      {"stats --tokenizer byte --max-bytes 0", "--max-bytes"},
      {"stats --shards x --vocab-size 0", "--vocab-size"},
      {"stats --shards x --vocab-size 4294967296", "--vocab-size"},
      {"stats", "--shards"},
      {"stats --tokenizer byte --input " + f.dir / "missing", "--input"},
      {"stats --tokenizer byte --bogus", "--bogus"},
  };
  for (const Case& c : cases) expect_usage_error("wersa-tokenize", c);
}

TEST(CliErrors, HelpExitsZeroOnStdout) {
  for (const std::string tool : {"wersa-generate", "wersa-eval", "wersa-train", "wersa-bench",
                                 "wersa-tokenize", "wersa-tokenize stats", "wersa-experiment"}) {
    const ToolRun r = run_tool(tool + " --help");
    EXPECT_EQ(r.status, 0) << tool << "\n" << r.err;
    EXPECT_TRUE(r.err.empty()) << tool << "\n" << r.err;
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << tool << "\n" << r.out;
  }
  // The ranges are in the help.
  const ToolRun g = run_tool("wersa-generate --help");
  EXPECT_NE(g.out.find("--top-p FLOAT:(0, 1]"), std::string::npos) << g.out;
}

// parse_generate_flags as a fuzz target calls it: values, help, and UsageError (a wersa::Error)
// for every bad command line, without a model.
TEST(CliErrors, ParseGenerateFlagsDirectly) {
  const Fixture& f = fx();
  auto parse = [](std::vector<std::string> args) {
    args.insert(args.begin(), "wersa-generate");
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    return parse_generate_flags(static_cast<int>(argv.size()), argv.data());
  };
  const GenerateFlags g =
      parse({"-m", f.ck, "-p", "hi", "-n", "-1", "--temp", "0", "--top-p", "1", "-s", "7"});
  EXPECT_TRUE(g.help.empty());
  EXPECT_EQ(g.model_dir, f.ck);
  EXPECT_EQ(g.prompt, "hi");
  EXPECT_TRUE(g.have_prompt);
  EXPECT_EQ(g.n_predict, -1);
  EXPECT_EQ(g.seed, 7);
  EXPECT_EQ(g.sampler.temp, 0.0);
  EXPECT_EQ(g.sampler.top_p, 1.0);
  EXPECT_EQ(g.batch, 512);
  EXPECT_NE(parse({"--help"}).help.find("--n-predict"), std::string::npos);
  EXPECT_THROW(parse({"-m", f.ck, "-p", "hi", "--temp", "-1"}), UsageError);
  EXPECT_THROW(parse({}), Error);
  try {
    parse({"-m", f.ck, "-p", "hi", "-b", "0"});
    ADD_FAILURE() << "no error for -b 0";
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("wersa-generate: -b,--batch-size: ", 0), 0u) << msg;
  }
}

TEST(CliErrors, MessagesAreFoldedToOneLine) {
  EXPECT_EQ(one_line("first\n  second\r\nthird\n"), "first; second; third");
  EXPECT_EQ(one_line("no newline"), "no newline");
}

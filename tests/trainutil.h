// Shared by the training-level tests: the tiny config on real text, small enough for seconds.
#pragma once
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "testutil.h"
#include "wersa/model/config.h"

namespace wersa::test {

// `bytes` bytes of real text from `offset`, as DIR/text_OFFSET.txt.
inline std::string write_text(const std::filesystem::path& dir, size_t offset, size_t bytes) {
  const std::string text = real_text(offset + bytes).substr(offset);
  const std::filesystem::path p = dir / ("text_" + std::to_string(offset) + ".txt");
  std::ofstream(p) << text;
  return p.string();
}

// configs/tiny.json, 12 steps of 4 x 64 tokens, on 200 KB of text (20 KB for validation).
inline Config tiny_config(const std::filesystem::path& dir) {
  Config c = config_from_file(source_dir() + "/configs/tiny.json");
  c.data.train = write_text(dir, 0, 200000);
  c.data.val = write_text(dir, 200000, 20000);
  c.train.steps = 12;
  c.train.seq_len = 64;
  c.train.batch_size = 4;
  c.train.warmup_steps = 3;
  c.train.eval_every = 0;
  c.train.threads = 2;
  return c;
}

// Training losses of metrics.jsonl by step; each line must parse and each step appear once, in order.
inline std::vector<double> metrics_losses(const std::filesystem::path& run) {
  const std::string text = read_file((run / "metrics.jsonl").string());
  std::vector<double> losses;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    EXPECT_NE(end, std::string::npos) << "a torn last line in " << run;
    if (end == std::string::npos) break;
    const auto j = nlohmann::json::parse(text.substr(pos, end - pos));
    EXPECT_EQ(j.at("step").get<int64_t>(), int64_t(losses.size()) + 1) << text.substr(pos, end - pos);
    losses.push_back(j.at("loss").get<double>());
    pos = end + 1;
  }
  return losses;
}

// Every file of checkpoint `b` is byte for byte the file of the same name in checkpoint `a`
// (model and optimizer tensors, state.json, config.json), and both hold the same files.
inline void expect_same_checkpoint(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::vector<std::string> names_a, names_b;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(a, ec))
    names_a.push_back(e.path().filename().string());
  for (const auto& e : std::filesystem::directory_iterator(b, ec))
    names_b.push_back(e.path().filename().string());
  std::sort(names_a.begin(), names_a.end());
  std::sort(names_b.begin(), names_b.end());
  EXPECT_EQ(names_a, names_b) << a << " and " << b << " hold different files";
  for (const char* must : {"model.safetensors", "optimizer.safetensors", "state.json"})
    EXPECT_TRUE(std::find(names_a.begin(), names_a.end(), must) != names_a.end()) << a << " lacks " << must;
  for (const std::string& n : names_a) {
    const std::string x = read_file((a / n).string()), y = read_file((b / n).string());
    EXPECT_FALSE(x.empty()) << a / n;
    EXPECT_TRUE(x == y) << n << " differs between " << a << " and " << b;
  }
}

}  // namespace wersa::test

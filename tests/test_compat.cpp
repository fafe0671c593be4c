// Files written by the engine before the model redesign (tests/data/compat, see its README) still
// load and mean what they meant: a checkpoint gives the per-token losses it gave then, training
// resumed from its optimizer state continues the old run, and a saved generation state continues
// exactly where a fresh prefill of its tokens gets. Tensor names, layouts and the model
// fingerprint are part of those formats.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "testutil.h"
#include "wersa/data/shard.h"
#include "wersa/data/tokenizer.h"
#include "wersa/io/checkpoint.h"
#include "wersa/io/state_file.h"
#include "wersa/model/generate.h"
#include "wersa/train/trainer.h"

using namespace wersa;
using namespace wersa::test;
namespace fs = std::filesystem;

namespace {

const char* kLicences = "/usr/share/common-licenses";

std::string fixture(const std::string& kind) { return source_dir() + "/tests/data/compat/" + kind; }

bool have_licences() {
  return fs::exists(std::string(kLicences) + "/GPL-3") && fs::exists(std::string(kLicences) + "/LGPL-2.1");
}

std::unique_ptr<Model> load_model(const std::string& ckpt) {
  const Config cfg = io::load_checkpoint_config(ckpt);
  auto m = std::make_unique<Model>(cfg.model, DType::F32, Device::CPU, false);
  io::load_model_weights(ckpt, *m);
  return m;
}

}  // namespace

TEST(Compat, AnOldCheckpointGivesItsOldPerTokenLosses) {
  if (!have_licences()) GTEST_SKIP() << "no " << kLicences << " (the fixtures were computed on its texts)";
  for (const char* kind : {"wersa", "softmax"}) {
    auto m = load_model(fixture(kind) + "/step-000003");
    auto tok = data::load_tokenizer("byte");
    auto ds = data::open_dataset(std::string(kLicences) + "/LGPL-2.1", *tok, m->config().vocab_size);
    std::vector<std::tuple<int64_t, int32_t, double>> got;
    evaluate(*m, *ds, 32, 2, 600,
             [&](int64_t pos, int32_t token, double nll) { got.emplace_back(pos, token, nll); });
    std::ifstream f(fixture(kind) + "/eval-step3.tsv");
    int64_t pos = 0, n = 0;
    int32_t token = 0;
    double nll = 0, worst = 0;
    while (f >> pos >> token >> nll) {
      ASSERT_LT(size_t(n), got.size()) << kind;
      EXPECT_EQ(std::get<0>(got[size_t(n)]), pos) << kind;
      EXPECT_EQ(std::get<1>(got[size_t(n)]), token) << kind;
      worst = std::max(worst, std::fabs(std::get<2>(got[size_t(n)]) - nll));
      ++n;
    }
    EXPECT_EQ(n, 600) << kind;
    EXPECT_EQ(size_t(n), got.size()) << kind;
    // The old values were printed with 6 decimals, by a tool running OpenBLAS's AVX-512 kernels; a test
    // may run other kernels (prepare_cpu_runtime), whose f32 GEMMs round differently (seen: 2.5e-6).
    EXPECT_LT(worst, 1e-5) << kind;
  }
}

TEST(Compat, ResumingAnOldCheckpointContinuesTheOldRun) {
  if (!have_licences()) GTEST_SKIP() << "no " << kLicences;
  const TempDir dir("compat_resume");
  fs::copy(fixture("wersa") + "/step-000003", dir / "step-000003");
  Config c = config_from_file(fixture("wersa") + "/train-config.json");
  c.data.train = std::string(kLicences) + "/GPL-3";
  TrainOptions o;
  o.quiet = true;
  o.out_dir = dir.path.string();
  o.resume = true;
  const TrainResult r = train(c, o);
  std::vector<double> old;
  std::ifstream f(fixture("wersa") + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);)
    old.push_back(nlohmann::json::parse(line).at("loss").get<double>());
  ASSERT_EQ(old.size(), 6u);
  ASSERT_EQ(r.losses.size(), 3u);  // steps 4, 5, 6
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(r.losses[i], old[i + 3], 1e-6 * old[i + 3]) << "step " << i + 4;
}

TEST(Compat, AnOldStateFileContinuesLikeAFreshPrefill) {
  for (const char* kind : {"wersa", "softmax"}) {
    auto m = load_model(fixture(kind) + "/step-000003");
    const int64_t V = m->config().vocab_size;
    DecodeState loaded(*m, DecodeOptions{512, 64});
    load_decode_state(*m, loaded, fixture(kind) + "/prompt.state");
    ASSERT_EQ(loaded.pos(), 301) << kind;  // EOS, then the 300 bytes of the prompt
    EXPECT_EQ(loaded.tokens()[0], 257) << kind;
    DecodeState fresh(*m, DecodeOptions{512, 64});
    prefill(*m, fresh, loaded.tokens());
    double err = 0, scale = 0;
    for (int64_t v = 0; v < V; ++v) {
      err = std::max(err, std::fabs(host_get(fresh.logits(), v) - host_get(loaded.logits(), v)));
      scale = std::max(scale, std::fabs(host_get(fresh.logits(), v)));
    }
    EXPECT_LT(err, 1e-5 * scale) << kind;
    const auto& a = loaded.state_tensors();
    const auto& b = fresh.state_tensors();
    ASSERT_EQ(a.size(), b.size()) << kind;
    for (size_t i = 0; i < a.size(); ++i) {
      const int64_t n = loaded.per_position(i) ? loaded.pos() * (a[i].numel() / a[i].dim(0)) : a[i].numel();
      double e = 0, s = 1e-30;
      for (int64_t j = 0; j < n; ++j) {
        e = std::max(e, std::fabs(host_get(a[i], j) - host_get(b[i], j)));
        s = std::max(s, std::fabs(host_get(b[i], j)));
      }
      EXPECT_LT(e, 1e-5 * s) << kind << " " << a[i].name;
    }
    // One more token from each: the same logits.
    decode_step(*m, loaded, 65);
    decode_step(*m, fresh, 65);
    for (int64_t v = 0; v < V; ++v)
      ASSERT_NEAR(host_get(loaded.logits(), v), host_get(fresh.logits(), v), 1e-4) << kind << " v " << v;
  }
}

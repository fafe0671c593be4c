// wersa-eval: mean loss, perplexity and throughput of a language-model checkpoint on a text or
// token shards; for a classifier checkpoint, loss, accuracy, macro-F1, macro ROC AUC, the confusion
// matrix and per-class figures on a split of a JSON Lines document file.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "wersa/backend/backend.h"
#include "wersa/common/cli.h"
#include "wersa/common/file.h"
#include "wersa/common/log.h"
#include "wersa/io/checkpoint.h"
#include "wersa/train/classify.h"
#include "wersa/train/trainer.h"

namespace {

int evaluate_classifier_cli(const std::string& dir, wersa::Config cfg, const std::string& docs,
                            const std::string& split, int64_t batch, const std::string& predictions,
                            const std::string& metrics_json, const std::string& weights,
                            const std::string& device) {
  using namespace wersa;
  const std::string file = docs.empty() ? cfg.data.train : docs;
  ClassifyData d = load_classify_data(cfg, io::checkpoint_tokenizer(dir), file);
  const std::unique_ptr<Model> loaded = io::load_inference_model(dir, cfg, weights, device);
  Model& model = *loaded;
  std::vector<int64_t> which;
  if (split == "all") {
    for (int64_t i = 0; i < d.docs.size(); ++i) which.push_back(i);
  } else {
    data::Split s{};
    WERSA_ASSERT(data::parse_split(split, &s), "split ", split);
    which = d.docs.indices(s);
  }
  WERSA_CHECK(!which.empty(), file, ": no document in the ", split, " split");
  const ClassifyEval e = evaluate_classifier(model, d.docs, which, batch);
  const ClassMetrics& m = e.metrics;
  std::printf(
      "checkpoint %s\ndata %s\nsplit %s\ndocuments %lld\nloss %.6f\naccuracy %.4f\nmacro_f1 %.4f\n"
      "macro_auc %.4f\ntok_per_s %.1f\n\n%s",
      dir.c_str(), file.c_str(), split.c_str(), static_cast<long long>(m.n), e.loss, m.accuracy, m.macro_f1,
      m.macro_auc, double(e.tokens) / std::max(e.seconds, 1e-9),
      format_confusion(m, d.labels.names()).c_str());
  if (!predictions.empty()) {
    const int64_t C = cfg.model.task.num_classes;
    std::string out = "doc\tlabel\tpredicted";
    for (const std::string& name : d.labels.names()) out += "\tp_" + name;
    out += "\n";
    for (size_t i = 0; i < e.docs.size(); ++i) {
      const float* p = e.probs.data() + i * size_t(C);
      const int64_t best = std::max_element(p, p + C) - p;
      out += std::to_string(e.docs[i]) + "\t" + d.labels.name(d.docs.label[size_t(e.docs[i])]) + "\t" +
             d.labels.name(best);
      char buf[32];
      for (int64_t c = 0; c < C; ++c) std::snprintf(buf, sizeof buf, "\t%.6g", double(p[c])), out += buf;
      out += "\n";
    }
    write_file(predictions, out);
  }
  if (!metrics_json.empty()) {
    nlohmann::json j = metrics_to_json(m, d.labels.names());
    j["loss"] = e.loss, j["split"] = split, j["checkpoint"] = dir, j["data"] = file;
    write_file(metrics_json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  wersa::prepare_cpu_runtime(argv);
  using namespace wersa::cli;
  CLI::App app{
      "wersa-eval: evaluate a checkpoint (a language model's next-token loss, or a classifier's "
      "accuracy, F1 and ROC AUC)",
      "wersa-eval"};
  std::string ckpt, text, shards, per_token, docs, split = "validation", predictions, metrics_json,
                                                   weights = "f32", device = "cpu";
  int64_t seq = 0, batch = 1, max_tokens = -1;
  int threads = 0;
  bool by_position = false;
  app.add_option("-m,--checkpoint", ckpt, "checkpoint directory (RUN/step-NNNNNN) or a run directory")
      ->required()
      ->check(existing_dir());
  auto* t = app.add_option("--text", text, "UTF-8 text file, tokenized with the checkpoint's tokenizer")
                ->check(existing_file());
  auto* s = app.add_option("--shards", shards, "token shard glob (llm.c format)")->check(non_empty());
  t->excludes(s);
  app.add_option("--seq", seq, "window length (default: the training seq_len)")->check(integer(1, 1 << 24));
  app.add_option("--batch", batch,
                 "windows (a classifier: documents) per forward pass; a classifier's default is "
                 "its train.batch_size")
      ->check(integer(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-tokens", max_tokens, "evaluate at most this many predicted tokens (-1 = all)")
      ->check(count_or_all())
      ->capture_default_str();
  app.add_option("--per-token", per_token,
                 "write position<TAB>token<TAB>nll for every predicted position to this file (its directory "
                 "must exist)")
      ->check(output_file());
  app.add_flag("--by-position", by_position,
               "also report the mean loss by position in the window: 0-63, 64-255, 256-1023, ... (x4 each)");
  app.add_option("--docs", docs,
                 "classifier: JSON Lines documents (text, label[, split]); default: the run's data.train")
      ->check(existing_file());
  app.add_option("--split", split, "classifier: which documents: train, validation, test or all")
      ->check(one_of({"train", "validation", "test", "all"}))
      ->capture_default_str();
  app.add_option("--predictions", predictions,
                 "classifier: write doc<TAB>label<TAB>predicted<TAB>p(class)... for every document")
      ->check(output_file());
  app.add_option("--metrics-json", metrics_json, "classifier: write every figure as JSON to this file")
      ->check(output_file());
  app.add_option("--weights", weights,
                 "f32, or bf16: linear-layer weights rounded once to bf16 at load (what wersa-generate "
                 "--weights bf16 runs)")
      ->check(one_of({"f32", "bf16"}))
      ->capture_default_str();
  app.add_option("--device", device, "where to run: cpu or cuda")
      ->check(one_of({"cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("--threads", threads, "CPU threads (0 = all cores)")->check(integer(0, 1 << 16));
  return wersa::run_cli([&] {
    std::string help;
    if (wersa::parse_flags(app, argc, argv, &help)) {
      std::fputs(help.c_str(), stdout);
      return 0;
    }
    wersa::init_logging();
    std::string dir = ckpt;
    if (wersa::io::find_latest_checkpoint(ckpt) != "") dir = wersa::io::find_latest_checkpoint(ckpt);
    wersa::set_cpu_threads(threads);
    wersa::Config cfg = wersa::io::load_checkpoint_config(dir);
    if (cfg.model.task.classify()) {
      if (!text.empty() || !shards.empty() || by_position || !per_token.empty())
        wersa::usage_error(app,
                           "a classifier is evaluated on --docs FILE (--text, --shards, --per-token and "
                           "--by-position are for language models)");
      const int64_t docs_per_pass = app.count("--batch") ? batch : int64_t(cfg.train.batch_size);
      return evaluate_classifier_cli(dir, cfg, docs, split, docs_per_pass, predictions, metrics_json, weights,
                                     device);
    }
    if (!docs.empty() || !predictions.empty() || !metrics_json.empty())
      wersa::usage_error(app, "--docs, --predictions and --metrics-json are for classifier checkpoints");
    if (text.empty() && shards.empty()) wersa::usage_error(app, "give --text FILE or --shards GLOB");
    auto tok = wersa::data::load_tokenizer(wersa::io::checkpoint_tokenizer(dir));
    const std::unique_ptr<wersa::Model> loaded = wersa::io::load_inference_model(dir, cfg, weights, device);
    wersa::Model& model = *loaded;
    auto ds = wersa::data::open_dataset(text.empty() ? shards : text, *tok, cfg.model.vocab_size);
    if (seq <= 0) seq = cfg.train.seq_len;
    std::FILE* f = nullptr;
    if (!per_token.empty()) {
      f = std::fopen(per_token.c_str(), "w");
      WERSA_CHECK(f, per_token, ": cannot open for writing");
    }
    // Windows start at multiples of seq (evaluate's contract), so the target at stream position
    // pos sits at (pos - 1) % seq in its window: it was predicted from that many earlier tokens.
    std::vector<double> bucket_sum;
    std::vector<int64_t> bucket_n;
    auto bucket_of = [](int64_t t) {
      size_t b = 0;
      for (int64_t edge = 64; t >= edge; edge *= 4) ++b;
      return b;
    };
    const auto r =
        wersa::evaluate(model, *ds, seq, batch, max_tokens, [&](int64_t pos, int32_t token, double nll) {
          if (f) std::fprintf(f, "%lld\t%d\t%.6f\n", static_cast<long long>(pos), token, nll);
          if (!by_position) return;
          const size_t b = bucket_of((pos - 1) % seq);
          if (b >= bucket_n.size()) bucket_n.resize(b + 1, 0), bucket_sum.resize(b + 1, 0.0);
          bucket_sum[b] += nll;
          ++bucket_n[b];
        });
    if (f) {
      const bool failed = std::ferror(f) != 0;
      WERSA_CHECK(std::fclose(f) == 0 && !failed, per_token,
                  ": write failed: ", std::strerror(errno ? errno : EIO));
    }
    std::printf(
        "checkpoint %s\ndata %s\ntokens %lld\nmean_loss %.6f\nperplexity %.4f\nbits_per_token "
        "%.4f\ntok_per_s %.1f\n",
        dir.c_str(), ds->describe().c_str(), static_cast<long long>(r.tokens), r.mean_loss,
        std::exp(r.mean_loss), r.mean_loss / std::log(2.0), r.tokens / std::max(r.seconds, 1e-9));
    for (size_t b = 0, lo = 0, hi = 64; b < bucket_n.size(); ++b, lo = hi, hi *= 4)
      if (bucket_n[b] > 0)
        std::printf("by_position %zu-%lld tokens %lld mean_loss %.6f\n", lo,
                    static_cast<long long>(std::min<int64_t>(int64_t(hi) - 1, seq - 1)),
                    static_cast<long long>(bucket_n[b]), bucket_sum[b] / double(bucket_n[b]));
    return 0;
  });
}

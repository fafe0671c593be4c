// wersa-eval: mean loss, perplexity and throughput of a checkpoint on a text or token shards.
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
#include "wersa/common/log.h"
#include "wersa/io/checkpoint.h"
#include "wersa/train/trainer.h"

int main(int argc, char** argv) {
  wersa::select_blas_kernels(argv);
  using namespace wersa::cli;
  CLI::App app{"wersa-eval: evaluate a checkpoint's next-token loss", "wersa-eval"};
  std::string ckpt, text, shards, per_token;
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
  app.add_option("--batch", batch, "windows per forward pass")
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
  app.add_option("--threads", threads, "CPU threads (0 = all cores)")->check(integer(0, 1 << 16));
  return wersa::run_cli([&] {
    std::string help;
    if (wersa::parse_flags(app, argc, argv, &help)) {
      std::fputs(help.c_str(), stdout);
      return 0;
    }
    if (text.empty() && shards.empty()) wersa::usage_error(app, "give --text FILE or --shards GLOB");
    wersa::init_logging();
    std::string dir = ckpt;
    if (wersa::io::find_latest_checkpoint(ckpt) != "") dir = wersa::io::find_latest_checkpoint(ckpt);
    wersa::set_cpu_threads(threads);
    const wersa::Config cfg = wersa::io::load_checkpoint_config(dir);
    auto tok = wersa::data::load_tokenizer(wersa::io::checkpoint_tokenizer(dir));
    wersa::Model model(cfg.model, wersa::DType::F32, wersa::Device::CPU, false);
    wersa::io::load_model_weights(dir, model);
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

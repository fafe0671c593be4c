// wersa-eval: mean loss, perplexity and throughput of a checkpoint on a text or token shards.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

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
    const auto r =
        wersa::evaluate(model, *ds, seq, batch, max_tokens, [&](int64_t pos, int32_t token, double nll) {
          if (f) std::fprintf(f, "%lld\t%d\t%.6f\n", static_cast<long long>(pos), token, nll);
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
    return 0;
  });
}

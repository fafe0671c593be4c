// wersa-generate: text generation from a checkpoint with the recurrent decoder (WERSA: constant
// memory per token; softmax baseline: KV cache). Flags follow llama.cpp's llama-cli. Generated
// text streams to stdout token by token; statistics go to stderr at the end.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "wersa/backend/backend.h"
#include "wersa/common/cli.h"
#include "wersa/common/timer.h"
#include "wersa/data/tokenizer.h"
#include "wersa/io/checkpoint.h"
#include "wersa/io/state_file.h"
#include "wersa/model/generate.h"
#include "wersa/model/sampler.h"

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  WERSA_CHECK(f.good(), path, ": cannot open the prompt file");
  std::ostringstream s;
  s << f.rdbuf();
  WERSA_CHECK(!f.bad(), path, ": read failed");
  return s.str();
}

void perf_line(const char* what, double ms, int64_t n, const char* unit) {
  if (n > 0)
    std::fprintf(
        stderr, "wersa_perf: %16s = %10.2f ms / %5lld %s (%8.2f ms per token, %9.2f tokens per second)\n",
        what, ms, static_cast<long long>(n), unit, ms / double(n), 1000.0 * double(n) / std::max(ms, 1e-9));
  else
    std::fprintf(stderr, "wersa_perf: %16s = %10.2f ms / %5d %s\n", what, ms, 0, unit);
}

}  // namespace

int main(int argc, char** argv) {
  wersa::select_blas_kernels(argv);
  CLI::App app{"wersa-generate: generate text from a checkpoint (flags as in llama.cpp's llama-cli)"};
  std::string model_dir, prompt, prompt_file, save_state, load_state;
  int64_t n_predict = 128, ctx = 0, batch = 512, seed = -1;
  int threads = 0;
  bool interactive = false, ignore_eos = false, no_display_prompt = false, no_eos_prefix = false;
  wersa::SamplerOptions so;
  app.add_option("-m,--model", model_dir,
                 "checkpoint directory (RUN/step-NNNNNN) or a run directory (its newest)")
      ->required();
  auto* p_opt = app.add_option("-p,--prompt", prompt, "prompt text");
  auto* f_opt = app.add_option("-f,--file", prompt_file, "read the prompt from a file");
  p_opt->excludes(f_opt);
  app.add_option("-n,--n-predict", n_predict, "tokens to generate (-1 = until EOS or the context is full)")
      ->check(CLI::Range(int64_t(-1), int64_t(1) << 40))
      ->capture_default_str();
  app.add_option("-s,--seed", seed, "sampling seed (-1 = random; the seed used is printed)")
      ->capture_default_str();
  app.add_option("--temp", so.temp, "temperature (0 = greedy)")->capture_default_str();
  app.add_option("--top-k", so.top_k, "top-k sampling (0 = off)")->capture_default_str();
  app.add_option("--top-p", so.top_p, "top-p sampling (1 = off)")->capture_default_str();
  app.add_option("--min-p", so.min_p, "min-p sampling (0 = off)")->capture_default_str();
  app.add_option("--repeat-penalty", so.repeat_penalty, "penalty for repeated tokens (1 = off)")
      ->capture_default_str();
  app.add_option("--repeat-last-n", so.repeat_last_n, "last n tokens to penalise (0 = off, -1 = all)")
      ->capture_default_str();
  app.add_flag("--ignore-eos", ignore_eos, "never stop at end-of-sequence (EOS is never sampled)");
  app.add_option("-c,--ctx-size", ctx,
                 "context limit in tokens (0: unlimited for WERSA; the training seq_len for softmax models)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("-b,--batch-size", batch, "prompt tokens per parallel prefill chunk")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("-t,--threads", threads, "CPU threads (0 = all cores)");
  app.add_flag("-i,--interactive", interactive,
               "after the prompt, read lines from stdin; each is appended and answered, the state kept");
  app.add_option("--save-state", save_state, "write the state (everything read and generated) to this file");
  app.add_option("--load-state", load_state, "start from a state written by --save-state (same model)");
  app.add_flag("--no-display-prompt", no_display_prompt, "do not echo the prompt to stdout");
  app.add_flag("--no-eos-prefix", no_eos_prefix,
               "do not precede a fresh prompt with EOS (training documents follow an EOS)");
  CLI11_PARSE(app, argc, argv);
  return wersa::run_cli([&] {
    const wersa::Timer total;
    if (!prompt_file.empty()) prompt = read_file(prompt_file);
    const bool have_prompt = p_opt->count() > 0 || f_opt->count() > 0;
    WERSA_CHECK(have_prompt || interactive || !load_state.empty(),
                "give a prompt with -p TEXT or -f FILE (or --load-state FILE, or -i)");
    std::string dir = model_dir;
    if (!wersa::io::find_latest_checkpoint(model_dir).empty())
      dir = wersa::io::find_latest_checkpoint(model_dir);
    const int nthreads = wersa::set_cpu_threads(threads);
    const wersa::Timer load;
    const wersa::Config cfg = wersa::io::load_checkpoint_config(dir);
    auto tok = wersa::data::load_tokenizer(wersa::io::checkpoint_tokenizer(dir));
    WERSA_CHECK(tok->vocab_size() <= cfg.model.vocab_size, dir, ": the tokenizer has ", tok->vocab_size(),
                " ids but the model only ", cfg.model.vocab_size);
    wersa::Model model(cfg.model, wersa::DType::F32, wersa::Device::CPU, false);
    wersa::io::load_model_weights(dir, model);
    const bool cache = model.generation_needs_context();  // a KV cache: the context is bounded
    if (cache && ctx == 0) ctx = cfg.train.seq_len;
    wersa::DecodeState state(model, wersa::DecodeOptions{ctx, batch});
    if (!load_state.empty()) wersa::load_decode_state(model, state, load_state);
    const double load_ms = load.ms();
    if (seed < 0) seed = int64_t(std::random_device{}() & 0x7fffffff);
    so.seed = uint64_t(seed);
    wersa::Sampler sampler(so);
    const int64_t loaded = state.pos();

    wersa::GenerateOptions go;
    go.n_predict = n_predict;
    go.eos_id = tok->eos_id();
    go.ignore_eos = ignore_eos;
    auto emit = [&](int32_t t) {
      if (t == go.eos_id) return;
      const std::string piece = tok->piece_bytes(t);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    };
    wersa::GenerateStats sum;
    auto turn = [&](const std::string& text, bool display) {
      std::vector<int32_t> ids;
      if (state.pos() == 0 && !no_eos_prefix && tok->eos_id() >= 0) ids.push_back(tok->eos_id());
      const std::vector<int32_t> enc = tok->encode(text);
      ids.insert(ids.end(), enc.begin(), enc.end());
      if (display && !text.empty()) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
      }
      WERSA_CHECK(!ids.empty() || state.pos() > 0, "the prompt is empty and the state holds no tokens");
      const wersa::GenerateStats r = wersa::generate(model, state, sampler, ids, go, emit);
      sum.prompt_tokens += r.prompt_tokens;
      sum.prompt_ms += r.prompt_ms;
      sum.generated += r.generated;
      sum.generate_ms += r.generate_ms;
      if (r.context_full)
        std::fprintf(stderr, "\nwersa-generate: context full (%lld tokens)\n", static_cast<long long>(ctx));
    };
    if (have_prompt || (!interactive && state.pos() > 0)) turn(prompt, !no_display_prompt);
    if (interactive) {
      std::string line;
      while (true) {
        std::fprintf(stderr, "\n> ");
        std::fflush(stderr);
        if (!std::getline(std::cin, line)) break;
        turn(line.empty() ? std::string() : line + "\n", false);
      }
    }
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!save_state.empty()) {
      wersa::save_decode_state(model, state, save_state, {{"checkpoint", dir}});
      std::fprintf(stderr, "wersa-generate: state of %lld tokens saved to %s\n",
                   static_cast<long long>(state.pos()), save_state.c_str());
    }
    std::fprintf(stderr, "\n");
    std::fprintf(
        stderr,
        "wersa-generate: %s: %s attention, %.2f M params, context %s, state %s%s, seed %lld, %d threads\n",
        dir.c_str(), wersa::attention_kind_name(cfg.model.attention.type), double(model.num_params()) / 1e6,
        ctx > 0 ? std::to_string(ctx).c_str() : "unlimited", wersa::format_bytes(state.state_bytes()).c_str(),
        cache ? " (KV cache)" : " (constant)", static_cast<long long>(seed), nthreads);
    if (loaded > 0)
      std::fprintf(stderr, "wersa-generate: started from a state of %lld tokens\n",
                   static_cast<long long>(loaded));
    perf_line("load time", load_ms, 0, "tokens");
    perf_line("prompt eval time", sum.prompt_ms, sum.prompt_tokens, "tokens");
    perf_line("eval time", sum.generate_ms, sum.generated, "runs  ");
    perf_line("total time", total.ms(), sum.prompt_tokens + sum.generated, "tokens");
    return 0;
  });
}

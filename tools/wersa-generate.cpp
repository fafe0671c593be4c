// wersa-generate: text generation from a checkpoint with the recurrent decoder (WERSA: constant
// memory per token; softmax baseline: KV cache). Flags follow llama.cpp's llama-cli. Generated
// text streams to stdout token by token; statistics go to stderr at the end.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "generate_flags.h"
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
  wersa::prepare_cpu_runtime(argv);
  return wersa::run_cli([&] {
    const wersa::GenerateFlags flags = wersa::parse_generate_flags(argc, argv);
    if (!flags.help.empty()) {
      std::fputs(flags.help.c_str(), stdout);
      return 0;
    }
    const std::string& model_dir = flags.model_dir;
    std::string prompt = flags.prompt;
    const std::string &save_state = flags.save_state, &load_state = flags.load_state;
    int64_t ctx = flags.ctx, seed = flags.seed;
    const int64_t n_predict = flags.n_predict, batch = flags.batch;
    const bool interactive = flags.interactive, have_prompt = flags.have_prompt;
    wersa::SamplerOptions so = flags.sampler;
    const wersa::Timer total;
    if (!flags.prompt_file.empty()) prompt = read_file(flags.prompt_file);
    std::string dir = model_dir;
    if (!wersa::io::find_latest_checkpoint(model_dir).empty())
      dir = wersa::io::find_latest_checkpoint(model_dir);
    const int nthreads = wersa::set_cpu_threads(flags.threads);
    const wersa::Timer load;
    const wersa::Config cfg = wersa::io::load_checkpoint_config(dir);
    auto tok = wersa::data::load_tokenizer(wersa::io::checkpoint_tokenizer(dir));
    WERSA_CHECK(tok->vocab_size() <= cfg.model.vocab_size, dir, ": the tokenizer has ", tok->vocab_size(),
                " ids but the model only ", cfg.model.vocab_size);
    const std::unique_ptr<wersa::Model> loaded_model =
        wersa::io::load_inference_model(dir, cfg, flags.weights, flags.device);
    const wersa::Model& model = *loaded_model;
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
    go.ignore_eos = flags.ignore_eos;
    auto emit = [&](int32_t t) {
      if (t == go.eos_id) return;
      const std::string piece = tok->piece_bytes(t);
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    };
    wersa::GenerateStats sum;
    auto turn = [&](const std::string& text, bool display) {
      std::vector<int32_t> ids;
      if (state.pos() == 0 && !flags.no_eos_prefix && tok->eos_id() >= 0) ids.push_back(tok->eos_id());
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
    if (have_prompt || (!interactive && state.pos() > 0)) turn(prompt, !flags.no_display_prompt);
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

#include "generate_flags.h"

#include <limits>

#include "wersa/common/cli.h"

namespace wersa {

GenerateFlags parse_generate_flags(int argc, const char* const* argv) {
  using namespace wersa::cli;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  GenerateFlags f;
  SamplerOptions& so = f.sampler;
  CLI::App app{"wersa-generate: generate text from a checkpoint (flags as in llama.cpp's llama-cli)",
               "wersa-generate"};
  app.add_option("-m,--model", f.model_dir,
                 "checkpoint directory (RUN/step-NNNNNN) or a run directory (its newest)")
      ->required()
      ->check(existing_dir());
  auto* p_opt = app.add_option("-p,--prompt", f.prompt, "prompt text");
  auto* f_opt =
      app.add_option("-f,--file", f.prompt_file, "read the prompt from a file")->check(existing_file());
  p_opt->excludes(f_opt);
  app.add_option("-n,--n-predict", f.n_predict, "tokens to generate (-1 = until EOS or the context is full)")
      ->check(integer(-1, int64_t(1) << 40))
      ->capture_default_str();
  app.add_option("-s,--seed", f.seed, "sampling seed (-1 = random; the seed used is printed)")
      ->check(integer(-1))
      ->capture_default_str();
  app.add_option("--temp", so.temp, "temperature (0 = greedy)")
      ->check(number(0, kInf))
      ->capture_default_str();
  app.add_option("--top-k", so.top_k, "top-k sampling (0 = off)")
      ->check(integer(0, kMaxInt))
      ->capture_default_str();
  app.add_option("--top-p", so.top_p, "top-p sampling (1 = off)")
      ->check(number(0, 1, true, false))
      ->capture_default_str();
  app.add_option("--min-p", so.min_p, "min-p sampling (0 = off)")->check(number(0, 1))->capture_default_str();
  app.add_option("--repeat-penalty", so.repeat_penalty, "penalty for repeated tokens (1 = off)")
      ->check(number(0, kInf, true))
      ->capture_default_str();
  app.add_option("--repeat-last-n", so.repeat_last_n, "last n tokens to penalise (0 = off, -1 = all)")
      ->check(integer(-1, kMaxInt))
      ->capture_default_str();
  app.add_flag("--ignore-eos", f.ignore_eos, "never stop at end-of-sequence (EOS is never sampled)");
  app.add_option("-c,--ctx-size", f.ctx,
                 "context limit in tokens (0: unlimited for WERSA; the training seq_len for softmax models)")
      ->check(integer(0, int64_t(1) << 40))
      ->capture_default_str();
  app.add_option("-b,--batch-size", f.batch, "prompt tokens per parallel prefill chunk")
      ->check(integer(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--weights", f.weights,
                 "f32, or bf16: linear-layer weights rounded once to bf16 at load (half the bytes per "
                 "token; fp32 arithmetic)")
      ->check(one_of({"f32", "bf16"}))
      ->capture_default_str();
  app.add_option("--device", f.device, "where to run: cpu or cuda (logits read back once per token)")
      ->check(one_of({"cpu", "cuda"}))
      ->capture_default_str();
  app.add_option("-t,--threads", f.threads, "CPU threads (0 = all cores)")
      ->check(integer(0, 1 << 16))
      ->capture_default_str();
  app.add_flag("-i,--interactive", f.interactive,
               "after the prompt, read lines from stdin; each is appended and answered, the state kept");
  app.add_option("--save-state", f.save_state,
                 "write the state (everything read and generated) to this file (its directory must exist)")
      ->check(output_file());
  app.add_option("--load-state", f.load_state, "start from a state written by --save-state (same model)")
      ->check(existing_file());
  app.add_flag("--no-display-prompt", f.no_display_prompt, "do not echo the prompt to stdout");
  app.add_flag("--no-eos-prefix", f.no_eos_prefix,
               "do not precede a fresh prompt with EOS (training documents follow an EOS)");
  if (parse_flags(app, argc, argv, &f.help)) return f;
  f.have_prompt = p_opt->count() > 0 || f_opt->count() > 0;
  if (!f.have_prompt && !f.interactive && f.load_state.empty())
    usage_error(app, "give a prompt with -p TEXT or -f FILE (or --load-state FILE, or -i)");
  return f;
}

}  // namespace wersa

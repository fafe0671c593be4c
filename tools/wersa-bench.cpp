// wersa-bench: prompt processing (pp, parallel chunked prefill) and generation (tg, one decode
// step per token) throughput in the style of llama-bench, at chosen context depths (a prefilled
// context of that many tokens before each test), repeated, mean +- standard deviation; a
// markdown table and optionally JSON. In the same run it measures the memory bandwidth (a
// streaming read of a buffer much larger than the last-level cache, all threads) and reports the
// bound it puts on decoding (bandwidth / bytes of weights read per token) and the share reached;
// --ops times every op call of one more run of each tg test (time per token beside its ops).
// `wersa-bench train`: training steps and forward passes of configs at sequence lengths, as
// tokens/s, model GFLOP/s and a share of the sgemm rate measured in the same run
// (wersa/train/bench.h). `wersa-bench serve`: a load benchmark of wersa-server (bench/serve.h).
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/serve.h"
#include "wersa/backend/backend.h"
#include "wersa/common/cli.h"
#include "wersa/common/rng.h"
#include "wersa/common/stats.h"
#include "wersa/common/timer.h"
#include "wersa/io/checkpoint.h"
#include "wersa/model/decode_batch.h"
#include "wersa/model/generate.h"
#include "wersa/train/bench.h"
#include "wersa/train/memory.h"

namespace {

std::vector<int64_t> parse_list(const std::string& s, const char* flag) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    WERSA_CHECK(used == item.size() && v >= 0, flag, " ", s, ": '", item, "' is not a count >= 0");
    out.push_back(v);
  }
  WERSA_CHECK(!out.empty(), flag, ": empty list");
  return out;
}

// Streaming read of `bytes` on every core, whatever -t says (the machine's bandwidth, not the
// thread setting's), with 16 independent float accumulators per thread so the loop vectorises
// without reassociation; the best of `reps` passes, in GB/s (1e9 bytes).
double memory_bandwidth(size_t bytes, int reps, int cores) {
  const size_t n = bytes / sizeof(float) / 16 * 16;
  std::unique_ptr<float[]> buf(new float[n]);
#pragma omp parallel for schedule(static) num_threads(cores)
  for (size_t i = 0; i < n; ++i) buf[i] = float(i & 1023);
  double best = 0, sink = 0;
  for (int r = 0; r < reps; ++r) {
    const double t0 = omp_get_wtime();
    double total = 0;
#pragma omp parallel reduction(+ : total) num_threads(cores)
    {
      float acc[16] = {};
#pragma omp for schedule(static)
      for (size_t i = 0; i < n; i += 16)
        for (int j = 0; j < 16; ++j) acc[j] += buf[i + j];
      for (float a : acc) total += a;
    }
    const double dt = omp_get_wtime() - t0;
    sink += total;
    best = std::max(best, double(n * sizeof(float)) / dt / 1e9);
  }
  if (sink == 42.0) std::fprintf(stderr, " ");  // keeps the reads
  return best;
}

// The device's memory bandwidth: the best of `reps` device-to-device copies of `bytes` (each byte
// read once and written once), in GB/s (1e9 bytes) of traffic.
double device_bandwidth(wersa::Device d, size_t bytes, int reps) {
  void* a = wersa::device_alloc(d, bytes);
  void* b = wersa::device_alloc(d, bytes);
  double best = 0;
  for (int r = -1; r < reps; ++r) {
    const wersa::Timer t;
    wersa::device_copy(d, b, d, a, bytes);
    wersa::device_sync(d);
    const double s = t.ms() / 1e3;
    if (r >= 0 && s > 0) best = std::max(best, 2.0 * double(bytes) / s / 1e9);
  }
  wersa::device_free(d, a);
  wersa::device_free(d, b);
  return best;
}

struct ModelSpec {
  std::string name;  // what the table shows
  wersa::Config cfg;
  std::string ckpt;             // empty: random init from the config
  std::string weights = "f32";  // f32 | bf16 (--weights)
};

struct Row {
  std::string model, attention, weights, test;
  int64_t params, n, depth;
  std::vector<double> ts;
  // --ops, tg tests: one more run with every op call of its decode steps timed: its wall time
  // and the sum of its ops' times per token, and the ops by time (ms per token).
  double ops_run_ms = 0, ops_sum_ms = 0;
  std::vector<std::pair<std::string, double>> ops{};
  int64_t streams = 0;  // --streams rows: sequences decoded together (ts: their aggregate t/s)
};

// --streams: `ns` sequences, each continuing `base`, decoded together for n steps (one DecodeBatch
// step feeds a token to each): the aggregate t/s (ns * n tokens over the time), after a warm-up.
Row batched_tg(const wersa::Model& model, const wersa::DecodeState& base, const ModelSpec& sp,
               const std::string& attn, int64_t n, int64_t ns, int64_t depth, int reps, uint64_t seed) {
  Row r{sp.name, attn, sp.weights, "tg" + std::to_string(n), model.num_params(), n, depth, {}};
  r.streams = ns;
  const int64_t V = model.config().vocab_size;
  const wersa::DecodeOptions opt{base.context(), base.prefill_chunk()};
  wersa::DecodeBatch batch(model, ns, opt);
  std::vector<std::unique_ptr<wersa::DecodeState>> st;
  std::vector<wersa::DecodeState*> ptrs;
  for (int64_t i = 0; i < ns; ++i) {
    st.push_back(std::make_unique<wersa::DecodeState>(model, opt));
    ptrs.push_back(st.back().get());
  }
  uint64_t draw = 0;
  std::vector<int32_t> toks(static_cast<size_t>(ns));
  for (int rep = -1; rep < reps; ++rep) {  // rep -1: warm-up
    for (auto& s : st) s->copy_from(base);
    const wersa::Timer t;
    for (int64_t step = 0; step < n; ++step) {
      for (int32_t& x : toks) x = int32_t(wersa::rng_bits(seed, 98, draw++) % uint64_t(V));
      batch.step(ptrs, toks);
    }
    if (rep >= 0) r.ts.push_back(1000.0 * double(n * ns) / t.ms());
  }
  return r;
}

// ---- wersa-bench train ----------------------------------------------------------------------

struct TrainFlags {
  std::vector<std::string> configs, sets;
  std::string attn, lengths = "1024", json_path, max_memory, device = "cpu";
  int64_t batch = 0, head_rows = 0, gemm_size = 0;
  int reps = 5, warmup = 1, threads = 0;
  bool recompute = false, no_forward = false, ops = false;
  uint64_t seed = 1234;
};

CLI::App* add_train_command(CLI::App& app, TrainFlags& f) {
  using namespace wersa::cli;
  CLI::App* c = app.add_subcommand(
      "train",
      "training steps (forward, backward, optimizer) and forward passes of configs at sequence lengths: "
      "tokens/s, model GFLOP/s and their share of the sgemm rate measured in the same run, peak memory");
  c->add_option("--config", f.configs, "JSON config of the model and optimizer (repeatable)")
      ->required()
      ->check(existing_file());
  c->add_option("--set", f.sets, "override a config key: section.key=value (repeatable)")->check(key_value());
  c->add_option("--attention", f.attn,
                "comma list of attention types to run each config as (e.g. wersa,softmax)")
      ->check(non_empty());
  c->add_option("-T,--seq-len", f.lengths, "sequence lengths, comma list")
      ->check(integer_list(1))
      ->capture_default_str();
  c->add_option("-b,--batch-size", f.batch, "sequences per step (0 = the config's train.batch_size)")
      ->check(integer(0, 1 << 16))
      ->capture_default_str();
  c->add_flag("--recompute", f.recompute, "recompute block activations in the backward (train.recompute)");
  c->add_flag("--no-forward", f.no_forward, "time training steps only");
  c->add_flag("--ops", f.ops,
              "also time every op call of the training steps and print where a step goes (CUDA: each call "
              "synchronised)");
  c->add_option("--head-rows", f.head_rows,
                "rows per tile of the language-model head in training steps (0 = automatic: 4 to 16 MiB of "
                "logits per tile on a CPU, by the activation memory)")
      ->check(integer(0, int64_t(1) << 40))
      ->capture_default_str();
  c->add_option("-r,--repetitions", f.reps, "timed steps per case")
      ->check(integer(1, 1000))
      ->capture_default_str();
  c->add_option("--warmup", f.warmup, "untimed steps first")->check(integer(0, 1000))->capture_default_str();
  c->add_option("-t,--threads", f.threads, "CPU threads (0 = all cores)")->check(integer(0, 1 << 16));
  c->add_option(
       "--max-memory", f.max_memory,
       "cases whose memory estimate exceeds this are OOM rows, e.g. 16G (default: the available memory)")
      ->check(non_empty());
  c->add_option("--json", f.json_path, "also write the results as JSON to this file")->check(output_file());
  c->add_option("--seed", f.seed, "seed of the weights and tokens")->check(integer(0))->capture_default_str();
  c->add_option("--device", f.device, "where the steps run: cpu or cuda")
      ->check(one_of({"cpu", "cuda"}))
      ->capture_default_str();
  c->add_option("--gemm-size", f.gemm_size,
                "M = N = K of the f32 GEMM that sets the limit, measured at the start and beside every step "
                "(0 = 1024 on the CPU, 4096 on CUDA)")
      ->check(integer(0, 1 << 15))
      ->capture_default_str();
  return c;
}

int run_train(const CLI::App& cmd, const TrainFlags& f) {
  const auto lengths = parse_list(f.lengths, "-T");
  const wersa::Device dev = f.device == "cuda" ? wersa::Device::CUDA : wersa::Device::CPU;
  WERSA_CHECK(dev == wersa::Device::CPU || wersa::cuda_available(),
              "--device cuda: no CUDA device is available (the engine was built without CUDA, or no GPU is "
              "visible)");
  size_t limit = 0;
  try {
    limit =
        wersa::memory_limit(f.max_memory.empty() ? 0 : wersa::parse_bytes(f.max_memory, "--max-memory"), dev);
  } catch (const wersa::UsageError&) {
    throw;
  } catch (const wersa::Error& e) {
    wersa::usage_error(cmd, e.what());
  }
  const int nthreads = wersa::set_cpu_threads(f.threads);
  const int64_t gemm = f.gemm_size > 0 ? f.gemm_size : dev == wersa::Device::CUDA ? 4096 : 1024;
  const double sgemm = wersa::measure_sgemm_gflops(gemm, gemm, gemm, 5, dev);
  std::fprintf(stderr, "wersa-bench train: sgemm %.1f GFLOP/s (%lld^3 on %s; %d CPU threads, %s)\n", sgemm,
               static_cast<long long>(gemm), f.device.c_str(), nthreads, wersa::blas_kernel_name().c_str());
  std::vector<wersa::TrainBenchRow> rows;
  wersa::TrainBenchOptions opt;
  opt.reps = f.reps, opt.warmup = f.warmup, opt.forward = !f.no_forward, opt.seed = f.seed,
  opt.max_memory = limit, opt.head_rows = f.head_rows;
  opt.ops = f.ops;
  opt.device = dev, opt.probe_size = gemm;
  for (const std::string& path : f.configs) {
    wersa::Config cfg = wersa::config_from_file(path);
    wersa::config_set_all(cfg, f.sets);
    std::vector<std::string> types;
    std::stringstream ss(f.attn);
    for (std::string t; std::getline(ss, t, ',');) types.push_back(t);
    if (types.empty()) types.push_back(wersa::attention_kind_name(cfg.model.attention.type));
    for (const std::string& t : types)
      for (int64_t T : lengths) {
        wersa::Config c = cfg;
        wersa::config_set(c, "model.attention.type=" + t, "--attention");
        wersa::config_set(c, "train.seq_len=" + std::to_string(T), "-T");
        if (f.batch > 0) wersa::config_set(c, "train.batch_size=" + std::to_string(f.batch), "-b");
        if (f.recompute) wersa::config_set(c, "train.recompute=true", "--recompute");
        wersa::config_set(c, "train.device=" + f.device, "--device");
        std::fprintf(stderr, "  %s %s T=%lld batch %d ...\n", path.c_str(), t.c_str(),
                     static_cast<long long>(T), c.train.batch_size);
        rows.push_back(wersa::bench_train_case(path, c, opt));
      }
  }
  std::fputs(wersa::train_bench_markdown(rows, sgemm, nthreads).c_str(), stdout);
  if (!f.json_path.empty()) {
    std::ofstream out(f.json_path);
    WERSA_CHECK(out.good(), f.json_path, ": cannot open for writing");
    out << wersa::train_bench_json(rows, sgemm, nthreads).dump(2) << "\n";
    WERSA_CHECK(out.good(), f.json_path, ": write failed");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  wersa::prepare_cpu_runtime(argv);
  using namespace wersa::cli;
  CLI::App app{"wersa-bench: prefill (pp) and decode (tg) throughput at context depths, llama-bench style",
               "wersa-bench"};
  std::vector<std::string> ckpts, configs, sets;
  std::string pp_s = "512", tg_s = "128", depth_s = "0", attn_s, json_path, weights_s = "f32",
              device_s = "cpu", streams_s;
  int reps = 5, threads = 0;
  int64_t batch = 512, bw_mib = 1024;
  bool ops = false;
  uint64_t seed = 1234;
  app.add_option("-m,--model", ckpts, "checkpoint or run directory (repeatable)")->check(existing_dir());
  app.add_option("--config", configs, "JSON config: a randomly initialised model of that shape (repeatable)")
      ->check(existing_file());
  app.add_option("--set", sets, "override a config key of --config models: section.key=value (repeatable)")
      ->check(key_value());
  app.add_option("--attention", attn_s,
                 "comma list of attention types to run each --config as (e.g. wersa,softmax,linear)")
      ->check(non_empty());
  app.add_option("--weights", weights_s,
                 "comma list of weight formats to run each model in: f32, bf16 (linear-layer weights "
                 "rounded once to bf16 at load), e.g. f32,bf16")
      ->check(word_list({"f32", "bf16"}))
      ->capture_default_str();
  app.add_option("-p,--n-prompt", pp_s, "prompt lengths for pp tests, comma list (0 = none)")
      ->check(integer_list(0))
      ->capture_default_str();
  app.add_option("-n,--n-gen", tg_s, "generated tokens for tg tests, comma list (0 = none)")
      ->check(integer_list(0))
      ->capture_default_str();
  app.add_option("-d,--n-depth", depth_s, "context depths, comma list")
      ->check(integer_list(0))
      ->capture_default_str();
  app.add_option("--streams", streams_s,
                 "tg tests: also decode this many sequences together (DecodeBatch, as wersa-server), "
                 "comma list, e.g. 1,2,4,8,16; prints ms per step and the aggregate t/s")
      ->check(integer_list(1));
  app.add_option("-r,--repetitions", reps, "repetitions of each test")
      ->check(integer(1, 1000))
      ->capture_default_str();
  app.add_option("-t,--threads", threads, "CPU threads (0 = all cores)")->check(integer(0, 1 << 16));
  app.add_option("-b,--batch-size", batch, "rows per prefill chunk")
      ->check(integer(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--json", json_path,
                 "also write the results as JSON to this file (its directory must exist)")
      ->check(output_file());
  app.add_option("--bw-mib", bw_mib, "buffer for the bandwidth measurement in MiB (0 = skip)")
      ->check(integer(0, 1 << 20))
      ->capture_default_str();
  app.add_flag("--ops", ops,
               "tg tests: one more run with every op call timed; prints the time per token beside the "
               "sum of its ops' times and the ops by time");
  app.add_option("--seed", seed, "seed of the random models and tokens")
      ->check(integer(0))
      ->capture_default_str();
  app.add_option("--device", device_s,
                 "where the models run: cpu or cuda (on cuda the bandwidth is the device's, by a copy)")
      ->check(one_of({"cpu", "cuda"}))
      ->capture_default_str();
  TrainFlags tf;
  CLI::App* train_cmd = add_train_command(app, tf);
  wersa::bench::ServeFlags sf;
  CLI::App* serve_cmd = wersa::bench::add_serve_command(app, sf);
  return wersa::run_cli([&] {
    std::string help;
    if (wersa::parse_flags(app, argc, argv, &help)) {
      std::fputs(help.c_str(), stdout);
      return 0;
    }
    if (train_cmd->parsed()) return run_train(*train_cmd, tf);
    if (serve_cmd->parsed()) return wersa::bench::run_serve(sf);
    if (ckpts.empty() && configs.empty())
      wersa::usage_error(app, "give a model: -m CHECKPOINT or --config FILE");
    const auto pps = parse_list(pp_s, "-p"), tgs = parse_list(tg_s, "-n"), depths = parse_list(depth_s, "-d");
    const auto streams = streams_s.empty() ? std::vector<int64_t>{} : parse_list(streams_s, "--streams");
    const int nthreads = wersa::set_cpu_threads(threads);
    const wersa::Device dev = device_s == "cuda" ? wersa::Device::CUDA : wersa::Device::CPU;
    WERSA_CHECK(dev == wersa::Device::CPU || wersa::cuda_available(),
                "--device cuda: no CUDA device is available (the engine was built without CUDA, or no GPU is "
                "visible)");
    WERSA_CHECK(dev == wersa::Device::CPU || weights_s == "f32", "--weights ", weights_s,
                ": bf16 weights run on the cpu (--device cuda takes f32)");
    std::vector<ModelSpec> specs;
    for (const std::string& c : ckpts) {
      std::string dir = c;
      if (!wersa::io::find_latest_checkpoint(c).empty()) dir = wersa::io::find_latest_checkpoint(c);
      specs.push_back({dir, wersa::io::load_checkpoint_config(dir), dir, "f32"});
    }
    for (const std::string& c : configs) {
      wersa::Config cfg = wersa::config_from_file(c);
      wersa::config_set_all(cfg, sets);
      std::vector<std::string> types;
      std::stringstream ss(attn_s);
      for (std::string t; std::getline(ss, t, ',');) types.push_back(t);
      if (types.empty()) types.push_back(wersa::attention_kind_name(cfg.model.attention.type));
      for (const std::string& t : types) {
        wersa::Config ct = cfg;
        wersa::config_set(ct, "model.attention.type=" + t, "--attention");
        specs.push_back({c, ct, "", "f32"});
      }
    }
    {  // every model once per weight format, in the order given
      std::vector<std::string> formats;
      std::stringstream ws(weights_s);
      for (std::string w; std::getline(ws, w, ',');) formats.push_back(w);
      std::vector<ModelSpec> expanded;
      for (const ModelSpec& sp : specs)
        for (const std::string& w : formats) {
          expanded.push_back(sp);
          expanded.back().weights = w;
        }
      specs = std::move(expanded);
    }
    const int cores = omp_get_num_procs();
    double bw = 0;
    if (bw_mib > 0)
      bw = dev == wersa::Device::CPU ? memory_bandwidth(size_t(bw_mib) << 20, 5, cores)
                                     : device_bandwidth(dev, size_t(bw_mib) << 20, 5);
    std::vector<Row> rows;
    nlohmann::json jmodels = nlohmann::json::array();
    for (const ModelSpec& sp : specs) {
      std::unique_ptr<wersa::Model> loaded;
      if (sp.ckpt.empty()) {
        loaded = std::make_unique<wersa::Model>(sp.cfg.model, wersa::DType::F32, wersa::Device::CPU, false);
        loaded->init(seed);
        if (sp.weights == "bf16") loaded = std::make_unique<wersa::Model>(*loaded, wersa::DType::BF16);
        if (dev != wersa::Device::CPU) loaded = std::make_unique<wersa::Model>(*loaded, dev);
      } else {
        loaded = wersa::io::load_inference_model(sp.ckpt, sp.cfg, sp.weights, device_s);
      }
      const wersa::Model& model = *loaded;
      const std::string attn = wersa::attention_kind_name(sp.cfg.model.attention.type);
      const int64_t V = sp.cfg.model.vocab_size;
      int64_t maxd = 0, maxn = 0;
      for (int64_t d : depths) maxd = std::max(maxd, d);
      for (int64_t n : pps) maxn = std::max(maxn, n);
      for (int64_t n : tgs) maxn = std::max(maxn, n);
      const int64_t ctx = model.generation_needs_context() ? maxd + maxn + 1 : 0;
      wersa::DecodeState base(model, {ctx, batch}), work(model, {ctx, batch});
      uint64_t draw = 0;
      auto random_tokens = [&](int64_t n) {
        std::vector<int32_t> t(static_cast<size_t>(n));
        for (int32_t& x : t) x = int32_t(wersa::rng_bits(seed, 99, draw++) % uint64_t(V));
        return t;
      };
      const size_t wbytes = wersa::decode_weight_bytes(model);
      std::fprintf(stderr, "wersa-bench: %s (%s, %s weights, %.2f M params, %s of weights per token)\n",
                   sp.name.c_str(), attn.c_str(), sp.weights.c_str(), double(model.num_params()) / 1e6,
                   wersa::format_bytes(wbytes).c_str());
      for (int64_t depth : depths) {
        base.reset();
        if (depth > 0) {
          const wersa::Timer t;
          wersa::prefill(model, base, random_tokens(depth));
          std::fprintf(stderr, "  depth %lld prefilled in %.1f s\n", static_cast<long long>(depth),
                       t.ms() / 1e3);
        }
        for (int64_t n : pps) {
          if (n == 0) continue;
          Row r{sp.name, attn, sp.weights, "pp" + std::to_string(n), model.num_params(), n, depth, {}};
          for (int rep = -1; rep < reps; ++rep) {  // rep -1: warm-up
            work.copy_from(base);
            const auto toks = random_tokens(n);
            const wersa::Timer t;
            wersa::prefill(model, work, toks);
            if (rep >= 0) r.ts.push_back(1000.0 * double(n) / t.ms());
          }
          rows.push_back(r);
        }
        for (int64_t n : tgs) {
          if (n == 0) continue;
          Row r{sp.name, attn, sp.weights, "tg" + std::to_string(n), model.num_params(), n, depth, {}};
          for (int rep = -1; rep < reps; ++rep) {
            work.copy_from(base);
            const auto toks = random_tokens(n);
            const wersa::Timer t;
            for (int32_t tk : toks) wersa::decode_step(model, work, tk);
            if (rep >= 0) r.ts.push_back(1000.0 * double(n) / t.ms());
          }
          if (ops && dev == wersa::Device::CPU) {
            work.copy_from(base);
            const auto toks = random_tokens(n);
            wersa::OpTimes times;
            work.set_op_times(&times);
            const wersa::Timer t;
            for (int32_t tk : toks) wersa::decode_step(model, work, tk);
            r.ops_run_ms = t.ms() / double(n);
            work.set_op_times(nullptr);
            r.ops_sum_ms = 1e3 * times.total_seconds() / double(n);
            std::sort(times.entries.begin(), times.entries.end(),
                      [](const wersa::OpTimes::Entry& a, const wersa::OpTimes::Entry& b) {
                        return a.seconds > b.seconds;
                      });
            for (const auto& e : times.entries) r.ops.emplace_back(e.op, 1e3 * e.seconds / double(n));
          }
          rows.push_back(r);
          for (int64_t ns : streams)
            if (dev == wersa::Device::CPU)
              rows.push_back(batched_tg(model, base, sp, attn, n, ns, depth, reps, seed));
        }
      }
      jmodels.push_back({{"model", sp.name},
                         {"attention", attn},
                         {"weights", sp.weights},
                         {"params", model.num_params()},
                         {"weight_bytes_per_token", wbytes},
                         {"state_bytes", base.state_bytes()},
                         {"bandwidth_bound_tokens_per_s", bw > 0 ? bw * 1e9 / double(wbytes) : 0.0}});
    }
    // The table.
    std::printf("| model | attention | weights | params | threads | test | t/s |\n");
    std::printf("| --- | --- | --- | ---: | ---: | ---: | ---: |\n");
    nlohmann::json jrows = nlohmann::json::array();
    for (const Row& r : rows) {
      const wersa::MeanSd s = wersa::mean_sd(r.ts);
      std::string test = r.depth > 0 ? r.test + " @ d" + std::to_string(r.depth) : r.test;
      if (r.streams > 0) test += " x" + std::to_string(r.streams);
      std::printf("| %s | %s | %s | %.2f M | %d | %s | %.2f ± %.2f |\n", r.model.c_str(), r.attention.c_str(),
                  r.weights.c_str(), double(r.params) / 1e6, nthreads, test.c_str(), s.mean, s.sd);
      jrows.push_back({{"model", r.model},
                       {"attention", r.attention},
                       {"weights", r.weights},
                       {"params", r.params},
                       {"threads", nthreads},
                       {"test", r.test},
                       {"n_tokens", r.n},
                       {"depth", r.depth},
                       {"samples_ts", r.ts},
                       {"avg_ts", s.mean},
                       {"stddev_ts", s.sd},
                       {"streams", r.streams}});
      if (!r.ops.empty()) {
        nlohmann::json jo = nlohmann::json::array();
        for (const auto& [op, ms] : r.ops) jo.push_back({{"op", op}, {"ms_per_token", ms}});
        jrows.back()["ops_run_ms_per_token"] = r.ops_run_ms;
        jrows.back()["ops_sum_ms_per_token"] = r.ops_sum_ms;
        jrows.back()["ops"] = jo;
      }
    }
    // Bandwidth bound and depth ratios of decoding.
    std::printf("\n");
    if (dev == wersa::Device::CPU) {
      std::printf("BLAS kernels: %s; decode GEMV: own kernels (gemv.h)\n", wersa::blas_kernel_name().c_str());
      if (bw > 0)
        std::printf("memory bandwidth: %.2f GB/s (streaming read of %lld MiB, %d cores, best of 5)\n", bw,
                    static_cast<long long>(bw_mib), cores);
    } else if (bw > 0) {
      std::printf(
          "device: %s; memory bandwidth: %.2f GB/s (device-to-device copy of %lld MiB, read + write, "
          "best of 5)\n",
          device_s.c_str(), bw, static_cast<long long>(bw_mib));
    }
    for (size_t mi = 0; mi < specs.size(); ++mi) {
      const nlohmann::json& jm = jmodels[mi];
      const double bound = jm["bandwidth_bound_tokens_per_s"].get<double>();
      const std::string name = jm["model"].get<std::string>(), attn = jm["attention"].get<std::string>();
      const std::string wf = jm["weights"].get<std::string>();
      for (int64_t n : tgs) {
        if (n == 0) continue;
        double at0 = 0;
        for (const Row& r : rows) {
          if (r.model != name || r.attention != attn || r.weights != wf ||
              r.test != "tg" + std::to_string(n) || r.streams > 0)
            continue;
          const double ts = wersa::mean_sd(r.ts).mean;
          if (r.depth == depths.front()) at0 = ts;
          if (bw > 0)
            std::printf(
                "%s (%s, %s) tg%lld @ d%lld: %.1f t/s = %.1f%% of the bandwidth bound %.1f t/s (%s/token)",
                name.c_str(), attn.c_str(), wf.c_str(), static_cast<long long>(n),
                static_cast<long long>(r.depth), ts, 100.0 * ts / bound, bound,
                wersa::format_bytes(jm["weight_bytes_per_token"].get<size_t>()).c_str());
          else
            std::printf("%s (%s, %s) tg%lld @ d%lld: %.1f t/s", name.c_str(), attn.c_str(), wf.c_str(),
                        static_cast<long long>(n), static_cast<long long>(r.depth), ts);
          if (r.depth != depths.front() && at0 > 0)
            std::printf(", %.1f%% of d%lld", 100.0 * ts / at0, static_cast<long long>(depths.front()));
          std::printf("\n");
        }
      }
    }
    // --ops: the time per token beside the sum of its ops (what no op accounts for is the model's
    // glue between them).
    for (const Row& r : rows) {
      if (r.ops.empty()) continue;
      std::printf(
          "%s (%s, %s) %s @ d%lld, ops timed: %.3f ms/token, ops %.3f ms/token (%.1f%%):", r.model.c_str(),
          r.attention.c_str(), r.weights.c_str(), r.test.c_str(), static_cast<long long>(r.depth),
          r.ops_run_ms, r.ops_sum_ms, 100.0 * r.ops_sum_ms / r.ops_run_ms);
      for (const auto& [op, ms] : r.ops) std::printf(" %s %.3f", op.c_str(), ms);
      std::printf("\n");
    }
    // --streams: each batch against one stream of the same run (the x1 row, else the plain tg row).
    for (const Row& r : rows) {
      if (r.streams == 0) continue;
      double one = 0;
      for (const Row& f : rows)
        if (f.model == r.model && f.attention == r.attention && f.weights == r.weights && f.test == r.test &&
            f.depth == r.depth && (f.streams == 1 || (f.streams == 0 && one == 0)))
          one = wersa::mean_sd(f.ts).mean;
      const double agg = wersa::mean_sd(r.ts).mean, per = agg / double(r.streams);
      std::printf(
          "%s (%s, %s) %s @ d%lld, %lld streams: %.3f ms per step, %.1f t/s aggregate = %.2fx one stream, "
          "%.1f t/s per stream = %.0f%% of one stream (%.1f t/s)\n",
          r.model.c_str(), r.attention.c_str(), r.weights.c_str(), r.test.c_str(),
          static_cast<long long>(r.depth), static_cast<long long>(r.streams),
          1000.0 * double(r.streams) / agg, agg, agg / one, per, 100.0 * per / one, one);
    }
    // Same run, same model: bf16 weights against f32, test by test.
    for (const Row& r : rows) {
      if (r.weights != "bf16") continue;
      for (const Row& f : rows)
        if (f.weights == "f32" && f.model == r.model && f.attention == r.attention && f.test == r.test &&
            f.depth == r.depth && f.streams == r.streams && r.streams == 0)
          std::printf("%s (%s) %s @ d%lld: bf16 %.1f t/s = %.2fx f32 %.1f t/s\n", r.model.c_str(),
                      r.attention.c_str(), r.test.c_str(), static_cast<long long>(r.depth),
                      wersa::mean_sd(r.ts).mean, wersa::mean_sd(r.ts).mean / wersa::mean_sd(f.ts).mean,
                      wersa::mean_sd(f.ts).mean);
    }
    if (!json_path.empty()) {
      const nlohmann::json j{{"threads", nthreads},
                             {"device", device_s},
                             {"blas_kernels", wersa::blas_kernel_name()},
                             {"bandwidth_cores", cores},
                             {"memory_bandwidth_gbs", bw},
                             {"bandwidth_buffer_mib", bw_mib},
                             {"models", jmodels},
                             {"results", jrows}};
      std::ofstream f(json_path);
      WERSA_CHECK(f.good(), json_path, ": cannot open for writing");
      f << j.dump(2) << "\n";
      WERSA_CHECK(f.good(), json_path, ": write failed");
    }
    return 0;
  });
}

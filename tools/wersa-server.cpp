// wersa-server: an OpenAI-compatible HTTP server (cpp-httplib) over one checkpoint, with
// continuous batching of --parallel sequences and a session cache of constant-size WERSA states
// (docs/server.md). Prints "listening on http://HOST:PORT" as its first line on stdout once it
// accepts connections (--port 0: a free port); SIGINT or SIGTERM stops it: no new requests,
// queued ones cancelled (503), running ones finished, exit 0.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <thread>

#include "server/routes.h"
#include "wersa/backend/backend.h"
#include "wersa/common/cli.h"
#include "wersa/io/checkpoint.h"
#include "wersa/tensor/arena.h"

namespace {

struct Flags {
  std::string model_dir, host = "127.0.0.1", api_key, weights = "f32", name, sessions_dir, device = "cpu";
  int port = 8080, threads = 0;
  int64_t parallel = 4, queue = 64, ctx = 0, batch = 128, cache_mib = 256, max_tokens = 512,
          max_prompt = 8192;
  int64_t max_body = int64_t(1) << 20;
  double timeout = 600;
};

}  // namespace

int main(int argc, char** argv) {
  wersa::prepare_cpu_runtime(argv);
  return wersa::run_cli([&] {
    using namespace wersa::cli;
    Flags f;
    CLI::App app{
        "wersa-server: an OpenAI-compatible HTTP server (POST /v1/completions, GET /v1/models, "
        "/health, /metrics, POST /tokenize, /detokenize) with continuous batching and a session cache",
        "wersa-server"};
    app.add_option("-m,--model", f.model_dir,
                   "checkpoint directory (RUN/step-NNNNNN) or a run directory (its newest)")
        ->required()
        ->check(existing_dir());
    app.add_option("--host", f.host, "address to listen on")->check(non_empty())->capture_default_str();
    app.add_option("--port", f.port, "port (0 = a free one; the first stdout line says which)")
        ->check(integer(0, 65535))
        ->capture_default_str();
    app.add_option("--parallel", f.parallel, "sequences decoded together (slots)")
        ->check(integer(1, 256))
        ->capture_default_str();
    app.add_option("--queue", f.queue, "requests that may wait for a slot (more: 503)")
        ->check(integer(0, 1 << 16))
        ->capture_default_str();
    app.add_option("--api-key", f.api_key, "require Authorization: Bearer KEY (all but /health)");
    app.add_option("--weights", f.weights, "f32, or bf16: linear-layer weights rounded once to bf16 at load")
        ->check(one_of({"f32", "bf16"}))
        ->capture_default_str();
    app.add_option("--device", f.device,
                   "where the model and the sequences' states live: cpu or cuda (each step reads the logits "
                   "back once)")
        ->check(one_of({"cpu", "cuda"}))
        ->capture_default_str();
    app.add_option("-t,--threads", f.threads, "CPU threads (0 = all cores)")
        ->check(integer(0, 1 << 16))
        ->capture_default_str();
    app.add_option(
           "-c,--ctx-size", f.ctx,
           "tokens a sequence may hold (0: unlimited for WERSA; the training seq_len for softmax models)")
        ->check(integer(0, int64_t(1) << 40))
        ->capture_default_str();
    app.add_option("-b,--batch-size", f.batch, "prompt tokens per prefill chunk (between decode steps)")
        ->check(integer(1, 1 << 16))
        ->capture_default_str();
    app.add_option("--cache-mib", f.cache_mib, "MiB of kept session states (0 = no session cache)")
        ->check(integer(0, int64_t(1) << 30))
        ->capture_default_str();
    app.add_option("--sessions-dir", f.sessions_dir,
                   "keep sessions across restarts: read this directory's session files at start, write the "
                   "kept sessions there at shutdown (state files, as wersa-generate --save-state)");
    app.add_option("--max-tokens", f.max_tokens, "ceiling of a request's max_tokens")
        ->check(integer(1, int64_t(1) << 30))
        ->capture_default_str();
    app.add_option("--max-prompt", f.max_prompt, "most prompt tokens of a request")
        ->check(integer(1, int64_t(1) << 30))
        ->capture_default_str();
    app.add_option("--max-body", f.max_body, "most bytes of a request body (more: 413)")
        ->check(integer(64, int64_t(1) << 32))
        ->capture_default_str();
    app.add_option("--timeout", f.timeout,
                   "seconds a request may take from arrival (then it ends, finish_reason \"timeout\"); also "
                   "the socket read and write timeout")
        ->check(number(0, 1e7, true))
        ->capture_default_str();
    app.add_option("--alias", f.name,
                   "the model's name in /v1/models and responses (default: the directory's)");
    std::string help;
    if (wersa::parse_flags(app, argc, argv, &help)) {
      std::fputs(help.c_str(), stdout);
      return 0;
    }

    // SIGINT and SIGTERM go to one thread that waits for them (blocked everywhere else: every
    // thread started below inherits the mask).
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    std::string dir = f.model_dir;
    if (!wersa::io::find_latest_checkpoint(f.model_dir).empty())
      dir = wersa::io::find_latest_checkpoint(f.model_dir);
    const int nthreads = wersa::set_cpu_threads(f.threads);
    const wersa::Config cfg = wersa::io::load_checkpoint_config(dir);
    auto tok = wersa::data::load_tokenizer(wersa::io::checkpoint_tokenizer(dir));
    WERSA_CHECK(tok->vocab_size() <= cfg.model.vocab_size, dir, ": the tokenizer has ", tok->vocab_size(),
                " ids but the model only ", cfg.model.vocab_size);
    const std::unique_ptr<wersa::Model> model =
        wersa::io::load_inference_model(dir, cfg, f.weights, f.device);
    int64_t ctx = f.ctx;
    if (model->generation_needs_context() && ctx == 0) ctx = cfg.train.seq_len;

    wersa::server::SchedulerOptions so;
    so.parallel = f.parallel;
    so.queue = f.queue;
    so.context = ctx;
    so.prefill_chunk = f.batch;
    so.cache_bytes = size_t(f.cache_mib) << 20;
    so.threads = nthreads;
    so.sessions_dir = f.sessions_dir;
    wersa::server::Scheduler scheduler(*model, *tok, so);

    wersa::server::ServerContext sc;
    std::string name = f.name;
    if (name.empty()) {
      std::filesystem::path p = std::filesystem::path(f.model_dir).lexically_normal();
      if (p.filename().empty()) p = p.parent_path();
      name = p.filename().string();
    }
    sc.model_name = name;
    sc.tok = tok.get();
    sc.scheduler = &scheduler;
    sc.limits = {f.max_tokens, f.max_prompt, tok->vocab_size()};
    sc.context = ctx;
    sc.api_key = f.api_key;
    sc.timeout_s = f.timeout;
    sc.created = int64_t(std::time(nullptr));
    sc.max_body = size_t(f.max_body);

    httplib::Server http;
    const size_t workers = size_t(f.parallel + f.queue + 8);
    http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
    http.set_payload_max_length(size_t(f.max_body));
    const auto io_timeout = std::chrono::milliseconds(int64_t(f.timeout * 1000));
    http.set_read_timeout(io_timeout);
    http.set_write_timeout(io_timeout);
    wersa::server::add_routes(http, sc);
    int port = f.port;
    if (port == 0)
      port = http.bind_to_any_port(f.host);
    else if (!http.bind_to_port(f.host, port))
      port = -1;
    if (port <= 0)
      throw wersa::Error("cannot listen on " + f.host + ":" + std::to_string(f.port) +
                         " (address in use, or not an address of this machine)");

    std::thread waiter([&] {
      int sig = 0;
      sigwait(&sigs, &sig);
      if (sig == SIGUSR1) return;  // not used: the mask holds INT and TERM only
      std::fprintf(stderr, "wersa-server: %s: finishing the running requests, then exiting\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
      scheduler.stop(false);
      http.stop();
    });
    if (!f.sessions_dir.empty())
      std::fprintf(stderr, "wersa-server: %lld sessions restored from %s (%lld files skipped)\n",
                   static_cast<long long>(scheduler.sessions_loaded()), f.sessions_dir.c_str(),
                   static_cast<long long>(scheduler.sessions_skipped()));
    std::fprintf(stdout, "listening on http://%s:%d\n", f.host.c_str(), port);
    std::fflush(stdout);
    std::fprintf(
        stderr,
        "wersa-server: %s (%s attention, %.2f M params, %s weights, on %s), %lld slots, context %s, state "
        "%s per sequence, session cache %lld MiB, %d threads\n",
        dir.c_str(), wersa::attention_kind_name(cfg.model.attention.type), double(model->num_params()) / 1e6,
        f.weights.c_str(), f.device.c_str(), static_cast<long long>(f.parallel),
        ctx > 0 ? std::to_string(ctx).c_str() : "unlimited",
        wersa::format_bytes(scheduler.state_bytes()).c_str(), static_cast<long long>(f.cache_mib), nthreads);
    const bool ok = http.listen_after_bind();
    if (!ok) {  // the listener failed on its own: wake the waiter
      pthread_kill(waiter.native_handle(), SIGTERM);
    }
    waiter.join();
    scheduler.stop(false);
    std::fprintf(stderr, "wersa-server: stopped\n");
    return ok ? 0 : 1;
  });
}

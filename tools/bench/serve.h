// `wersa-bench serve`: a load benchmark of wersa-server over loopback. It targets a running server
// (--url) or starts one (-m CHECKPOINT: the wersa-server beside this binary, on a free port,
// stopped with SIGTERM at the end), then runs --clients concurrent streaming clients, each sending
// --requests completions of --tokens tokens (ignore_eos: every request runs to its length), and
// reports time to first token, each stream's and the aggregate tokens/s, p50/p99 inter-token
// latency (between the server-sent events that carry text) and the state bytes per kept session
// (from /metrics). --context N,...: instead, the bytes of one kept session that has read N tokens.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace wersa::bench {

struct ServeFlags {
  std::string url, model, json_path, context;
  std::vector<std::string> server_args;  // more flags of the started server
  int clients = 8, requests = 1, threads = 0, warmup = 1;
  int64_t tokens = 128, prompt = 32, parallel = 0;
  double temperature = 0;
};

CLI::App* add_serve_command(CLI::App& app, ServeFlags& f);
int run_serve(const ServeFlags& f);

}  // namespace wersa::bench

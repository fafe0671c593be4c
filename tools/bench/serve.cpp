// `wersa-bench serve` (serve.h): concurrent streaming clients against wersa-server over loopback.
#include "serve.h"

#include <fcntl.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "wersa/common/cli.h"
#include "wersa/common/error.h"

extern char** environ;

namespace wersa::bench {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Nearest-rank percentile (p in [0, 1]) of v; 0 when empty.
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t k = size_t(std::ceil(p * double(v.size())));
  return v[std::min(v.size(), std::max<size_t>(k, 1)) - 1];
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

// A wersa-server started by the benchmark: the one beside this binary, on a free port.
struct Spawned {
  pid_t pid = -1;
  int port = 0, out = -1;
  ~Spawned() { stop(); }
  void stop() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
    if (out >= 0) ::close(out), out = -1;
  }
};

void spawn_server(Spawned& s, const std::vector<std::string>& args) {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  WERSA_CHECK(!ec, "/proc/self/exe: cannot read: ", ec.message());
  const std::string path = (exe.parent_path() / "wersa-server").string();
  WERSA_CHECK(std::filesystem::exists(path), path, ": not found (build wersa-server, or give --url)");
  int fds[2];
  WERSA_CHECK(::pipe(fds) == 0, "pipe: ", std::strerror(errno));
  std::vector<std::string> all = {path};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  const int rc = posix_spawn(&s.pid, path.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  s.out = fds[0];
  if (rc != 0) s.pid = -1;
  WERSA_CHECK(rc == 0, path, ": cannot start it: ", std::strerror(rc));
  std::string got;
  const auto until = Clock::now() + std::chrono::seconds(300);
  while (got.find('\n') == std::string::npos) {
    pollfd p{s.out, POLLIN, 0};
    const int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count());
    WERSA_CHECK(left > 0 && ::poll(&p, 1, left) > 0, "wersa-server did not start within 300 s");
    char buf[256];
    const ssize_t n = ::read(s.out, buf, sizeof buf);
    WERSA_CHECK(n > 0, "wersa-server exited before listening (its error is above)");
    got.append(buf, size_t(n));
  }
  const size_t at = got.rfind(':');
  WERSA_CHECK(got.rfind("listening on http://", 0) == 0 && at != std::string::npos,
              "wersa-server's first line is not 'listening on http://HOST:PORT': ", got);
  s.port = std::atoi(got.c_str() + at + 1);
}

struct Target {
  std::string host;
  int port = 0;
  httplib::Client client() const {
    httplib::Client c(host, port);
    c.set_read_timeout(3600, 0);
    c.set_write_timeout(600, 0);
    return c;
  }
};

Target parse_url(const std::string& url) {
  const std::string pre = "http://";
  WERSA_CHECK(url.rfind(pre, 0) == 0, "--url ", url, ": expected http://HOST:PORT");
  std::string rest = url.substr(pre.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  WERSA_CHECK(colon != std::string::npos && colon + 1 < rest.size(), "--url ", url,
              ": expected http://HOST:PORT");
  return {rest.substr(0, colon), std::atoi(rest.c_str() + colon + 1)};
}

std::map<std::string, double> metrics(const Target& t) {
  auto res = t.client().Get("/metrics");
  WERSA_CHECK(res && res->status == 200, "GET /metrics: no answer");
  std::map<std::string, double> m;
  std::istringstream in(res->body);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') {
      const size_t sp = line.rfind(' ');
      if (sp != std::string::npos) m[line.substr(0, sp)] = std::atof(line.c_str() + sp + 1);
    }
  return m;
}

json post(const Target& t, const std::string& path, const json& body) {
  auto res = t.client().Post(path, body.dump(), "application/json");
  WERSA_CHECK(res, "POST ", path, ": no answer (", httplib::to_string(res.error()), ")");
  WERSA_CHECK(res->status == 200, "POST ", path, ": HTTP ", res->status, ": ", res->body);
  return json::parse(res->body);
}

// n prompt token ids that begin with `prefix` (so that no two prompts share a kept session).
std::vector<int32_t> make_prompt(const Target& t, const std::string& prefix, int64_t n) {
  static const std::string text =
      "The harbour was quiet before the storm, and the fishermen pulled their boats high on the "
      "shingle while the gulls wheeled and cried over the grey water. ";
  std::string s = prefix;
  for (;;) {
    while (int64_t(s.size()) < 2 * n + 64) s += text;
    std::vector<int32_t> ids = post(t, "/tokenize", {{"content", s}})["tokens"].get<std::vector<int32_t>>();
    if (int64_t(ids.size()) >= n) return std::vector<int32_t>(ids.begin(), ids.begin() + n);
    s += s;
  }
}

struct Stream {
  double ttft = 0, start = 0, first = 0, last = 0;  // seconds from the run's start
  std::vector<double> gaps;                         // between events that carry text
  int64_t tokens = 0;                               // usage.completion_tokens
  std::string error;
};

// One streamed completion; times relative to t0.
Stream run_stream(const Target& t, const json& body, Clock::time_point t0) {
  Stream s;
  const auto sent = Clock::now();
  s.start = seconds(t0, sent);
  std::string buf;
  bool seen = false;
  Clock::time_point prev;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buf.append(data, n);
    for (size_t end; (end = buf.find("\n\n")) != std::string::npos; buf.erase(0, end + 2)) {
      if (buf.rfind("data: ", 0) != 0) continue;
      const std::string d = buf.substr(6, end - 6);
      if (d == "[DONE]") continue;
      const json e = json::parse(d, nullptr, false);
      if (e.is_discarded() || e.contains("error")) {
        s.error = d;
        continue;
      }
      if (e.contains("usage")) s.tokens = e["usage"]["completion_tokens"].get<int64_t>();
      if (e["choices"][0]["text"].get<std::string>().empty()) continue;
      const auto now = Clock::now();
      if (!seen) {
        s.ttft = seconds(sent, now);
        s.first = seconds(t0, now);
        seen = true;
      } else {
        s.gaps.push_back(seconds(prev, now));
      }
      prev = now;
      s.last = seconds(t0, now);
    }
    return true;
  };
  auto res = t.client().send(req);
  if (!res)
    s.error = "no answer: " + httplib::to_string(res.error());
  else if (res->status != 200)
    s.error = "HTTP " + std::to_string(res->status);
  return s;
}

json run_load(const Target& t, const ServeFlags& f) {
  std::vector<std::vector<json>> bodies(size_t(f.clients));
  for (int c = 0; c < f.clients; ++c)
    for (int r = 0; r < f.requests; ++r)
      bodies[size_t(c)].push_back(
          {{"prompt", make_prompt(t, std::to_string(c) + "." + std::to_string(r) + ": ", f.prompt)},
           {"max_tokens", f.tokens},
           {"temperature", f.temperature},
           {"seed", c * 1000 + r},
           {"ignore_eos", true},
           {"stream", true}});
  // Unmeasured requests first: the server's first prefill and decode step plan their workspaces.
  for (int w = 0; w < f.warmup; ++w)
    post(t, "/v1/completions",
         {{"prompt", make_prompt(t, "warmup " + std::to_string(w) + ": ", f.prompt)}, {"max_tokens", 8}});
  const auto m0 = metrics(t);
  std::vector<std::vector<Stream>> got(size_t(f.clients));
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < f.clients; ++c)
    threads.emplace_back([&, c] {
      for (const json& b : bodies[size_t(c)]) got[size_t(c)].push_back(run_stream(t, b, t0));
    });
  for (auto& th : threads) th.join();
  const double wall = seconds(t0, Clock::now());
  const auto m1 = metrics(t);
  std::vector<double> ttft, gaps, rate;
  int64_t tokens = 0, errors = 0;
  json first_error;
  for (const auto& streams : got)
    for (const Stream& s : streams) {
      if (!s.error.empty()) {
        if (errors++ == 0) first_error = s.error;
        continue;
      }
      tokens += s.tokens;
      ttft.push_back(s.ttft * 1e3);
      for (double g : s.gaps) gaps.push_back(g * 1e3);
      if (s.last > s.first && s.tokens > 1) rate.push_back(double(s.tokens - 1) / (s.last - s.first));
    }
  auto d = [&](const char* k) { return (m1.count(k) ? m1.at(k) : 0) - (m0.count(k) ? m0.at(k) : 0); };
  const double sessions = m1.count("wersa_sessions_cached") ? m1.at("wersa_sessions_cached") : 0;
  json j = {
      {"clients", f.clients},
      {"requests", int64_t(f.clients) * f.requests},
      {"prompt_tokens", f.prompt},
      {"tokens_requested", int64_t(f.clients) * f.requests * f.tokens},
      {"tokens_received", tokens},
      {"errors", errors},
      {"wall_s", wall},
      {"aggregate_tokens_per_s", wall > 0 ? double(tokens) / wall : 0.0},
      {"stream_tokens_per_s",
       {{"mean", mean(rate)},
        {"min", rate.empty() ? 0 : *std::min_element(rate.begin(), rate.end())},
        {"max", rate.empty() ? 0 : *std::max_element(rate.begin(), rate.end())}}},
      {"ttft_ms", {{"mean", mean(ttft)}, {"p50", percentile(ttft, 0.5)}, {"p99", percentile(ttft, 0.99)}}},
      {"itl_ms", {{"mean", mean(gaps)}, {"p50", percentile(gaps, 0.5)}, {"p99", percentile(gaps, 0.99)}}},
      {"server",
       {{"completion_tokens", d("wersa_completion_tokens_total")},
        {"decode_steps", d("wersa_decode_steps_total")},
        {"rows_per_step", d("wersa_decode_steps_total") > 0
                              ? d("wersa_decode_rows_total") / d("wersa_decode_steps_total")
                              : 0.0},
        {"sessions_cached", sessions},
        {"session_bytes_mean", sessions > 0 ? m1.at("wersa_session_cache_bytes") / sessions : 0.0}}}};
  if (errors) j["first_error"] = first_error;
  return j;
}

// The bytes of one kept session per context length: a request of that many prompt tokens and one
// generated token, then the growth of the cache's bytes.
json run_memory(const Target& t, const std::vector<int64_t>& lengths) {
  json out = json::array();
  for (int64_t n : lengths) {
    const std::vector<int32_t> prompt = make_prompt(t, "memory " + std::to_string(n) + ": ", n);
    const auto m0 = metrics(t);
    const auto start = Clock::now();
    const json r = post(t, "/v1/completions",
                        {{"prompt", prompt}, {"max_tokens", 1}, {"temperature", 0}, {"ignore_eos", true}});
    WERSA_CHECK(r["choices"][0]["finish_reason"] == "length" && r["usage"]["completion_tokens"] == 1,
                "the request of ", n, " prompt tokens ended with ", r["choices"][0]["finish_reason"].dump(),
                " (the server's --timeout?): its session is not of ", n + 1, " tokens");
    const double s = seconds(start, Clock::now());
    const auto m1 = metrics(t);
    const double sessions = m1.at("wersa_sessions_cached") - m0.at("wersa_sessions_cached");
    WERSA_CHECK(sessions == 1, "the session of ", n, " tokens was not kept (raise the server's --cache-mib)");
    out.push_back({{"context", n + 1},
                   {"session_bytes", m1.at("wersa_session_cache_bytes") - m0.at("wersa_session_cache_bytes")},
                   {"request_s", s}});
  }
  return out;
}

std::vector<int64_t> parse_lengths(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    char* end = nullptr;
    const long long x = std::strtoll(item.c_str(), &end, 10);
    WERSA_CHECK(!item.empty() && *end == '\0' && x >= 1, "--context ", s, ": '", item,
                "' is not a count >= 1");
    v.push_back(x);
  }
  return v;
}

}  // namespace

CLI::App* add_serve_command(CLI::App& app, ServeFlags& f) {
  using namespace wersa::cli;
  CLI::App* c = app.add_subcommand(
      "serve",
      "load benchmark of wersa-server over loopback: concurrent streaming clients; time to first token, "
      "tokens/s per stream and in all, p50/p99 inter-token latency, state bytes per kept session");
  c->add_option("--url", f.url, "a running server, http://HOST:PORT");
  c->add_option("-m,--model", f.model, "start a wersa-server on this checkpoint (stopped at the end)")
      ->check(existing_dir());
  c->add_option("--clients", f.clients, "concurrent streaming clients")
      ->check(integer(1, 1024))
      ->capture_default_str();
  c->add_option("--requests", f.requests, "requests per client, one after another")
      ->check(integer(1, 1 << 20))
      ->capture_default_str();
  c->add_option("-n,--tokens", f.tokens, "tokens per request (ignore_eos: all of them)")
      ->check(integer(1, 1 << 20))
      ->capture_default_str();
  c->add_option("-p,--prompt", f.prompt, "prompt tokens per request")
      ->check(integer(1, 1 << 20))
      ->capture_default_str();
  c->add_option("--warmup", f.warmup, "unmeasured requests before the run (8 tokens each)")
      ->check(integer(0, 1000))
      ->capture_default_str();
  c->add_option("--temp", f.temperature, "sampling temperature (0 = greedy)")
      ->check(number(0, 2))
      ->capture_default_str();
  c->add_option("--parallel", f.parallel, "-m: the server's --parallel (0 = --clients)")
      ->check(integer(0, 256))
      ->capture_default_str();
  c->add_option("-t,--threads", f.threads, "-m: the server's threads (0 = all cores)")
      ->check(integer(0, 1 << 16))
      ->capture_default_str();
  c->add_option("--server-arg", f.server_args, "-m: one more flag for the server (repeatable)")
      ->allow_extra_args(false);
  c->add_option("--context", f.context,
                "instead of the load: state bytes of one kept session per prompt length, comma list (e.g. "
                "1024,32768)");
  c->add_option("--json", f.json_path, "also write the report as JSON to this file");
  return c;
}

int run_serve(const ServeFlags& f) {
  if (f.url.empty() == f.model.empty()) throw UsageError("serve: give one of --url and -m");
  const std::vector<int64_t> lengths = f.context.empty() ? std::vector<int64_t>() : parse_lengths(f.context);
  Spawned server;
  Target t;
  if (!f.model.empty()) {
    const int64_t longest = lengths.empty() ? f.prompt : *std::max_element(lengths.begin(), lengths.end());
    std::vector<std::string> args = {"-m",           f.model,
                                     "--port",       "0",
                                     "--parallel",   std::to_string(f.parallel > 0 ? f.parallel : f.clients),
                                     "-t",           std::to_string(f.threads),
                                     "--max-tokens", std::to_string(std::max<int64_t>(f.tokens, 512)),
                                     "--max-prompt", std::to_string(longest + 64),
                                     "--max-body",   std::to_string(int64_t(64) << 20),
                                     "--queue",      std::to_string(f.clients + 64),
                                     "--timeout",    "1000000"};
    if (!lengths.empty()) args.insert(args.end(), {"-c", std::to_string(longest + 64)});
    args.insert(args.end(), f.server_args.begin(), f.server_args.end());
    spawn_server(server, args);
    t = {"127.0.0.1", server.port};
  } else {
    t = parse_url(f.url);
  }
  json report;
  if (!lengths.empty()) {
    report = {{"memory", run_memory(t, lengths)}};
    std::printf("| context tokens | state bytes of the kept session | request s |\n| ---: | ---: | ---: |\n");
    for (const json& r : report["memory"])
      std::printf("| %lld | %.0f | %.2f |\n", static_cast<long long>(r["context"].get<int64_t>()),
                  r["session_bytes"].get<double>(), r["request_s"].get<double>());
  } else {
    report = run_load(t, f);
    const json& r = report;
    std::printf(
        "%d clients x %d requests, %lld prompt + %lld generated tokens each: %lld of %lld tokens received, "
        "%lld "
        "errors, %.2f s\n",
        f.clients, f.requests, static_cast<long long>(f.prompt), static_cast<long long>(f.tokens),
        static_cast<long long>(r["tokens_received"].get<int64_t>()),
        static_cast<long long>(r["tokens_requested"].get<int64_t>()),
        static_cast<long long>(r["errors"].get<int64_t>()), r["wall_s"].get<double>());
    std::printf("aggregate %.1f tokens/s; per stream %.1f tokens/s (min %.1f, max %.1f)\n",
                r["aggregate_tokens_per_s"].get<double>(), r["stream_tokens_per_s"]["mean"].get<double>(),
                r["stream_tokens_per_s"]["min"].get<double>(), r["stream_tokens_per_s"]["max"].get<double>());
    std::printf("time to first token ms: mean %.1f, p50 %.1f, p99 %.1f\n", r["ttft_ms"]["mean"].get<double>(),
                r["ttft_ms"]["p50"].get<double>(), r["ttft_ms"]["p99"].get<double>());
    std::printf("inter-token latency ms: mean %.2f, p50 %.2f, p99 %.2f\n", r["itl_ms"]["mean"].get<double>(),
                r["itl_ms"]["p50"].get<double>(), r["itl_ms"]["p99"].get<double>());
    std::printf("server: %.2f rows per decode step; %.0f sessions kept, %.0f state bytes each on average\n",
                r["server"]["rows_per_step"].get<double>(), r["server"]["sessions_cached"].get<double>(),
                r["server"]["session_bytes_mean"].get<double>());
    if (r.contains("first_error")) std::printf("first error: %s\n", r["first_error"].dump().c_str());
  }
  if (!f.json_path.empty()) {
    std::ofstream o(f.json_path);
    WERSA_CHECK(o, f.json_path, ": cannot write");
    o << report.dump(2) << "\n";
  }
  server.stop();
  return report.value("errors", int64_t(0)) == 0 ? 0 : 1;
}

}  // namespace wersa::bench

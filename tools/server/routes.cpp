// The HTTP side of wersa-server (routes.h): each completion becomes a Job for the scheduler; the
// handler's thread waits for it and answers whole, or streams its text as it grows.
#include "routes.h"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <sstream>

namespace wersa::server {

using nlohmann::json;

namespace {

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_body(e), "application/json");
}

void send_json(httplib::Response& res, const json& j) { res.set_content(dump(j), "application/json"); }

// Runs a handler body; an ApiError becomes its status and error object, anything else a 500.
template <class F>
void guarded(httplib::Response& res, F f) {
  try {
    f();
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const std::exception& e) {
    send_error(res, ApiError(500, std::string("internal error: ") + e.what(), "", "server_error"));
  }
}

std::shared_ptr<Job> make_job(ServerContext& ctx, const CompletionRequest& r, std::vector<int32_t> prompt) {
  auto job = std::make_shared<Job>();
  job->prompt = std::move(prompt);
  SamplerOptions& so = job->sampler;
  so.temp = r.temperature;
  so.top_k = r.top_k;
  so.top_p = r.top_p;
  so.min_p = 0;
  so.repeat_penalty = 1;
  so.repeat_last_n = 0;
  so.seed = r.has_seed ? r.seed : (uint64_t(std::time(nullptr)) << 20) ^ uint64_t(ctx.next_id.load());
  job->max_tokens = r.max_tokens;
  job->stop = r.stop;
  job->logprobs = r.logprobs;
  job->prompt_logprobs = r.logprobs >= 0 && r.echo;
  job->ignore_eos = r.ignore_eos;
  job->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(ctx.timeout_s * 1000));
  return job;
}

// The prompt's ids: a text prompt after EOS (as wersa-generate feeds a fresh prompt: training
// documents follow an EOS), token ids as given; checked against the limits and the context.
std::vector<int32_t> prompt_ids(const ServerContext& ctx, const CompletionRequest& r) {
  std::vector<int32_t> ids;
  if (r.prompt_is_text) {
    if (ctx.tok->eos_id() >= 0) ids.push_back(ctx.tok->eos_id());
    const std::vector<int32_t> enc = ctx.tok->encode(r.prompt_text);
    ids.insert(ids.end(), enc.begin(), enc.end());
    if (int64_t(ids.size()) > ctx.limits.max_prompt)
      throw ApiError(400,
                     "prompt: " + std::to_string(ids.size()) + " tokens, more than the server's limit of " +
                         std::to_string(ctx.limits.max_prompt) + " (--max-prompt)",
                     "prompt");
  } else {
    ids = r.prompt_ids;
  }
  if (ctx.context > 0 && int64_t(ids.size()) >= ctx.context)
    throw ApiError(400,
                   "prompt: " + std::to_string(ids.size()) + " tokens leave no room in the context of " +
                       std::to_string(ctx.context) + " tokens",
                   "prompt", "invalid_request_error", "context_length_exceeded");
  return ids;
}

// How many of a job's logprob entries belong to its first `upto` bytes of text: those whose text
// starts there (at the end, `done`, also a last token without text). Called under the job's lock.
size_t lp_count(const Job& j, size_t upto, bool done) {
  size_t n = 0;
  while (n < j.lp.size() &&
         (j.lp[n].offset < upto || (done && j.lp[n].token.empty() && j.lp[n].offset <= upto)))
    ++n;
  return n;
}

// Entries [from, to), each token's text cut where the text ends (a stop string), and their
// logprobs object. Called under the job's lock.
std::vector<LogprobEntry> lp_entries(const Job& j, size_t from, size_t to) {
  std::vector<LogprobEntry> e(j.lp.begin() + long(from), j.lp.begin() + long(to));
  for (LogprobEntry& x : e)
    x.token.resize(std::min(x.token.size(), j.text.size() - std::min(x.offset, j.text.size())));
  return e;
}
json lp_json(const Job& j, size_t from, size_t to) {
  const std::vector<LogprobEntry> e = lp_entries(j, from, to);
  return logprobs_json(e, 0, e.size());
}

// The socket of the connection a handler serves, or -1: cpp-httplib 0.11 does not give it to
// handlers, so it is found among the process's descriptors by its two ends (the request's
// remote and local address and port). The connection's thread holds it open until the handler
// returns, so the number stays valid meanwhile.
int connection_socket(const httplib::Request& req) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    char* end = nullptr;
    const std::string name = e.path().filename().string();
    const long fd = std::strtol(name.c_str(), &end, 10);
    if (end == name.c_str() || *end != '\0') continue;
    sockaddr_storage peer{}, self{};
    socklen_t pl = sizeof peer, sl = sizeof self;
    if (::getpeername(int(fd), reinterpret_cast<sockaddr*>(&peer), &pl) != 0 ||
        ::getsockname(int(fd), reinterpret_cast<sockaddr*>(&self), &sl) != 0)
      continue;
    auto ends = [](const sockaddr_storage& a, std::string& addr) {
      char buf[INET6_ADDRSTRLEN] = {};
      if (a.ss_family == AF_INET) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
        ::inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
        addr = buf;
        return int(ntohs(v4->sin_port));
      }
      if (a.ss_family == AF_INET6) {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
        ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
        addr = buf;
        return int(ntohs(v6->sin6_port));
      }
      return -1;
    };
    std::string peer_addr, self_addr;
    if (ends(peer, peer_addr) == req.remote_port && peer_addr == req.remote_addr &&
        ends(self, self_addr) == req.local_port && self_addr == req.local_addr)
      return int(fd);
  }
  return -1;
}

// Whether the client has gone away: the socket hung up or failed, or it reads end of file (a
// pipelined request's bytes are left unread: peeked only).
bool client_gone(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return true;
  char c;
  return (p.revents & POLLIN) && ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

Usage usage_of(const Job& j) { return Usage{int64_t(j.prompt.size()), j.generated, j.cached}; }

void complete(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const CompletionRequest r = parse_completion(req.body, ctx.limits);
  auto job = make_job(ctx, r, prompt_ids(ctx, r));
  if (!ctx.scheduler->submit(job))
    throw ApiError(503, "the server is busy: the queue is full or the server is shutting down; retry later",
                   "", "server_error", "queue_full");
  const std::string id = "cmpl-" + std::to_string(ctx.next_id++);
  const int64_t created = int64_t(std::time(nullptr));
  const std::string echo = r.echo ? r.prompt_text : std::string();
  if (!r.stream) {
    // While it runs, the connection is watched: a client that went away cancels it (its slot is
    // freed at the next token).
    const int fd = connection_socket(req);
    std::unique_lock<std::mutex> lk(job->mu);
    while (!job->cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return job->done; }))
      if (fd >= 0 && !job->cancelled && client_gone(fd)) job->cancelled = true;
    if (job->finish_reason == "error")
      throw ApiError(500, "generation failed: " + job->error, "", "server_error");
    if (job->finish_reason == "cancelled")
      throw ApiError(503, "the server is shutting down: request cancelled", "", "server_error",
                     "shutting_down");
    const Usage u = usage_of(*job);
    json lp;
    if (r.logprobs >= 0) {  // with echo, the prompt's entries first, then the generated ones after it
      std::vector<LogprobEntry> all = job->prompt_lp;
      for (LogprobEntry& e : lp_entries(*job, 0, lp_count(*job, job->text.size(), true))) {
        e.offset += echo.size();
        all.push_back(std::move(e));
      }
      lp = logprobs_json(all, 0, all.size());
    }
    send_json(res,
              completion_json(id, created, ctx.model_name, echo + job->text, job->finish_reason, &u,
                              r.return_tokens ? &job->tokens : nullptr, r.logprobs >= 0 ? &lp : nullptr));
    return;
  }
  auto sent = std::make_shared<size_t>(0);
  auto first = std::make_shared<bool>(true);
  auto lp_sent = std::make_shared<size_t>(0);  // logprob entries sent
  const bool logprobs = r.logprobs >= 0;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [&ctx, job, sent, first, lp_sent, logprobs, id, created, echo](size_t, httplib::DataSink& sink) {
        auto event = [&](const json& j) {
          const std::string s = "data: " + dump(j) + "\n\n";
          return sink.write(s.data(), s.size());
        };
        std::string piece, reason, error;
        json lp;
        bool done;
        {
          std::unique_lock<std::mutex> lk(job->mu);
          job->cv.wait_for(lk, std::chrono::milliseconds(200),
                           [&] { return job->done || job->stable > *sent; });
          if (job->stable > *sent) piece = job->text.substr(*sent, job->stable - *sent);
          *sent = std::max(*sent, job->stable);
          done = job->done;
          reason = job->finish_reason;
          error = job->error;
          if (logprobs && !piece.empty()) {
            const size_t to = lp_count(*job, *sent, done);
            lp = lp_json(*job, *lp_sent, to);
            *lp_sent = to;
          }
        }
        if (*first && !echo.empty()) piece = echo + piece;
        if (!piece.empty() || (*first && done)) {
          *first = false;
          if (!event(completion_json(id, created, ctx.model_name, piece, "", nullptr, nullptr,
                                     lp.is_null() ? nullptr : &lp))) {
            job->cancelled = true;  // the client went away: free its slot
            return false;
          }
        }
        if (!done) {
          if (!sink.is_writable()) {
            job->cancelled = true;
            return false;
          }
          return true;
        }
        if (reason == "error" || reason == "cancelled") {
          const ApiError e(reason == "error" ? 500 : 503,
                           reason == "error" ? "generation failed: " + error : "request cancelled: " + error,
                           "", "server_error");
          const std::string s = "data: " + error_body(e) + "\n\n";
          sink.write(s.data(), s.size());
        } else {
          Usage u;
          json rest;  // entries of tokens without text at the end
          {
            std::lock_guard<std::mutex> lk(job->mu);
            u = usage_of(*job);
            const size_t to = lp_count(*job, job->text.size(), true);
            if (logprobs && to > *lp_sent) rest = lp_json(*job, *lp_sent, to);
          }
          event(completion_json(id, created, ctx.model_name, "", reason, &u, nullptr,
                                rest.is_null() ? nullptr : &rest));
        }
        const std::string end = "data: [DONE]\n\n";
        sink.write(end.data(), end.size());
        sink.done();
        return true;
      },
      [job](bool success) {
        if (!success) job->cancelled = true;
      });
}

std::string metrics_text(ServerContext& ctx) {
  const SchedulerStats s = ctx.scheduler->stats();
  std::ostringstream o;
  o << std::setprecision(15);
  auto metric = [&](const char* name, const char* type, const char* help, double v) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
      << name << " " << v << "\n";
  };
  metric("wersa_requests_total", "counter", "completion requests accepted into the queue",
         double(s.requests));
  metric("wersa_prompt_tokens_total", "counter", "prompt tokens of admitted requests",
         double(s.prompt_tokens));
  metric("wersa_prompt_tokens_cached_total", "counter", "prompt tokens resumed from the session cache",
         double(s.cached_tokens));
  metric("wersa_completion_tokens_total", "counter", "tokens generated", double(s.completion_tokens));
  metric("wersa_decode_steps_total", "counter", "batched decode steps", double(s.decode_steps));
  metric("wersa_decode_rows_total", "counter", "sequence rows over all decode steps", double(s.decode_rows));
  metric("wersa_decode_seconds_total", "counter", "seconds in decode steps", s.decode_seconds);
  metric("wersa_prefill_seconds_total", "counter", "seconds in prompt prefill", s.prefill_seconds);
  metric("wersa_decode_tokens_per_second", "gauge", "generated tokens per second of decode time",
         s.decode_seconds > 0 ? double(s.decode_rows) / s.decode_seconds : 0.0);
  metric("wersa_queue_length", "gauge", "requests waiting for a slot", double(s.queued));
  metric("wersa_running", "gauge", "requests holding a slot", double(s.running));
  metric("wersa_sessions_cached", "gauge", "sequences kept in the session cache", double(s.cache_sessions));
  metric("wersa_session_cache_bytes", "gauge", "bytes of kept states", double(s.cache_bytes));
  metric("wersa_session_cache_limit_bytes", "gauge", "the cache's budget (--cache-mib)",
         double(s.cache_max_bytes));
  metric("wersa_session_cache_evictions_total", "counter", "sessions evicted (least recently used)",
         double(s.cache_evictions));
  metric("wersa_session_cache_hits_total", "counter", "requests that resumed a kept sequence",
         double(s.cache_hits));
  metric("wersa_state_bytes_running", "gauge", "bytes of the states of the running sequences",
         double(s.state_bytes_running));
  o << "# HELP wersa_http_responses_total HTTP responses by status\n# TYPE wersa_http_responses_total "
       "counter\n";
  std::lock_guard<std::mutex> lk(ctx.mu);
  for (const auto& [status, n] : ctx.responses)
    o << "wersa_http_responses_total{status=\"" << status << "\"} " << n << "\n";
  return o.str();
}

}  // namespace

void add_routes(httplib::Server& http, ServerContext& ctx) {
  using httplib::Server;
  http.set_pre_routing_handler([&ctx](const httplib::Request& req, httplib::Response& res) {
    if (ctx.api_key.empty() || req.path == "/health") return Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (auth == "Bearer " + ctx.api_key) return Server::HandlerResponse::Unhandled;
    send_error(res, ApiError(401,
                             auth.empty() ? "missing API key: send the header Authorization: Bearer KEY"
                                          : "invalid API key",
                             "", "invalid_request_error", "invalid_api_key"));
    return Server::HandlerResponse::Handled;
  });
  // Statuses httplib sets itself (404 no route, 413 body too big, 400 unreadable request) get an
  // error object too.
  http.set_error_handler([&ctx](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = "HTTP " + std::to_string(res.status);
    if (res.status == 404) msg = "no such endpoint: " + req.method + " " + req.path;
    if (res.status == 405) msg = "method not allowed: " + req.method + " " + req.path;
    if (res.status == 413)
      msg = "the request body is larger than the server's limit of " + std::to_string(ctx.max_body) +
            " bytes (--max-body)";
    send_error(res, ApiError(res.status, msg));
  });
  http.set_logger([&ctx](const httplib::Request&, const httplib::Response& res) {
    std::lock_guard<std::mutex> lk(ctx.mu);
    ++ctx.responses[res.status];
  });
  http.Post("/v1/completions", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] { complete(ctx, req, res); });
  });
  http.Get("/v1/models", [&ctx](const httplib::Request&, httplib::Response& res) {
    send_json(res, json{{"object", "list"},
                        {"data", json::array({json{{"id", ctx.model_name},
                                                   {"object", "model"},
                                                   {"created", ctx.created},
                                                   {"owned_by", "wersa"}}})}});
  });
  http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, json{{"status", "ok"}});
  });
  http.Get("/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(ctx), "text/plain; version=0.0.4");
  });
  http.Post("/tokenize", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      const TokenizeRequest r = parse_tokenize(req.body);
      std::vector<int32_t> ids;
      if (r.add_special && ctx.tok->eos_id() >= 0) ids.push_back(ctx.tok->eos_id());
      const std::vector<int32_t> enc = ctx.tok->encode(r.text);
      ids.insert(ids.end(), enc.begin(), enc.end());
      send_json(res, json{{"tokens", ids}});
    });
  });
  http.Post("/detokenize", [&ctx](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      std::string text;
      for (int32_t t : parse_detokenize(req.body, ctx.limits)) text += ctx.tok->piece_bytes(t);
      send_json(res, json{{"content", text}});
    });
  });
}

}  // namespace wersa::server

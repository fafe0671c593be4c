// wersa-server's endpoints on a cpp-httplib server: POST /v1/completions (whole or streamed as
// server-sent events), GET /v1/models, /health, /metrics (Prometheus text), POST /tokenize and
// /detokenize, the API key check, and OpenAI error objects for every error status (400, 401,
// 404, 413, 500, 503).
#pragma once
#include <httplib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "api.h"
#include "scheduler.h"

namespace wersa::server {

struct ServerContext {
  std::string model_name;
  const data::Tokenizer* tok = nullptr;
  Scheduler* scheduler = nullptr;
  Limits limits;
  size_t max_body = size_t(1) << 20;  // bytes of a request body (--max-body)
  int64_t context = 0;                // tokens a sequence may hold (0 = unlimited)
  std::string api_key;                // empty: none required
  double timeout_s = 600;
  int64_t created = 0;  // the server's start (the model's "created")
  std::atomic<int64_t> next_id{1};
  std::mutex mu;                     // responses
  std::map<int, int64_t> responses;  // by HTTP status
};

void add_routes(httplib::Server& http, ServerContext& ctx);

}  // namespace wersa::server

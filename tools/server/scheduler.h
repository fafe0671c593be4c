// wersa-server's scheduler: one thread owns the model and runs continuous batching over
// --parallel slots. Each slot holds one sequence's DecodeState. Between steps, queued requests
// join free slots (resuming from the session cache's longest prefix when there is one); each
// iteration prefills one chunk of one slot's prompt (round robin), then runs one decode step of
// every slot that is generating as one forward over their rows (DecodeBatch), so a long prompt
// never stalls the others for more than a chunk. A request leaves its slot at a token boundary
// when it ends (EOS, a stop string, max_tokens, a full context, its deadline, a cancel), and its
// state goes to the session cache. Sampling is per request (its own Sampler and seed, the draws
// indexed by position), so what else runs with a request changes its logits only by rounding
// (one row takes a GEMV, several a GEMM).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api.h"
#include "session_cache.h"
#include "wersa/data/tokenizer.h"
#include "wersa/model/decode_batch.h"
#include "wersa/model/sampler.h"

namespace wersa::server {

// One completion request, shared by the HTTP handler that waits for it and the scheduler.
struct Job {
  // Set before submit(), then read-only.
  std::vector<int32_t> prompt;
  SamplerOptions sampler;
  int64_t max_tokens = 16;
  std::vector<std::string> stop;
  std::chrono::steady_clock::time_point deadline;
  bool ignore_eos = false;  // EOS is a token like the others: the request runs to max_tokens
  int logprobs = -1;        // >= 0: record each generated token's log-probability and this many alternatives
  // With logprobs: also score the prompt (echo): every prompt token but a leading EOS gets its
  // log-probability given the tokens before it, in prompt_lp (offsets into the prompt's pieces).
  // Such a request is prefilled from the start (no session-cache reuse: the cache keeps no logits).
  bool prompt_logprobs = false;
  std::atomic<bool> cancelled{false};  // the client went away: the scheduler drops it

  // Written by the scheduler under mu; the handler waits on cv.
  std::mutex mu;
  std::condition_variable cv;
  std::string text;   // generated text (cut before a stop string)
  size_t stable = 0;  // bytes of text that can be sent: no stop string and no character can still change them
  std::vector<int32_t> tokens;          // the generated ids (EOS included)
  std::vector<LogprobEntry> lp;         // logprobs >= 0: one per generated token with text (not EOS)
  std::vector<LogprobEntry> prompt_lp;  // prompt_logprobs: one per scored prompt token
  int64_t generated = 0;                // tokens generated
  int64_t cached = 0;                   // prompt tokens resumed from the session cache
  bool started = false;                 // it holds a slot
  bool done = false;
  std::string finish_reason;  // "stop", "length"; "timeout", "cancelled", "error" (error: message)
  std::string error;
};

struct SchedulerOptions {
  int64_t parallel = 4;         // slots
  int64_t queue = 64;           // requests that may wait for a slot
  int64_t context = 0;          // DecodeOptions::context (softmax: the KV cache's rows)
  int64_t prefill_chunk = 128;  // prompt tokens per scheduler iteration
  size_t cache_bytes = size_t(256) << 20;
  // CPU threads of the scheduler thread (set_cpu_threads' count, as in the thread that built the
  // states: OpenMP's thread count is per thread, and the states' scratch was planned with it).
  int threads = 1;
  // Non-empty: kept sessions are read from this directory's session-*.state files (state files,
  // io/state_file.h) at start and written back there when the scheduler stops.
  std::string sessions_dir;
};

struct SchedulerStats {
  int64_t requests = 0, prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
  int64_t decode_steps = 0, decode_rows = 0;
  double decode_seconds = 0, prefill_seconds = 0;
  int64_t queued = 0, running = 0;
  size_t cache_bytes = 0, cache_max_bytes = 0, cache_sessions = 0, state_bytes_running = 0;
  int64_t cache_evictions = 0, cache_hits = 0;
};

class Scheduler {
 public:
  Scheduler(const Model& m, const data::Tokenizer& tok, const SchedulerOptions& opt);
  ~Scheduler();  // stop(true) and join
  // Queues a job; false when the queue is full or the scheduler is stopping.
  bool submit(const std::shared_ptr<Job>& job);
  // No more submissions; waiting jobs end as "cancelled"; running ones finish (cancel_running:
  // end them at the next token too). Returns once the thread has ended.
  void stop(bool cancel_running);
  SchedulerStats stats() const;
  // Bytes of one slot's state (what the session cache keeps per session, for WERSA).
  size_t state_bytes() const;
  // Sessions read from --sessions-dir at start, and files skipped (another model's, damaged).
  int64_t sessions_loaded() const { return sessions_loaded_; }
  int64_t sessions_skipped() const { return sessions_skipped_; }

 private:
  struct Slot;
  void loop();
  void admit(Slot& s, std::shared_ptr<Job> job);
  void finish(Slot& s, const std::string& reason, const std::string& error = "");
  void emit(Slot& s, int32_t token);
  void prefill_scored(Slot& s, const std::vector<int32_t>& chunk);
  void publish();
  void load_sessions();
  void save_sessions();

  const Model& model_;
  const data::Tokenizer& tok_;
  SchedulerOptions opt_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::unique_ptr<DecodeBatch> batch_;
  SessionCache cache_;
  size_t max_stop_ = 0;
  mutable std::mutex mu_;  // queue_, stopping_, stats_
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false, cancel_running_ = false;
  SchedulerStats stats_;
  size_t next_prefill_ = 0;
  int64_t sessions_loaded_ = 0, sessions_skipped_ = 0;
  bool saved_ = false;
  std::vector<std::string> loaded_files_;  // names of the session files read at start
  std::thread thread_;
};

}  // namespace wersa::server

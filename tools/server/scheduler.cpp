// The scheduler thread of wersa-server (scheduler.h): admission into slots, chunked prefill,
// batched decode steps, stop conditions, and the hand-over of finished states to the cache.
#include "scheduler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>

#include "api.h"
#include "wersa/backend/backend.h"
#include "wersa/common/error.h"
#include "wersa/common/timer.h"
#include "wersa/io/state_file.h"
#include "wersa/tensor/arena.h"

namespace wersa::server {

struct Scheduler::Slot {
  std::unique_ptr<DecodeState> st;
  std::shared_ptr<Job> job;      // null: free
  std::vector<int32_t> pending;  // prompt tokens still to prefill
  size_t pending_at = 0;         // next of them
  std::unique_ptr<Sampler> sampler;
  bool prefilling() const { return job && pending_at < pending.size(); }
};

Scheduler::Scheduler(const Model& m, const data::Tokenizer& tok, const SchedulerOptions& opt)
    : model_(m), tok_(tok), opt_(opt), cache_(opt.cache_bytes) {
  WERSA_CHECK(opt.parallel >= 1, "parallel = ", opt.parallel, ", expected >= 1");
  const DecodeOptions dopt{opt.context, opt.prefill_chunk};
  for (int64_t i = 0; i < opt.parallel; ++i) {
    slots_.push_back(std::make_unique<Slot>());
    slots_.back()->st = std::make_unique<DecodeState>(m, dopt);
  }
  batch_ = std::make_unique<DecodeBatch>(m, opt.parallel, dopt);
  stats_.cache_max_bytes = opt.cache_bytes;
  if (!opt.sessions_dir.empty()) load_sessions();
  publish();
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { stop(true); }

bool Scheduler::submit(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stopping_ || int64_t(queue_.size()) >= opt_.queue) return false;
    queue_.push_back(job);
    ++stats_.requests;
    stats_.queued = int64_t(queue_.size());
  }
  cv_.notify_all();
  return true;
}

void Scheduler::stop(bool cancel_running) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
    cancel_running_ = cancel_running_ || cancel_running;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!opt_.sessions_dir.empty() && !saved_) {
    saved_ = true;
    save_sessions();
  }
}

namespace {
namespace fs = std::filesystem;

bool is_session_file(const fs::path& p) {
  const std::string n = p.filename().string();
  return n.rfind("session-", 0) == 0 && p.extension() == ".state";
}

// A session's file name: FNV-1a of its tokens (the file itself holds the tokens).
std::string session_file(const std::vector<int32_t>& tokens) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t t : tokens)
    for (int b = 0; b < 4; ++b) h = (h ^ ((uint32_t(t) >> (8 * b)) & 0xFF)) * 1099511628211ull;
  char name[40];
  std::snprintf(name, sizeof name, "session-%016llx.state", static_cast<unsigned long long>(h));
  return name;
}
}  // namespace

// Oldest file first, so that the newest end up the most recently used (and the last evicted
// when they do not all fit). A file that does not load (another model's, damaged) is skipped
// with a warning.
void Scheduler::load_sessions() {
  std::error_code ec;
  fs::create_directories(opt_.sessions_dir, ec);
  if (ec) throw Error("--sessions-dir " + opt_.sessions_dir + ": cannot create it: " + ec.message());
  std::vector<std::pair<fs::file_time_type, fs::path>> files;
  for (const auto& e : fs::directory_iterator(opt_.sessions_dir))
    if (e.is_regular_file() && is_session_file(e.path())) files.emplace_back(e.last_write_time(), e.path());
  std::sort(files.begin(), files.end());
  DecodeState& scratch = *slots_[0]->st;
  for (const auto& [t, path] : files) {
    try {
      load_decode_state(model_, scratch, path.string());
      if (cache_.put(scratch)) {  // else larger than --cache-mib: not kept, its file left alone
        loaded_files_.push_back(path.filename().string());
        ++sessions_loaded_;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "wersa-server: skipping the session file %s\n", e.what());
      ++sessions_skipped_;
    }
  }
  scratch.reset();
}

// Every kept session to its file (written aside, then renamed); the files read at start whose
// sessions were evicted since are removed. Other files (another model's) are left alone.
void Scheduler::save_sessions() {
  std::set<std::string> written;
  int64_t failed = 0;
  const fs::path dir(opt_.sessions_dir);
  cache_.for_each(*slots_[0]->st, [&](const DecodeState& s) {
    const std::string name = session_file(s.tokens());
    try {
      save_decode_state(model_, s, (dir / (name + ".tmp")).string());
      fs::rename(dir / (name + ".tmp"), dir / name);
      written.insert(name);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "wersa-server: cannot save a session: %s\n", e.what());
      ++failed;
    }
  });
  std::error_code ec;
  if (failed == 0)
    for (const std::string& name : loaded_files_)
      if (!written.count(name)) fs::remove(dir / name, ec);  // evicted since
  std::fprintf(stderr, "wersa-server: %zu sessions saved to %s\n", written.size(), opt_.sessions_dir.c_str());
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

size_t Scheduler::state_bytes() const { return slots_[0]->st->state_bytes(); }

void Scheduler::admit(Slot& s, std::shared_ptr<Job> job) {
  s.job = std::move(job);
  // Resets the state when nothing matches; a request that scores its prompt starts from scratch.
  int64_t cached = 0;
  if (s.job->prompt_logprobs)
    s.st->reset();
  else
    cached = cache_.restore(s.job->prompt, *s.st);
  s.pending.assign(s.job->prompt.begin() + cached, s.job->prompt.end());
  s.pending_at = 0;
  s.sampler = std::make_unique<Sampler>(s.job->sampler);
  {
    std::lock_guard<std::mutex> lk(s.job->mu);
    s.job->cached = cached;
    s.job->started = true;
  }
  std::lock_guard<std::mutex> lk(mu_);
  stats_.prompt_tokens += int64_t(s.job->prompt.size());
  stats_.cached_tokens += cached;
}

// Appends a generated token's text; a stop string that now appears cuts the text before it and
// marks the job to finish after this step.
void Scheduler::emit(Slot& s, int32_t token) {
  Job& j = *s.job;
  std::lock_guard<std::mutex> lk(j.mu);
  ++j.generated;
  j.tokens.push_back(token);
  if (token == tok_.eos_id() || token >= tok_.vocab_size()) return;  // no text
  const size_t old = j.text.size();
  const std::string piece = tok_.piece_bytes(token);
  if (j.logprobs >= 0) {
    const Tensor& lg = s.st->logits();  // before the token is fed: the distribution it was drawn from
    const TokenLogprobs tl = token_logprobs(lg.host<float>(), lg.numel(), token, j.logprobs);
    LogprobEntry e{piece, old, tl.logprob, {}};
    for (const auto& [id, lp] : tl.top)
      if (id < tok_.vocab_size())
        e.top.emplace_back(id == tok_.eos_id() ? "<|endoftext|>" : tok_.piece_bytes(id), lp);
    j.lp.push_back(std::move(e));
  }
  j.text += piece;
  const StopScan scan = scan_stops(j.text, old, j.stop);
  if (scan.cut != std::string::npos) {
    j.text.resize(scan.cut);
    j.finish_reason = "stop";  // finish() ends it after this step
  }
  j.stable = scan.stable;
  j.cv.notify_all();
}

// A prefill chunk of a request that scores its prompt: the logits of every row, each scoring the
// prompt token after it (prompt positions pending_at + row + 1; the prompt is prefilled whole, no
// cached part). A leading EOS (a text prompt's document start) is not scored, any other first
// token gets a null log-probability (NaN: nothing precedes it).
void Scheduler::prefill_scored(Slot& s, const std::vector<int32_t>& chunk) {
  const int64_t n = int64_t(chunk.size()), V = model_.config().vocab_size;
  WERSA_CHECK(model_.dtype() == DType::F32, "prompt logprobs need f32 logits");
  Arena arena("prompt logits", model_.device());
  const Tensor lg = arena.build([&](Arena& a) { return a.add("logits", DType::F32, {n, V}); });
  prefill(model_, *s.st, chunk, lg);
  std::vector<float> host(size_t(n * V));
  tensor_copy(Tensor(host.data(), DType::F32, Device::CPU, Shape{n, V}, "logits"), lg);
  Job& j = *s.job;
  std::lock_guard<std::mutex> lk(j.mu);
  size_t offset = j.prompt_lp.empty() ? 0 : j.prompt_lp.back().offset + j.prompt_lp.back().token.size();
  auto piece = [&](int32_t t) { return t == tok_.eos_id() ? std::string() : tok_.piece_bytes(t); };
  if (s.pending_at == 0 && !j.prompt.empty() && j.prompt[0] != tok_.eos_id()) {
    j.prompt_lp.push_back({piece(j.prompt[0]), 0, std::nanf(""), {}});
    offset = j.prompt_lp.back().token.size();
  }
  for (int64_t r = 0; r < n; ++r) {
    const size_t next = s.pending_at + size_t(r) + 1;
    if (next >= j.prompt.size()) break;
    const int32_t t = j.prompt[next];
    const TokenLogprobs tl = token_logprobs(host.data() + r * V, V, t, j.logprobs);
    LogprobEntry e{piece(t), offset, tl.logprob, {}};
    for (const auto& [id, lp] : tl.top)
      if (id < tok_.vocab_size())
        e.top.emplace_back(id == tok_.eos_id() ? "<|endoftext|>" : tok_.piece_bytes(id), lp);
    offset += e.token.size();
    j.prompt_lp.push_back(std::move(e));
  }
}

// The gauges /metrics reports (running, cache), before a finished job's client is woken, so that
// what it reads next includes its own request.
void Scheduler::publish() {
  std::lock_guard<std::mutex> lk(mu_);
  stats_.running =
      std::count_if(slots_.begin(), slots_.end(), [](const auto& s) { return s->job != nullptr; });
  stats_.cache_bytes = cache_.bytes();
  stats_.cache_sessions = cache_.sessions();
  stats_.cache_evictions = cache_.evictions();
  stats_.cache_hits = cache_.hits();
  stats_.state_bytes_running = size_t(stats_.running) * state_bytes();
}

void Scheduler::finish(Slot& s, const std::string& reason, const std::string& error) {
  const std::shared_ptr<Job> job = std::move(s.job);
  Job& j = *job;
  if (reason != "error") {
    try {
      cache_.put(*s.st);
    } catch (const std::exception&) {  // out of memory for the copy: simply not kept
    }
  }
  s.sampler.reset();
  s.pending.clear();
  publish();
  {
    std::lock_guard<std::mutex> lk(j.mu);
    j.finish_reason = reason;
    j.error = error;
    j.stable = j.text.size();
    j.done = true;
  }
  j.cv.notify_all();
}

void Scheduler::loop() {
  set_cpu_threads(opt_.threads);  // OpenMP's count is per thread: this one starts at the default
  for (;;) {
    std::vector<std::pair<Slot*, std::shared_ptr<Job>>> joining;
    std::vector<std::shared_ptr<Job>> dropped;
    {
      std::unique_lock<std::mutex> lk(mu_);
      auto active = [&] {
        return std::count_if(slots_.begin(), slots_.end(), [](const auto& s) { return s->job != nullptr; });
      };
      if (stopping_) {
        dropped.assign(queue_.begin(), queue_.end());
        queue_.clear();
      }
      if (stopping_ && active() == 0 && dropped.empty()) break;
      if (!stopping_ && active() == 0 && queue_.empty()) {
        cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
        continue;
      }
      for (auto& s : slots_)
        if (!s->job && !queue_.empty()) {
          joining.emplace_back(s.get(), queue_.front());
          s->job = queue_.front();  // reserved; admit() fills the rest
          queue_.pop_front();
        }
      stats_.queued = int64_t(queue_.size());
    }
    for (auto& j : dropped) {
      {
        std::lock_guard<std::mutex> lk(j->mu);
        j->finish_reason = "cancelled";
        j->error = "the server is shutting down";
        j->done = true;
      }
      j->cv.notify_all();
    }
    for (auto& [slot, job] : joining) admit(*slot, job);

    // Requests that end without another token: cancelled, past their deadline.
    const auto now = std::chrono::steady_clock::now();
    bool cancel_all;
    {
      std::lock_guard<std::mutex> lk(mu_);
      cancel_all = cancel_running_;
    }
    for (auto& s : slots_) {
      if (!s->job) continue;
      if (s->job->cancelled || cancel_all)
        finish(*s, "cancelled");
      else if (now > s->job->deadline)
        finish(*s, "timeout");
    }

    // One prefill chunk, round robin over the slots with prompt tokens left.
    for (size_t k = 0; k < slots_.size(); ++k) {
      Slot& s = *slots_[(next_prefill_ + k) % slots_.size()];
      if (!s.prefilling()) continue;
      next_prefill_ = (next_prefill_ + k + 1) % slots_.size();
      const size_t n = std::min(s.pending.size() - s.pending_at, size_t(opt_.prefill_chunk));
      const Timer t;
      try {
        const std::vector<int32_t> chunk(s.pending.begin() + long(s.pending_at),
                                         s.pending.begin() + long(s.pending_at + n));
        if (s.job->prompt_logprobs)
          prefill_scored(s, chunk);
        else
          prefill(model_, *s.st, chunk);
        s.pending_at += n;
      } catch (const std::exception& e) {
        finish(s, "error", e.what());
      }
      std::lock_guard<std::mutex> lk(mu_);
      stats_.prefill_seconds += t.ms() / 1000;
      break;
    }

    // One decode step of every slot that is generating.
    std::vector<Slot*> rows;
    std::vector<DecodeState*> states;
    std::vector<int32_t> tokens;
    for (auto& s : slots_) {
      if (!s->job || s->prefilling()) continue;
      if (s->st->room() < 1) {
        finish(*s, "length");
        continue;
      }
      const int32_t t = s->sampler->sample(s->st->logits(), s->st->tokens());
      emit(*s, t);
      rows.push_back(s.get());
      states.push_back(s->st.get());
      tokens.push_back(t);
    }
    if (!rows.empty()) {
      const Timer t;
      try {
        batch_->step(states, tokens);
      } catch (const std::exception& e) {
        for (Slot* s : rows) finish(*s, "error", e.what());
        rows.clear();
      }
      {
        std::lock_guard<std::mutex> lk(mu_);
        stats_.decode_steps += 1;
        stats_.decode_rows += int64_t(rows.size());
        stats_.completion_tokens += int64_t(rows.size());
        stats_.decode_seconds += t.ms() / 1000;
      }
      for (size_t i = 0; i < rows.size(); ++i) {
        Slot& s = *rows[i];
        bool stop_hit, full;
        {
          std::lock_guard<std::mutex> lk(s.job->mu);
          stop_hit = s.job->finish_reason == "stop";
          full = s.job->generated >= s.job->max_tokens;
        }
        if ((tokens[i] == tok_.eos_id() && !s.job->ignore_eos) || stop_hit)
          finish(s, "stop");
        else if (full)
          finish(s, "length");
      }
    }
    publish();
  }
}

}  // namespace wersa::server

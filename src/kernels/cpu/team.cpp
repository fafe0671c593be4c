// The decode team (team.h). A job is published as one 64-bit word, (job number << 32) | (chunks
// << 16) | next chunk; the caller and the workers claim chunks by compare-and-swap on it, so a
// claim succeeds only while that job is current and has a chunk left (both read from the word
// itself: a separate chunk count could already hold the next job's while the word still holds
// this one's), and the caller returns once the count of finished chunks reaches the job's chunks
// (it never waits for a worker that claimed nothing). Workers spin on the word for
// team_spin_us() after their last job, then sleep on a condition variable; a publisher that sees a
// sleeper wakes them (the word and the sleeper count are sequentially consistent, so a worker
// about to sleep either sees the new job or is counted and woken). The team object is never freed:
// its workers block at exit; after a fork the child (which has no workers) starts a new one.
#include "team.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define WERSA_PAUSE() _mm_pause()
#else
#define WERSA_PAUSE() std::this_thread::yield()
#endif

namespace wersa::cpu {
namespace {

constexpr int kMaxChunks = 0xffff;  // chunks of one team job (16 bits of the job word)
thread_local int t_id = 0;          // this thread's number in the team (the caller's is 0)
thread_local bool t_in_job = false;

int read_spin_us() {
  const char* e = std::getenv("WERSA_TEAM_SPIN_US");
  if (e == nullptr || *e == '\0') {  // passive OpenMP waits asked for: the team sleeps at once too
    const char* w = std::getenv("OMP_WAIT_POLICY");
    return w != nullptr && (w[0] == 'p' || w[0] == 'P') ? 0 : kTeamSpinUs;
  }
  char* end = nullptr;
  const long v = std::strtol(e, &end, 10);
  return (*end == '\0' && v >= 0 && v <= 1000000) ? int(v) : kTeamSpinUs;  // a bad value: the default
}

class Team {
 public:
  Team() : pid_(getpid()), spin_(std::chrono::microseconds(read_spin_us())) {}

  pid_t pid() const { return pid_; }
  int spin_us() const { return int(spin_.count()); }

  // With use_ held by the caller; threads >= 2.
  void run(int chunks, int threads, TeamFn f, void* ctx) {
    while (int(workers_.size()) < threads - 1) {
      const int id = int(workers_.size()) + 1;
      workers_.emplace_back([this, id, j = job_] { work(id, j); });
    }
    fn_.store(f, std::memory_order_relaxed);
    ctx_.store(ctx, std::memory_order_relaxed);
    max_id_.store(threads - 1, std::memory_order_relaxed);
    finished_.store(0, std::memory_order_relaxed);
    ++job_;
    next_.store(job_ << 32 | uint64_t(chunks) << 16,
                std::memory_order_seq_cst);  // publishes the fields above
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      { const std::lock_guard<std::mutex> l(sleep_m_); }
      wake_.notify_all();
    }
    claim_and_run(job_);
    for (int spins = 0; finished_.load(std::memory_order_acquire) < chunks; ++spins) {
      WERSA_PAUSE();
      if (spins > 4096) std::this_thread::yield();  // a worker descheduled inside its chunk
    }
  }

  std::mutex use_;  // one caller at a time

 private:
  // Claims and runs chunks of job j until none are left or another job is current.
  void claim_and_run(uint64_t j) {
    uint64_t v = next_.load(std::memory_order_acquire);
    while ((v >> 32) == j && (v & 0xffff) < ((v >> 16) & 0xffff)) {
      if (!next_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_acquire))
        continue;
      // The claim succeeded while job j was current, and the caller does not publish another job
      // before this chunk finishes, so the fields are job j's.
      t_in_job = true;
      fn_.load(std::memory_order_relaxed)(ctx_.load(std::memory_order_relaxed), int(v & 0xffff),
                                          int((v >> 16) & 0xffff));
      t_in_job = false;
      finished_.fetch_add(1, std::memory_order_release);
      v = next_.load(std::memory_order_acquire);
    }
  }

  void work(int id, uint64_t seen) {
    t_id = id;
    for (;;) {
      const auto until = std::chrono::steady_clock::now() + spin_;
      uint64_t j;
      for (int spins = 0; (j = next_.load(std::memory_order_acquire) >> 32) == seen; ++spins) {
        WERSA_PAUSE();
        if ((spins & 63) == 63 && std::chrono::steady_clock::now() >= until) {
          std::unique_lock<std::mutex> l(sleep_m_);
          sleepers_.fetch_add(1, std::memory_order_seq_cst);
          while ((next_.load(std::memory_order_seq_cst) >> 32) == seen) wake_.wait(l);
          sleepers_.fetch_sub(1, std::memory_order_relaxed);
        }
      }
      seen = j;
      if (id <= max_id_.load(std::memory_order_relaxed)) claim_and_run(j);
    }
  }

  const pid_t pid_;
  const std::chrono::microseconds spin_;
  std::vector<std::thread> workers_;
  uint64_t job_ = 0;  // the caller's count of published jobs
  std::atomic<TeamFn> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<int> max_id_{0};
  alignas(64) std::atomic<uint64_t> next_{0};
  alignas(64) std::atomic<int> finished_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  std::mutex sleep_m_;
  std::condition_variable wake_;
};

std::atomic<Team*> g_team{nullptr};
std::mutex g_team_m;

Team& team() {
  Team* t = g_team.load(std::memory_order_acquire);
  if (t != nullptr && t->pid() == getpid()) return *t;
  const std::lock_guard<std::mutex> l(g_team_m);
  t = g_team.load(std::memory_order_acquire);
  if (t == nullptr || t->pid() != getpid()) {  // the first call, or a forked child's (the parent's is leaked)
    t = new Team;
    g_team.store(t, std::memory_order_release);
  }
  return *t;
}

}  // namespace

void team_run(int chunks, TeamFn f, void* ctx) {
  const int threads = omp_get_max_threads();
  if (chunks <= 0) return;
  if (chunks == 1 || chunks > kMaxChunks || threads <= 1 || t_in_job || omp_in_parallel()) {
    for (int c = 0; c < chunks; ++c) f(ctx, c, chunks);
    return;
  }
  Team& t = team();
  std::unique_lock<std::mutex> l(t.use_, std::try_to_lock);
  if (!l.owns_lock()) {
    for (int c = 0; c < chunks; ++c) f(ctx, c, chunks);
    return;
  }
  t.run(chunks, threads, f, ctx);
}

int team_part() { return t_in_job ? t_id : 0; }

int team_spin_us() { return team().spin_us(); }

}  // namespace wersa::cpu

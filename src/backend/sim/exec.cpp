// The CUDA simulator's executor: runs a kernel's grid on the CPU. Each CUDA thread is a fiber; a
// block's fibers run on one CPU thread in passes: in each pass every thread that can run does so
// until it reaches a barrier or a warp collective (or exits), in the order of the schedule (seq,
// rev, or a seeded random permutation), and between passes the barriers and collectives whose
// threads have all arrived are released. Blocks are shared out over the CPU threads (OpenMP).
// What the GPU would leave undefined is reported as the launch's error: threads meeting at
// different barriers, a barrier that some threads exited before, a warp collective whose mask
// leaves out the calling lane or whose lanes disagree on the mask, deadlock, a launch
// configuration a GPU refuses.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "fiber.h"
#include "prelude.h"
#include "state.h"

namespace wersa::sim {

namespace {

enum class State { Ready, Barrier, Warp, Done };
enum class WarpOp { Sync, Shfl, Vote };

struct SimThread {
  Fiber fiber;
  ThreadInfo info;
  int linear = 0;
  State state = State::Ready;
  // At a barrier
  const char* site = nullptr;
  int bar_kind = 0, pred = 0, bar_result = 0;
  // At a warp collective
  WarpOp wop = WarpOp::Sync;
  unsigned mask = 0;
  uint64_t bits = 0, result = 0;
  Shfl mode = Shfl::Idx;
  int arg = 0, width = 32, vote_kind = 0;
};

struct Launch {
  const char* name;
  dim3 grid, block;
  size_t smem;
  const std::function<void()>* body;
  uint64_t seed;
  std::atomic<bool> failed{false};
  std::mutex mutex;
  std::string error;  // the failure of the lowest block
  int64_t failed_block = -1;
};

struct Block {
  Launch* launch = nullptr;
  uint3 idx{};
  int n = 0;
  std::vector<std::unique_ptr<SimThread>>* threads = nullptr;
  void* smem = nullptr;
  std::string error;  // set by a thread or the scheduler: the block stops
};

// Per CPU thread: the simulated thread running now, its block, and reusable fibers.
thread_local SimThread* t_thread = nullptr;
thread_local Block* t_block = nullptr;
thread_local std::vector<std::unique_ptr<SimThread>> t_pool;

std::atomic<int> g_schedule{-1};
std::atomic<uint64_t> g_seed{1};
std::atomic<uint64_t> g_launches{0};

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::string dim_str(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}
std::string dim_str(dim3 v) { return dim_str(uint3{v.x, v.y, v.z}); }

std::string site_str(const char* site) { return site ? site : "?"; }

bool same_site(const char* a, const char* b) { return a == b || (a && b && std::strcmp(a, b) == 0); }

const char* state_str(const SimThread& t) {
  switch (t.state) {
    case State::Ready:
      return "running";
    case State::Barrier:
      return "at a block barrier";
    case State::Warp:
      return t.wop == WarpOp::Sync ? "at __syncwarp" : t.wop == WarpOp::Shfl ? "at a shuffle" : "at a vote";
    case State::Done:
      return "exited";
  }
  return "?";
}

// Thrown through the failing thread's own frames (so that their locals are destroyed: an abandoned
// fiber would leak them) up to thread_main, which ends the thread.
struct ThreadAbort {};

void record_error(const std::string& msg) {
  Block* b = t_block;
  if (b->error.empty()) b->error = "thread " + dim_str(t_thread->info.thread_idx) + ": " + msg;
}

// Ends the running block with `msg` (from inside a fiber: never returns).
[[noreturn]] void fail_in_thread(const std::string& msg) {
  if (!t_thread || !t_block) {
    std::fprintf(stderr, "CUDA simulator: %s (outside a kernel)\n", msg.c_str());
    std::abort();
  }
  record_error(msg);
  throw ThreadAbort{};
}

void yield_to_scheduler() { t_thread->fiber.yield(); }

SimThread& self(const char* what) {
  if (!t_thread) {
    std::fprintf(stderr, "CUDA simulator: %s called outside a kernel\n", what);
    std::abort();
  }
  return *t_thread;
}

void thread_main(void* arg) {
  auto* t = static_cast<SimThread*>(arg);
  try {
    (*t_block->launch->body)();
  } catch (const ThreadAbort&) {  // the error is recorded
  } catch (const std::exception& e) {
    record_error(std::string("an exception left device code: ") + e.what());
  } catch (...) {
    record_error("an exception left device code");
  }
  t->state = State::Done;
}

unsigned lanes_present(const Block& b, int warp) {
  const int n = std::min(32, b.n - warp * 32);
  return n >= 32 ? 0xffffffffu : ((1u << n) - 1u);
}

// Releases the warp collectives whose lanes have all arrived. Returns false on an error.
bool resolve_warps(Block& b, bool& released) {
  auto& th = *b.threads;
  for (int w = 0; w * 32 < b.n; ++w) {
    const unsigned present = lanes_present(b, w);
    for (int l = 0; l < 32 && w * 32 + l < b.n; ++l) {
      SimThread& t = *th[w * 32 + l];
      if (t.state != State::Warp) continue;
      const unsigned group = t.mask & present;
      bool all = true;
      unsigned alive = 0;
      for (int j = 0; j < 32; ++j) {
        if (!(group >> j & 1u)) continue;
        const SimThread& o = *th[w * 32 + j];
        if (o.state == State::Done) continue;
        alive |= 1u << j;
        if (o.state != State::Warp) {
          all = false;
          continue;
        }
        if (o.mask != t.mask || o.wop != t.wop || (t.wop == WarpOp::Shfl && o.mode != t.mode) ||
            (t.wop == WarpOp::Vote && o.vote_kind != t.vote_kind)) {
          std::ostringstream os;
          os << "warp " << w << ": lanes " << l << " and " << j << " meet at different warp collectives ("
             << state_str(t) << " with mask 0x" << std::hex << t.mask << ", " << state_str(o)
             << " with mask 0x" << o.mask << ")";
          b.error = os.str();
          return false;
        }
      }
      if (!all) continue;
      // Everyone in the group is here: compute each lane's result.
      unsigned ballot = 0;
      for (int j = 0; j < 32; ++j)
        if ((alive >> j & 1u) && th[w * 32 + j]->pred) ballot |= 1u << j;
      for (int j = 0; j < 32; ++j) {
        if (!(alive >> j & 1u)) continue;
        SimThread& o = *th[w * 32 + j];
        if (o.wop == WarpOp::Shfl) {
          const int width = o.width, base = j & ~(width - 1);
          int src = j;
          switch (o.mode) {
            case Shfl::Idx:
              src = base + (o.arg & (width - 1));
              break;
            case Shfl::Up:
              src = (j - base) >= o.arg ? j - o.arg : j;
              break;
            case Shfl::Down:
              src = (j - base) + o.arg < width ? j + o.arg : j;
              break;
            case Shfl::Xor:
              src = j ^ o.arg;
              src = src >= base + width ? j : src;
              break;
          }
          // A source lane outside the group (or exited) gives an undefined value on a GPU: all ones.
          o.result = (src >= 0 && src < 32 && (alive >> src & 1u)) ? th[w * 32 + src]->bits : ~uint64_t(0);
        } else if (o.wop == WarpOp::Vote) {
          o.result = o.vote_kind == 0 ? ballot : o.vote_kind == 1 ? (ballot != 0) : (ballot == alive);
        }
        o.state = State::Ready;
      }
      released = true;
    }
  }
  return true;
}

// All threads that have not exited wait at a block barrier: check it is one barrier, release it.
bool resolve_barrier(Block& b) {
  auto& th = *b.threads;
  const SimThread* first = nullptr;
  int exited = 0, count = 0;
  for (int i = 0; i < b.n; ++i) {
    const SimThread& t = *th[i];
    if (t.state == State::Done) {
      ++exited;
      continue;
    }
    if (t.state != State::Barrier) return false;
    if (!first) first = &t;
    if (!same_site(t.site, first->site) || t.bar_kind != first->bar_kind) {
      b.error = "threads " + dim_str(first->info.thread_idx) + " and " + dim_str(t.info.thread_idx) +
                " wait at different barriers (" + site_str(first->site) + ", " + site_str(t.site) +
                "): a barrier in divergent code";
      return false;
    }
    count += t.pred != 0;
  }
  if (!first) return false;
  if (exited > 0) {
    b.error = "a barrier at " + site_str(first->site) + " is reached by " + std::to_string(b.n - exited) +
              " of " + std::to_string(b.n) + " threads; the others have exited (a barrier in divergent code)";
    return false;
  }
  const int live = b.n - exited;
  const int result = first->bar_kind == 1 ? count : first->bar_kind == 2 ? (count == live) : (count > 0);
  for (int i = 0; i < b.n; ++i) {
    SimThread& t = *th[i];
    t.bar_result = result;
    t.state = State::Ready;
  }
  return true;
}

std::string deadlock_report(const Block& b) {
  std::ostringstream os;
  os << "deadlock: no thread can go on;";
  int shown = 0;
  for (int i = 0; i < b.n && shown < 6; ++i) {
    const SimThread& t = *(*b.threads)[i];
    if (t.state == State::Done) continue;
    os << " thread " << dim_str(t.info.thread_idx) << " " << state_str(t);
    if (t.state == State::Warp) os << " (mask 0x" << std::hex << t.mask << std::dec << ")";
    os << ";";
    ++shown;
  }
  return os.str();
}

void run_block(Block& b) {
  auto& th = *b.threads;
  const Launch& L = *b.launch;
  for (int i = 0; i < b.n; ++i) {
    SimThread& t = *th[i];
    t.linear = i;
    t.info.block_dim = L.block;
    t.info.grid_dim = L.grid;
    t.info.block_idx = b.idx;
    t.info.thread_idx = uint3{unsigned(i % L.block.x), unsigned(i / L.block.x % L.block.y),
                              unsigned(i / (L.block.x * L.block.y))};
    t.state = State::Ready;
    t.fiber.reset(&thread_main, &t);
  }
  const Schedule sched = schedule();
  uint64_t rng = L.seed ^ (uint64_t(b.idx.x) * 0x9e3779b97f4a7c15ull) ^ (uint64_t(b.idx.y) << 32) ^ b.idx.z;
  std::vector<int> order(b.n);
  for (;;) {
    for (int i = 0; i < b.n; ++i) order[i] = sched == Schedule::Rev ? b.n - 1 - i : i;
    if (sched == Schedule::Rand)
      for (int i = b.n - 1; i > 0; --i) std::swap(order[i], order[splitmix(rng) % uint64_t(i + 1)]);
    for (int i : order) {
      SimThread& t = *th[i];
      if (t.state != State::Ready) continue;
      t_thread = &t;
      t.fiber.resume();
      t_thread = nullptr;
      if (!b.error.empty()) return;
    }
    bool released = false;
    if (!resolve_warps(b, released)) return;
    if (released) continue;
    bool done = true;
    for (int i = 0; i < b.n && done; ++i) done = th[i]->state == State::Done;
    if (done) return;
    if (resolve_barrier(b)) continue;
    if (!b.error.empty()) return;
    b.error = deadlock_report(b);
    return;
  }
}

#ifdef WERSA_SIM_ASAN
void asan_death() {
  if (t_thread && t_block)
    std::fprintf(stderr, "CUDA simulator: the access above was made by kernel %s, block %s, thread %s\n",
                 t_block->launch->name, dim_str(t_block->idx).c_str(),
                 dim_str(t_thread->info.thread_idx).c_str());
}
#endif

}  // namespace

const ThreadInfo& current() { return self("threadIdx/blockIdx").info; }

void* dynamic_shared() {
  self("dynamic shared memory");
  return t_block->smem;
}

void syncthreads(const char* site) { syncthreads_reduce(site, 0, 0); }

int syncthreads_reduce(const char* site, int kind, int pred) {
  SimThread& t = self("__syncthreads");
  t.state = State::Barrier;
  t.site = site;
  t.bar_kind = kind;
  t.pred = pred;
  yield_to_scheduler();
  return t.bar_result;
}

static void warp_wait(SimThread& t, unsigned mask, WarpOp op) {
  const unsigned lane = unsigned(t.linear % 32);
  if (!(mask >> lane & 1u)) {
    std::ostringstream os;
    os << "a warp collective's mask 0x" << std::hex << mask << " leaves out the calling lane " << std::dec
       << lane;
    fail_in_thread(os.str());
  }
  t.state = State::Warp;
  t.wop = op;
  t.mask = mask;
  yield_to_scheduler();
}

void syncwarp(unsigned mask, const void*) {
  SimThread& t = self("__syncwarp");
  warp_wait(t, mask, WarpOp::Sync);
}

uint64_t shfl(unsigned mask, uint64_t bits, Shfl mode, int arg, int width, const void*) {
  SimThread& t = self("a shuffle");
  if (width <= 0 || width > 32 || (width & (width - 1)) != 0)
    fail_in_thread("a shuffle's width " + std::to_string(width) + " is not a power of two up to 32");
  t.bits = bits;
  t.mode = mode;
  t.arg = arg;
  t.width = width;
  warp_wait(t, mask, WarpOp::Shfl);
  return t.result;
}

unsigned vote(unsigned mask, int kind, int pred, const void*) {
  SimThread& t = self("a warp vote");
  t.pred = pred;
  t.vote_kind = kind;
  warp_wait(t, mask, WarpOp::Vote);
  return unsigned(t.result);
}

void device_fault(const char* what) { fail_in_thread(what); }

void set_schedule(Schedule s, uint64_t seed) {
  g_schedule = int(s);
  g_seed = seed;
}

Schedule schedule() {
  int s = g_schedule.load();
  if (s < 0) {  // first use: WERSA_SIM_SCHEDULE=seq|rev|rand, WERSA_SIM_SEED=N
    const char* e = std::getenv("WERSA_SIM_SCHEDULE");
    const std::string v = e ? e : "seq";
    s = v == "rev" ? int(Schedule::Rev) : v == "rand" ? int(Schedule::Rand) : int(Schedule::Seq);
    if (v != "seq" && v != "rev" && v != "rand") {
      std::fprintf(stderr, "CUDA simulator: WERSA_SIM_SCHEDULE=%s: expected seq, rev or rand\n", v.c_str());
      std::abort();
    }
    if (const char* seed = std::getenv("WERSA_SIM_SEED")) g_seed = std::strtoull(seed, nullptr, 10);
    int expect = -1;
    g_schedule.compare_exchange_strong(expect, s);
    s = g_schedule.load();
  }
  return Schedule(s);
}

const char* schedule_name(Schedule s) {
  return s == Schedule::Seq ? "seq" : s == Schedule::Rev ? "rev" : "rand";
}

void run_kernel(const void* fn, const char* name, dim3 grid, dim3 block, size_t smem, cudaStream_t,
                const std::function<void()>& body) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  const std::string what =
      std::string("launch of ") + name + " with grid " + dim_str(grid) + ", block " + dim_str(block);
  if (threads == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0 || threads > kMaxThreadsPerBlock ||
      block.x > 1024 || block.y > 1024 || block.z > 64 || grid.y > 65535 || grid.z > 65535 ||
      grid.x > 0x7fffffffu) {
    set_pending_error(cudaErrorInvalidConfiguration, what + ": a configuration no GPU accepts (at most " +
                                                         std::to_string(kMaxThreadsPerBlock) +
                                                         " threads a block)");
    return;
  }
  if (smem > max_dynamic_shared(fn)) {
    set_pending_error(cudaErrorInvalidValue, what + ": " + std::to_string(smem) +
                                                 " bytes of dynamic shared memory, " +
                                                 std::to_string(max_dynamic_shared(fn)) +
                                                 " allowed (cudaFuncSetAttribute raises the limit to " +
                                                 std::to_string(kMaxSharedPerBlockOptin) + ")");
    return;
  }
#ifdef WERSA_SIM_ASAN
  static std::once_flag asan_once;
  std::call_once(asan_once, [] { __asan_set_death_callback(&asan_death); });
#endif
  Launch L;
  L.name = name;
  L.grid = grid;
  L.block = block;
  L.smem = smem;
  L.body = &body;
  L.seed = g_seed.load() * 0x2545f4914f6cdd1dull + g_launches.fetch_add(1);
  schedule();
  const int64_t nblocks = int64_t(grid.x) * grid.y * grid.z;
  const int n = int(threads);
  const int workers = int(std::min<int64_t>(nblocks, omp_get_max_threads()));
#pragma omp parallel num_threads(workers)
  {
    while (t_pool.size() < size_t(n)) t_pool.push_back(std::make_unique<SimThread>());
#pragma omp for schedule(dynamic, 1)
    for (int64_t bi = 0; bi < nblocks; ++bi) {
      if (L.failed.load(std::memory_order_relaxed)) continue;
      Block b;
      b.launch = &L;
      b.idx = uint3{unsigned(bi % grid.x), unsigned(bi / grid.x % grid.y),
                    unsigned(bi / (int64_t(grid.x) * grid.y))};
      b.n = n;
      b.threads = &t_pool;
      b.smem = std::malloc(std::max<size_t>(smem, 1));
      std::memset(b.smem, 0xff, smem);  // poison: a read before a write shows as NaN / -1
      t_block = &b;
      run_block(b);
      t_block = nullptr;
      std::free(b.smem);
      if (!b.error.empty()) {
        // The failure of the lowest block: blocks start in order, so every block below a failed one
        // has started and finishes; the report does not depend on which CPU thread was faster.
        std::lock_guard<std::mutex> lock(L.mutex);
        if (L.error.empty() || bi < L.failed_block) {
          L.error = "block " + dim_str(b.idx) + ", " + b.error;
          L.failed_block = bi;
        }
        L.failed = true;
      }
    }
  }
  if (L.failed) set_pending_error(cudaErrorLaunchFailure, "kernel " + std::string(name) + ": " + L.error);
}

}  // namespace wersa::sim

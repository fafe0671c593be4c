// run_lanes (ops/lanes.h): the items of a step over the decode team, one item per team chunk,
// each on the context of the thread that claimed it.
#include "wersa/ops/lanes.h"

#include <atomic>
#include <exception>

#include "../kernels/cpu/team.h"
#include "wersa/backend/backend.h"

namespace wersa {

int extra_lanes(const Ctx& ctx) { return ctx.device() == Device::CPU ? cpu_threads() - 1 : 0; }

void run_lanes(Ctx& ctx, const std::vector<Ctx*>& lanes, int64_t n, LaneFn f, void* arg) {
  WERSA_ASSERT(n >= 0 && !ctx.in_op(), "run_lanes: ", n, " items", ctx.in_op() ? " inside an op" : "");
  const bool team = ctx.device() == Device::CPU && !ctx.planning() && n > 1 && n <= 65535 && !lanes.empty() &&
                    int64_t(lanes.size()) + 1 == cpu_threads();
  if (!team) {
    for (int64_t i = 0; i < n; ++i) f(arg, i, ctx);
    return;
  }
  for (Ctx* c : lanes)
    WERSA_ASSERT(c && c != &ctx && c->device() == Device::CPU && !c->planning() && !c->in_op(),
                 "run_lanes: a lane context that is missing, the caller's, not a CPU one, or busy");
  struct Job {
    Ctx& ctx;
    const std::vector<Ctx*>& lanes;
    LaneFn f;
    void* arg;
    std::exception_ptr error;
    std::atomic<bool> failed{false};
  } job{ctx, lanes, f, arg, nullptr};
  auto chunk = [&job](int item, int) {
    if (job.failed.load(std::memory_order_relaxed)) return;
    const int part = cpu::team_part();
    WERSA_ASSERT(part >= 0 && size_t(part) <= job.lanes.size(), "run_lanes: team thread ", part,
                 " has no lane");
    try {
      job.f(job.arg, item, part == 0 ? job.ctx : *job.lanes[size_t(part) - 1]);
    } catch (...) {
      if (!job.failed.exchange(true)) job.error = std::current_exception();
    }
  };
  cpu::team_run(int(n), chunk);
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace wersa

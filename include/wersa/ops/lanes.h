// Independent pieces of one step spread over the CPU threads: the sequences of a batched decode
// step, each with its own attention state (model/decode_batch.h). run_lanes(ctx, lanes, n, f)
// calls f(item, c) once for every item in [0, n), where c is the context the thread running
// the item passes to every op it calls: ctx on the calling thread, *lanes[k - 1] on the decode
// team's worker k (kernels/cpu/team.h). A context is used by one thread at a time, so the
// scratch of two items never mixes; an item's results must not depend on the thread that runs it
// (no op's do). The items go over the team on the CPU when there is a lane for every CPU thread
// (lanes.size() + 1 == cpu_threads()) and ctx is not planning; otherwise (CUDA, one thread, a
// thread count the lanes were not made for, planning) one after the other on ctx, with the same
// results. The first exception an item throws is rethrown once every item has run or been
// skipped. Each lane context must be planned for the ops its items call (Ctx::plan).
#pragma once
#include <cstdint>
#include <vector>

#include "wersa/tensor/context.h"

namespace wersa {

using LaneFn = void (*)(void* arg, int64_t item, Ctx& c);
void run_lanes(Ctx& ctx, const std::vector<Ctx*>& lanes, int64_t n, LaneFn f, void* arg);

template <class F>
void run_lanes(Ctx& ctx, const std::vector<Ctx*>& lanes, int64_t n, F& f) {
  run_lanes(
      ctx, lanes, n, [](void* a, int64_t i, Ctx& c) { (*static_cast<F*>(a))(i, c); }, &f);
}

// The lanes a context's run_lanes would use besides itself: CPU threads - 1 on the CPU, 0 on CUDA.
int extra_lanes(const Ctx& ctx);

}  // namespace wersa

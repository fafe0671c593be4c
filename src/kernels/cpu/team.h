// The decode team: worker threads that split one decode-step kernel (a GEMV's rows, the linear
// attention's heads) with the calling thread and, after each job, spin for a short while before
// they sleep, so that the next kernel of the same step is handed out by a store and a few cache
// line transfers instead of a futex wake-up. (An OpenMP region under the tools' GOMP_SPINCOUNT=1000
// finds its team asleep again after the few microseconds of single-threaded ops between two
// GEMVs: waking it cost more than a small GEMV's split saved.) The team is separate from OpenMP's
// and busy only during a job and its spin window, so between decode steps and during OpenMP/BLAS
// work it sleeps. Its size follows the CPU thread count (omp_get_max_threads()).
#pragma once
#include <cstdint>

namespace wersa::cpu {

using TeamFn = void (*)(void* ctx, int chunk, int chunks);

// Calls f(ctx, c, chunks) once for every chunk c in [0, chunks) and returns when all are done.
// The chunks are claimed one at a time by the calling thread and the team's workers (at most CPU
// threads - 1 of them), so a worker that is asleep or descheduled (a busy machine) leaves its
// share to the others instead of holding the caller up; a chunk's result must therefore not
// depend on the thread that runs it. One thread when the CPU thread count is 1, inside an OpenMP
// region, inside a team job, while another thread holds the team, or beyond 65535 chunks.
// Allocates only when it starts threads (the first call at a higher thread count).
void team_run(int chunks, TeamFn f, void* ctx);

template <class F>
void team_run(int chunks, F& f) {
  team_run(
      chunks, [](void* c, int chunk, int n) { (*static_cast<F*>(c))(chunk, n); }, &f);
}

// f(i) for i in [0, n): over the team in up to kTeamMaxChunks contiguous ranges when `parallel`,
// else a plain loop on the calling thread (the team's counterpart of parallel_for in parallel.h).
constexpr int kTeamMaxChunks = 64;
template <class F>
void team_for(int64_t n, bool parallel, F&& f) {
  const int64_t chunks = n < kTeamMaxChunks ? n : kTeamMaxChunks;
  auto body = [&](int c, int nc) {
    for (int64_t i = n * c / nc, i1 = n * (c + 1) / nc; i < i1; ++i) f(i);
  };
  if (parallel && chunks > 1)
    team_run(int(chunks), body);
  else
    body(0, 1);
}

// This thread's number in the team (the caller 0, workers 1, 2, ...) while it runs a chunk, else
// 0: the index of its per-thread scratch (mine, kernels.h).
int team_part();

// How long a worker spins after a job before it sleeps, in microseconds: WERSA_TEAM_SPIN_US if set
// (0 = sleep at once), else 0 under OMP_WAIT_POLICY=passive, else kTeamSpinUs (long enough to
// cover the single-threaded ops between two GEMVs of a step, short enough that the team sleeps
// while the caller samples or runs OpenMP work). Read when the team starts.
constexpr int kTeamSpinUs = 20;
int team_spin_us();

}  // namespace wersa::cpu

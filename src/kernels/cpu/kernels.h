// Internal: the CPU kernels, one per op (src/kernels/ops.inc), templated on the scalar type. The
// float instance is the fast path; the double instance is the reference that the gradient tests
// check against finite differences. Called only by the dispatchers in src/ops, after validation.
#pragma once
#include <omp.h>

#include "../op_args.h"
#include "team.h"

namespace wersa::cpu {

#define WERSA_OP(NAME, ARGS, CPU_SCRATCH, CUDA_SCRATCH) \
  template <class T>                                    \
  void NAME(Ctx& ctx, const ARGS& a);
#include "../ops.inc"
#undef WERSA_OP

// The calling thread's slice of per-thread scratch: its OpenMP thread number, or its part in a
// decode-team job (team.h; the two never nest).
template <class T>
T* mine(const PerThread<T>& p) {
  const int part = team_part();
  return p.get(part > 0 ? part : omp_get_thread_num());
}

}  // namespace wersa::cpu

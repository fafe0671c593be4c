// Internal: the CPU kernels, one per op (src/kernels/ops.inc), templated on the scalar type. The
// float instance is the fast path; the double instance is the reference that the gradient tests
// check against finite differences. Called only by the dispatchers in src/ops, after validation.
#pragma once
#include <omp.h>

#include "../op_args.h"

namespace wersa::cpu {

#define WERSA_OP(NAME, ARGS, CPU_SCRATCH, CUDA_SCRATCH) \
  template <class T>                                    \
  void NAME(Ctx& ctx, const ARGS& a);
#include "../ops.inc"
#undef WERSA_OP

// The calling OpenMP thread's slice of per-thread scratch.
template <class T>
T* mine(const PerThread<T>& p) {
  return p.get(omp_get_thread_num());
}

}  // namespace wersa::cpu

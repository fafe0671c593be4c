// Linked into builds without CUDA: every op's cuda:: entry raises one clear error (the context of
// such a build cannot be a CUDA one, so these are reached only through a bug or a forced device).
#include "cuda/kernels.h"

namespace wersa::cuda {

#define WERSA_OP(NAME, ARGS, SCRATCH) \
  void NAME(Ctx&, const ARGS&) { unavailable(#NAME); }
#include "ops.inc"
#undef WERSA_OP

}  // namespace wersa::cuda

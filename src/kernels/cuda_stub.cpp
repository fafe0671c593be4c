// Linked into builds without CUDA: every op's cuda:: entry raises one clear error (the context of
// such a build cannot be a CUDA one, so these are reached only through a bug or a forced device).
#include "cuda/kernels.h"

namespace wersa::cuda {

#define WERSA_OP(NAME, ARGS, CPU_SCRATCH, CUDA_SCRATCH) \
  void NAME(Ctx&, const ARGS&) { unavailable(#NAME); }
#include "ops.inc"
#undef WERSA_OP

const std::vector<std::string>& pending_ops() {
  static const std::vector<std::string> all = {
#define WERSA_OP(NAME, ARGS, CPU_SCRATCH, CUDA_SCRATCH) #NAME,
#include "ops.inc"
#undef WERSA_OP
  };
  return all;
}

}  // namespace wersa::cuda

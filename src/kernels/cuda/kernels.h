// Internal: the CUDA kernels' entry points, one per op (src/kernels/ops.inc). In a CUDA build each
// is defined either by its kernel file or, until that kernel exists, by one line of
// src/kernels/cuda/pending.cpp; a build without CUDA links src/kernels/cuda_stub.cpp. A missing
// definition is a link error.
#pragma once
#include <string>
#include <vector>

#include "../op_args.h"

namespace wersa::cuda {

#define WERSA_OP(NAME, ARGS, CPU_SCRATCH, CUDA_SCRATCH) void NAME(Ctx& ctx, const ARGS& a);
#include "../ops.inc"
#undef WERSA_OP

// The ops whose CUDA kernel does not exist yet, by name (test_backend_ops reports them).
const std::vector<std::string>& pending_ops();

}  // namespace wersa::cuda

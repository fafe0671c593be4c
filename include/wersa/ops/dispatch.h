// Shared by the op dispatchers in src/ops: after an op has validated its arguments once, it
// calls WERSA_DISPATCH_CPU(op, args, dtype) to run the CPU kernel for f32 or f64, or reports
// that the CUDA backend does not provide the op.
#pragma once
#include "wersa/backend/backend.h"

#define WERSA_DISPATCH(OP, ARGS, DEVICE, DTYPE)                             \
  do {                                                                      \
    if ((DEVICE) == ::wersa::Device::CUDA) ::wersa::cuda::unavailable(#OP); \
    if ((DTYPE) == ::wersa::DType::F64)                                     \
      ::wersa::cpu::OP<double>(ARGS);                                       \
    else if ((DTYPE) == ::wersa::DType::F32)                                \
      ::wersa::cpu::OP<float>(ARGS);                                        \
    else                                                                    \
      WERSA_FAIL(#OP, ": unsupported dtype ", ::wersa::dtype_name(DTYPE));  \
  } while (0)

// Internal to the CUDA simulator: what its runtime (runtime.cpp) and its executor (exec.cpp) share.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

namespace wersa::sim {

// The error the next cudaGetLastError / synchronisation reports (cudaSuccess: none), and its
// message (what cudaGetErrorString returns for it).
void set_pending_error(cudaError_t e, const std::string& message);
// Dynamic shared memory a kernel may take (cudaFuncSetAttribute raises it above the default).
size_t max_dynamic_shared(const void* fn);

// The device the simulator presents (an H100-like part: what launch checks compare against).
constexpr int kMaxThreadsPerBlock = 1024;
constexpr size_t kDefaultSharedPerBlock = 48 << 10;
constexpr size_t kMaxSharedPerBlockOptin = 227 << 10;

}  // namespace wersa::sim

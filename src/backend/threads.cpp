#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string>

#include "wersa/backend/backend.h"

namespace wersa {

int set_cpu_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  return n;
}

int cpu_threads() { return omp_get_max_threads(); }

std::string blas_kernel_name() {
  const char* n = openblas_get_corename();
  return n ? n : "unknown";
}

namespace {

// OpenBLAS kernels for CPUs that Debian's 0.3.21 does not recognise (nullptr: keep its choice).
const char* blas_coretype_to_set() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return nullptr;  // the user's choice stands
  std::string core = blas_kernel_name();
  for (char& c : core) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (core != "prescott" && core != "unknown") return nullptr;  // recognised CPU
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

}  // namespace

void prepare_cpu_runtime(char** argv) {
  bool changed = false;
  if (std::getenv("OMP_WAIT_POLICY") == nullptr && std::getenv("GOMP_SPINCOUNT") == nullptr) {
    setenv("GOMP_SPINCOUNT", kOmpSpinCount, 1);
    changed = true;
  }
  if (const char* core = blas_coretype_to_set()) {
    setenv("OPENBLAS_CORETYPE", core, 1);
    changed = true;
  }
  if (changed) execv("/proc/self/exe", argv);
  // exec failed (no /proc?): carry on with libgomp's waiting and OpenBLAS's kernels as loaded, which
  // compute the same results, more slowly.
}

std::string omp_wait_setting() {
  if (const char* p = std::getenv("OMP_WAIT_POLICY")) return std::string("OMP_WAIT_POLICY=") + p;
  if (const char* n = std::getenv("GOMP_SPINCOUNT")) return std::string("GOMP_SPINCOUNT=") + n;
  return "libgomp default";
}

}  // namespace wersa

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>

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

void select_blas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user's choice stands
  std::string core = blas_kernel_name();
  for (char& c : core) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (core != "prescott" && core != "unknown") return;  // recognised CPU
  __builtin_cpu_init();
  const char* want = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    want = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    want = "Haswell";
  if (!want) return;
  setenv("OPENBLAS_CORETYPE", want, 1);
  execv("/proc/self/exe", argv);
  // exec failed (no /proc?): carry on with the slow kernels, which compute the same results.
}

}  // namespace wersa

#include <cblas.h>
#include <omp.h>

#include "wersa/backend/backend.h"

namespace wersa {

int set_cpu_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
  return n;
}

}  // namespace wersa

#include "wersa/common/version.h"

#include <cblas.h>

// The commit, regenerated at every build (cmake/wersa_commit.cmake): WERSA_GIT_COMMIT.
#include "wersa_commit.h"

// Set by CMakeLists.txt on this file: WERSA_VERSION, and in CUDA builds WERSA_CUDA_DESCRIPTION.
#ifndef WERSA_VERSION
#error "WERSA_VERSION is not defined (set by CMakeLists.txt)"
#endif

namespace wersa {

const char* version() { return WERSA_VERSION; }

const char* git_commit() { return WERSA_GIT_COMMIT; }

const char* backends() {
#if defined(WERSA_CUDA_SIM)
  return "CPU, CUDA simulator";
#elif defined(WERSA_WITH_CUDA)
  return "CPU, CUDA " WERSA_CUDA_DESCRIPTION;
#else
  return "CPU";
#endif
}

std::string blas_description() {
  const char* c = openblas_get_config();
  std::string s = c ? c : "OpenBLAS (configuration unknown)";
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.pop_back();
  return s;
}

std::string version_line() {
  return std::string("wersa ") + version() + " (commit " + git_commit() + "; backends " + backends() +
         "; BLAS " + blas_description() + ")";
}

}  // namespace wersa

// CUDA builds: the ops whose CUDA kernel does not exist yet, one line each. Each raises a clear
// error when a CUDA context reaches it. Writing a kernel means deleting its line here (keeping it
// is a duplicate-symbol link error; dropping it without a kernel, an undefined-symbol one).
#include "kernels.h"

namespace wersa::cuda {

std::vector<std::string>& pending_list() {
  static std::vector<std::string> ops;
  return ops;
}
const std::vector<std::string>& pending_ops() { return pending_list(); }

#define PENDING(NAME, ARGS)                            \
  void NAME(Ctx&, const ARGS&) { unavailable(#NAME); } \
  static const bool NAME##_listed = (pending_list().push_back(#NAME), true);

// (none: every op has a CUDA kernel)

#undef PENDING

}  // namespace wersa::cuda

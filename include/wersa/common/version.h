// What built this engine, for bug reports and for the files a run writes: every tool's
// --version prints version_line(), a training run logs it first, and a run's config.json and its
// checkpoints (config.json, model.safetensors' metadata) keep it under kWrittenByKey.
#pragma once
#include <string>

namespace wersa {

// The project version, "MAJOR.MINOR.PATCH" (CMakeLists.txt's project(VERSION)).
const char* version();
// The git commit the library was built from: `git describe --always --dirty` of the source
// checkout at build time (e.g. "b7e49f1a2c3d" or "b7e49f1a2c3d-dirty"), or "unknown" when it
// was not built from a git checkout.
const char* git_commit();
// The backends compiled in: "CPU", "CPU, CUDA 13.0 (sm_80 sm_90)" or "CPU, CUDA simulator".
const char* backends();
// The BLAS in use, as it describes itself at run time (OpenBLAS: its version, build options and
// the kernel family it picked, e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ... Zen MAX_THREADS=64").
std::string blas_description();
// One line with all of the above, e.g.
// "wersa 0.1.0 (commit b7e49f1a2c3d; backends CPU; BLAS OpenBLAS 0.3.21 ... Zen MAX_THREADS=64)".
std::string version_line();

// The key of a saved config.json (top level) and of model.safetensors' metadata that holds the
// version_line() of the engine that wrote the file. config_from_json accepts it (a string) and
// ignores it, so a saved config.json still loads, and can be used as a --config.
inline constexpr const char* kWrittenByKey = "written_by";

}  // namespace wersa

// Linked into builds without CUDA: every cuda:: memory entry raises one clear error.
#include "wersa/backend/backend.h"
#include "wersa/common/error.h"

namespace wersa::cuda {

[[noreturn]] void unavailable(const char* op) {
  WERSA_FAIL(op,
             ": this build of wersa has no CUDA backend (configure with -DWERSA_CUDA=ON and a CUDA toolkit)");
}
void* alloc(size_t) { unavailable("cuda alloc"); }
void free(void*) { unavailable("cuda free"); }
void memset0(void*, size_t) { unavailable("cuda memset"); }
void copy_h2d(void*, const void*, size_t, void*) { unavailable("cuda copy"); }
void copy_d2h(void*, const void*, size_t, void*) { unavailable("cuda copy"); }
void copy_d2d(void*, const void*, size_t, void*) { unavailable("cuda copy"); }
void memset0_async(void*, size_t, void*) { unavailable("cuda memset"); }
void* alloc_pinned(size_t) { unavailable("cuda pinned memory"); }
void free_pinned(void*) {}
void sync() {}
void* stream_create() { unavailable("cuda stream"); }
void stream_destroy(void*) {}
void stream_sync(void*) {}
bool available() { return false; }
size_t memory_available() { return 0; }
void* blas_create(void*) { unavailable("cuBLAS"); }
void blas_destroy(void*) {}

}  // namespace wersa::cuda

#include "wersa/tensor/context.h"

#include <algorithm>
#include <cstring>

namespace wersa {

Ctx::Ctx(Device device, ScratchPolicy policy) : device_(device), policy_(policy) {
  if (device_ == Device::CUDA) stream_ = cuda::stream_create();
}

Ctx::~Ctx() {
  if (stream_) cuda::stream_sync(stream_);  // nothing of this context may still run
  device_free(device_, base_);
  for (void* p : overflow_) device_free(device_, p);
  if (blas_) cuda::blas_destroy(blas_);
  if (stream_) cuda::stream_destroy(stream_);
}

void Ctx::sync() {
  if (stream_) cuda::stream_sync(stream_);
}

void* Ctx::blas() {
  WERSA_ASSERT(device_ == Device::CUDA, "a BLAS handle is a CUDA context's");
  if (!blas_) blas_ = cuda::blas_create(stream_);
  return blas_;
}

void OpTimes::add(const char* op, double seconds) {
  for (Entry& e : entries)
    if (e.op == op || std::strcmp(e.op, op) == 0) {  // one literal per op name and translation unit
      e.seconds += seconds, ++e.calls;
      return;
    }
  entries.push_back(Entry{op, seconds, 1});
}

void OpTimes::add_gemm(const char* op, const char* products, int64_t n, int64_t i, int64_t o, double flops,
                       double seconds) {
  for (Gemm& g : gemms)
    if (g.n == n && g.i == i && g.o == o && std::strcmp(g.op, op) == 0 &&
        std::strcmp(g.products, products) == 0) {
      g.seconds += seconds, g.flops += flops, ++g.calls;
      return;
    }
  gemms.push_back(Gemm{op, products, n, i, o, seconds, flops, 1});
}

double OpTimes::total_seconds() const {
  double s = 0;
  for (const Entry& e : entries) s += e.seconds;
  return s;
}

int Ctx::threads() const { return device_ == Device::CPU ? cpu_threads() : 1; }

void Ctx::plan(const std::function<void()>& fn) {
  WERSA_ASSERT(!planning_ && depth_ == 0, "nested planning");
  planning_ = true;
  try {
    fn();
  } catch (...) {
    planning_ = false;
    depth_ = 0;
    throw;
  }
  planning_ = false;
  if (peak_ > capacity_) {
    sync();  // the old scratch may still be in use by queued kernels
    device_free(device_, base_);
    base_ = device_alloc(device_, peak_);
    capacity_ = peak_;
  }
}

void Ctx::enter() {
  if (depth_++ > 0) return;
  offset_ = 0;
  if (policy_ == ScratchPolicy::Grow && peak_ > capacity_ && !planning_) {
    sync();
    device_free(device_, base_);
    base_ = device_alloc(device_, peak_);
    capacity_ = peak_;
  }
}

void Ctx::leave() {
  WERSA_ASSERT(depth_ > 0, "unbalanced scratch scope");
  if (--depth_ > 0) return;
  if (!overflow_.empty()) sync();  // queued kernels may still read the blocks
  for (void* p : overflow_) device_free(device_, p);
  overflow_.clear();
}

void* Ctx::take_bytes(size_t bytes) {
  WERSA_ASSERT(depth_ > 0, "scratch taken outside an op call");
  const size_t start = offset_;
  offset_ += (bytes + 63) / 64 * 64;
  peak_ = std::max(peak_, offset_);
  if (planning_) return nullptr;
  if (offset_ <= capacity_) return static_cast<char*>(base_) + start;
  WERSA_ASSERT(policy_ == ScratchPolicy::Grow, "an op call takes ", offset_, " bytes of scratch but ",
               capacity_, " were planned (an op sequence the planning did not see)");
  // Grow: this call gets a block of its own; the next call starts with a scratch of peak size.
  overflow_.push_back(device_alloc(device_, bytes));
  return overflow_.back();
}

}  // namespace wersa

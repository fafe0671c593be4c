// CUDA zeroing of the padded rows (formula in include/wersa/ops/mask.h): one thread per element
// of y, grid-stride; element e is in row r = e / W (b = r / T, t = r % T). A real row is copied
// (nothing written in place), a padded row gets 0 without reading x. Each element is read and
// written at most once.
// Bad lengths: the CPU kernel checks them before writing; here they are on the device, so a
// sequence whose length is outside [1, T] gets NaN in all its rows of y instead (no access
// depends on the length's value).
#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/mask.h"

namespace wersa::cuda {

namespace {

__device__ inline void set_nan(float& y) { y = nanf(""); }
__device__ inline void set_nan(double& y) { y = nan(""); }

template <class T>
__global__ void mask_kernel(T* y, const T* x, const int32_t* len, int64_t Tn, int64_t W, int64_t n) {
  const bool in_place = x == y;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const int64_t r = e / W, b = r / Tn, t = r % Tn;
    const int64_t nb = len[b];
    if (nb < 1 || nb > Tn)
      set_nan(y[e]);
    else if (t >= nb)
      y[e] = T(0);
    else if (!in_place)
      y[e] = x[e];
  }
}

}  // namespace

void mask_padding(Ctx& ctx, const MaskPadding& a) {
  const int64_t B = a.x.dim(0), Tn = a.x.dim(1), R = B * Tn, n = a.x.numel();
  if (n == 0) return;
  const int64_t W = n / R;
  by_dtype(a.y.dtype, "mask_padding", [&](auto tag) {
    using T = decltype(tag);
    WERSA_LAUNCH(mask_kernel<T>, blocks_for(n), kThreads, 0, stream(ctx), a.y.ptr<T>(), a.x.ptr<T>(),
                 a.lengths.ptr<int32_t>(), Tn, W, n);
  });
}

}  // namespace wersa::cuda

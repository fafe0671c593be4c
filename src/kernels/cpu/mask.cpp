// CPU zeroing of the padded rows (formula in include/wersa/ops/mask.h). Parallel over rows (b, t);
// a real row is copied (skipped when in place), a padded row filled with 0 without reading x.
#include "wersa/ops/mask.h"

#include <algorithm>

#include "kernels.h"
#include "lengths.h"
#include "parallel.h"

namespace wersa::cpu {

template <class T>
void mask_padding(Ctx&, const MaskPadding& a) {
  const int64_t B = a.x.dim(0), Tn = a.x.dim(1), R = B * Tn, W = R ? a.x.numel() / R : 0;
  const int32_t* len = checked_lengths("mask_padding", a.lengths, Tn);
  const T* x = a.x.ptr<T>();
  T* y = a.y.ptr<T>();
  const bool in_place = x == y;
  parallel_for(R, a.x.numel() >= kParallelMinElems, [&](int64_t r) {
    const int64_t b = r / Tn, t = r % Tn;
    T* yr = y + r * W;
    if (t >= len[b])
      std::fill_n(yr, W, T(0));
    else if (!in_place)
      std::copy_n(x + r * W, W, yr);
  });
}

template void mask_padding<float>(Ctx&, const MaskPadding&);
template void mask_padding<double>(Ctx&, const MaskPadding&);

}  // namespace wersa::cpu

// CPU rotary embedding (rotate_half pairs (i, i + d/2)). The cos/sin table of the T positions
// pos0 .. pos0 + T - 1 is computed in double once per call and shared by batch rows and heads:
// std::cos/sin at every 64th position and of the 64 offsets, the angle-sum formulas in between
// (about 1e-16 from the direct values; a sincos per position and frequency was a visible share
// of a long sequence's training step).
// The table is rounded once to the tensors' type and the rotation runs in that type (f32: within
// about 2 ulp of the rotation in double; 16 lanes instead of 8 and half the table's bytes).
// Forward rotates by +angle, backward by -angle (R^T = R(-angle)). Each pair is read before it
// is written, so y may alias x. Scratch: the inverse frequencies [d/2] and the offsets
// [2, min(T, 64), d/2] (double), the table [2, T, d/2] (T).
#include "wersa/ops/rope.h"

#include <algorithm>
#include <cmath>

#include "kernels.h"
#include "parallel.h"

namespace wersa::cpu {
namespace {

// Positions per block of the table: each block's base angle takes one cos and one sin, the rest
// come from the angle-sum formulas (a multiply-add pair, in double).
constexpr int64_t kAngleStep = 64;

template <class T>
void rope_rotate(Ctx& ctx, const RopeArgs& a, double sign) {
  const int64_t B = a.x.dim(0), Tn = a.x.dim(1), H = a.x.dim(2), d = a.x.dim(3), half = d / 2;
  double* inv_freq = ctx.take<double>(half);
  // cos at [t * half + i], sin at [(Tn + t) * half + i]; sign folded into sin. Computed in double,
  // stored in T: the rotation runs in the tensors' type.
  T* table = ctx.take<T>(2 * Tn * half);
  const int64_t nk = std::min(kAngleStep, Tn);
  double* step = ctx.take<double>(2 * nk * half);  // cos, sin of k * w_i for k < nk
  if (ctx.planning()) return;
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::pow(a.theta, -2.0 * double(i) / double(d));
  for (int64_t k = 0; k < nk; ++k)
    for (int64_t i = 0; i < half; ++i) {
      step[k * half + i] = std::cos(double(k) * inv_freq[i]);
      step[(nk + k) * half + i] = std::sin(double(k) * inv_freq[i]);
    }
  // Position pos0 + j * kAngleStep + k: the angle-sum formulas from the base angle of block j
  // (exact at k = 0, so a single position is std::cos / std::sin of its angle).
  const int64_t nblk = (Tn + kAngleStep - 1) / kAngleStep;
  parallel_for(nblk, Tn * half >= kParallelMinElems, [&](int64_t j) {
    const double base = double(a.pos0 + j * kAngleStep);
    for (int64_t i = 0; i < half; ++i) {
      const double cb = std::cos(base * inv_freq[i]), sb = std::sin(base * inv_freq[i]);
      for (int64_t k = 0; k < nk && j * kAngleStep + k < Tn; ++k) {
        const int64_t t = j * kAngleStep + k;
        const double ck = step[k * half + i], sk = step[(nk + k) * half + i];
        table[t * half + i] = T(cb * ck - sb * sk);
        table[(Tn + t) * half + i] = T(sign * (sb * ck + cb * sk));
      }
    }
  });
  const T* x = a.x.ptr<T>();
  T* y = a.y.ptr<T>();
  const int64_t rows = B * Tn * H;
  parallel_for(rows, rows * d >= kParallelMinElems, [&](int64_t row) {
    const int64_t t = (row / H) % Tn;
    const T* cs = table + t * half;
    const T* sn = table + (Tn + t) * half;
    const T* xr = x + row * d;
    T* yr = y + row * d;
    for (int64_t i = 0; i < half; ++i) {
      const T x1 = xr[i], x2 = xr[i + half];
      yr[i] = x1 * cs[i] - x2 * sn[i];
      yr[i + half] = x2 * cs[i] + x1 * sn[i];
    }
  });
}

}  // namespace

template <class T>
void rope_fwd(Ctx& ctx, const RopeArgs& a) {
  rope_rotate<T>(ctx, a, 1.0);
}

template <class T>
void rope_bwd(Ctx& ctx, const RopeArgs& a) {
  rope_rotate<T>(ctx, a, -1.0);
}

template void rope_fwd<float>(Ctx&, const RopeArgs&);
template void rope_fwd<double>(Ctx&, const RopeArgs&);
template void rope_bwd<float>(Ctx&, const RopeArgs&);
template void rope_bwd<double>(Ctx&, const RopeArgs&);

}  // namespace wersa::cpu

// CPU rotary embedding (rotate_half pairs (i, i + d/2)). The cos/sin table of the T positions
// pos0 .. pos0 + T - 1 is computed in double once per call and shared by batch rows and heads.
// Forward rotates by +angle, backward by -angle (R^T = R(-angle)). Each pair is read before it
// is written, so y may alias x. Scratch: the inverse frequencies [d/2] and the table [2, T, d/2]
// (double).
#include "wersa/ops/rope.h"

#include <cmath>

#include "kernels.h"
#include "parallel.h"

namespace wersa::cpu {
namespace {

template <class T>
void rope_rotate(Ctx& ctx, const RopeArgs& a, double sign) {
  const int64_t B = a.x.dim(0), Tn = a.x.dim(1), H = a.x.dim(2), d = a.x.dim(3), half = d / 2;
  double* inv_freq = ctx.take<double>(half);
  // cos at [t * half + i], sin at [(Tn + t) * half + i]; sign folded into sin.
  double* table = ctx.take<double>(2 * Tn * half);
  if (ctx.planning()) return;
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::pow(a.theta, -2.0 * double(i) / double(d));
  parallel_for(Tn, Tn * half >= kParallelMinElems, [&](int64_t t) {
    const double pos = double(a.pos0 + t);
    for (int64_t i = 0; i < half; ++i) {
      const double angle = pos * inv_freq[i];
      table[t * half + i] = std::cos(angle);
      table[(Tn + t) * half + i] = sign * std::sin(angle);
    }
  });
  const T* x = a.x.ptr<T>();
  T* y = a.y.ptr<T>();
  const int64_t rows = B * Tn * H;
  parallel_for(rows, rows * d >= kParallelMinElems, [&](int64_t row) {
    const int64_t t = (row / H) % Tn;
    const double* cs = table + t * half;
    const double* sn = table + (Tn + t) * half;
    const T* xr = x + row * d;
    T* yr = y + row * d;
    for (int64_t i = 0; i < half; ++i) {
      const double x1 = double(xr[i]), x2 = double(xr[i + half]);
      yr[i] = T(x1 * cs[i] - x2 * sn[i]);
      yr[i + half] = T(x2 * cs[i] + x1 * sn[i]);
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

// CPU rotary embedding (rotate_half pairs (i, i + d/2)). The cos/sin table of the T positions
// pos0 .. pos0 + T - 1 is computed in double once per call and shared by batch rows and heads.
// Forward rotates by +angle, backward by -angle (R^T = R(-angle)). Each pair is read before it
// is written, so y may alias x.
#include "wersa/ops/rope.h"

#include <cmath>

#include "parallel.h"
#include "reduce.h"

namespace wersa::cpu {
namespace {

template <class T>
void rope_rotate(const RopeArgs& a, double sign) {
  const int64_t B = a.x.dim(0), Tn = a.x.dim(1), H = a.x.dim(2), d = a.x.dim(3), half = d / 2;
  double* inv_freq = scratch_f64(size_t(half), 1);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::pow(a.theta, -2.0 * double(i) / double(d));
  // cos at [t * half + i], sin at [(Tn + t) * half + i]; sign folded into sin.
  double* table = scratch_f64(size_t(2 * Tn * half), 0);
#pragma omp parallel for schedule(static) if (Tn * half >= kParallelMinElems)
  for (int64_t t = 0; t < Tn; ++t) {
    const double pos = double(a.pos0 + t);
    for (int64_t i = 0; i < half; ++i) {
      const double angle = pos * inv_freq[i];
      table[t * half + i] = std::cos(angle);
      table[(Tn + t) * half + i] = sign * std::sin(angle);
    }
  }
  const T* x = a.x.ptr<T>();
  T* y = a.y.ptr<T>();
  const int64_t rows = B * Tn * H;
#pragma omp parallel for schedule(static) if (rows * d >= kParallelMinElems)
  for (int64_t row = 0; row < rows; ++row) {
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
  }
}

}  // namespace

template <class T>
void rope_fwd(const RopeArgs& a) {
  rope_rotate<T>(a, 1.0);
}

template <class T>
void rope_bwd(const RopeArgs& a) {
  rope_rotate<T>(a, -1.0);
}

template void rope_fwd<float>(const RopeArgs&);
template void rope_fwd<double>(const RopeArgs&);
template void rope_bwd<float>(const RopeArgs&);
template void rope_bwd<double>(const RopeArgs&);

}  // namespace wersa::cpu

// CUDA rotary embedding (formula in include/wersa/ops/rope.h; rotate_half pairs (i, i + d/2)).
// As on the CPU (src/kernels/cpu/rope.cpp), the cos/sin table of the T positions is computed in
// double, by the same angle-sum formulas from the same base angles (cos/sin of pos0 + 64 j and of
// the offset k < 64), rounded once to T and kept in scratch [2, T, d/2]; the rotation runs in T.
// Two launches: the table (one thread per (t, i)), then the rotation (one thread per pair
// (row, i) of the B T heads rows, grid-stride; consecutive threads take consecutive i). A thread
// reads both elements of its pair before writing them, so y may alias x.
#include "common.cuh"
#include "kernels.h"
#include "wersa/ops/rope.h"

namespace wersa::cuda {

namespace {

constexpr int64_t kAngleStep = 64;  // positions per base angle: the CPU kernel's kAngleStep

// cos at table[t * half + i], sign * sin at table[(Tn + t) * half + i].
template <class T>
__global__ void rope_table(T* table, int64_t Tn, int64_t half, int64_t d, double theta, int64_t pos0,
                           double sign) {
  const int64_t n = Tn * half;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const int64_t t = e / half, i = e % half;
    const double inv_freq = pow(theta, -2.0 * double(i) / double(d));
    const int64_t j = t / kAngleStep, k = t % kAngleStep;
    const double base = double(pos0 + j * kAngleStep);
    const double cb = cos(base * inv_freq), sb = sin(base * inv_freq);
    const double ck = cos(double(k) * inv_freq), sk = sin(double(k) * inv_freq);
    table[t * half + i] = T(cb * ck - sb * sk);
    table[(Tn + t) * half + i] = T(sign * (sb * ck + cb * sk));
  }
}

template <class T>
__global__ void rope_rotate(T* y, const T* x, const T* table, int64_t rows, int64_t Tn, int64_t H,
                            int64_t half) {
  const int64_t n = rows * half, d = 2 * half;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n;
       e += int64_t(blockDim.x) * gridDim.x) {
    const int64_t row = e / half, i = e % half, t = (row / H) % Tn;
    const T cs = table[t * half + i], sn = table[(Tn + t) * half + i];
    const T x1 = x[row * d + i], x2 = x[row * d + i + half];
    y[row * d + i] = x1 * cs - x2 * sn;
    y[row * d + i + half] = x2 * cs + x1 * sn;
  }
}

void rope(Ctx& ctx, const RopeArgs& a, double sign, const char* op) {
  const int64_t B = a.x.dim(0), Tn = a.x.dim(1), H = a.x.dim(2), d = a.x.dim(3), half = d / 2;
  by_dtype(a.x.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    T* table = ctx.take<T>(2 * Tn * half);
    if (ctx.planning()) return;
    const int64_t rows = B * Tn * H;
    if (rows == 0) return;
    WERSA_LAUNCH(rope_table<T>, blocks_for(Tn * half), kThreads, 0, stream(ctx), table, Tn, half, d, a.theta,
                 a.pos0, sign);
    WERSA_LAUNCH(rope_rotate<T>, blocks_for(rows * half), kThreads, 0, stream(ctx), a.y.ptr<T>(),
                 a.x.ptr<T>(), static_cast<const T*>(table), rows, Tn, H, half);
  });
}

}  // namespace

void rope_fwd(Ctx& ctx, const RopeArgs& a) { rope(ctx, a, 1.0, "rope_fwd"); }

void rope_bwd(Ctx& ctx, const RopeArgs& a) { rope(ctx, a, -1.0, "rope_bwd"); }

}  // namespace wersa::cuda

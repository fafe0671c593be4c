// CPU pooling over each sequence's real rows (formulas in include/wersa/ops/pool.h). Parallel over
// sequences; for each sequence and column the mean is a serial sum in double over t.
#include "wersa/ops/pool.h"

#include <algorithm>
#include <vector>

#include "kernels.h"
#include "lengths.h"
#include "parallel.h"

namespace wersa::cpu {

template <class T>
void pool_fwd(Ctx&, const PoolFwd& a) {
  const int64_t B = a.x.dim(0), Tn = a.x.dim(1), D = a.x.dim(2);
  const int32_t* len = checked_lengths("pool_fwd", a.lengths, Tn);
  const T* x = a.x.ptr<T>();
  T* p = a.p.ptr<T>();
  parallel_for(B, B * Tn * D >= kParallelMinElems, [&](int64_t b) {
    const int64_t n = len[b];
    const T* xb = x + b * Tn * D;
    T* pb = p + b * D;
    if (a.kind == PoolKind::Last) {
      std::copy_n(xb + (n - 1) * D, D, pb);
      return;
    }
    std::vector<double> acc(size_t(D), 0.0);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < D; ++j) acc[size_t(j)] += double(xb[t * D + j]);
    for (int64_t j = 0; j < D; ++j) pb[j] = T(acc[size_t(j)] / double(n));
  });
}

template <class T>
void pool_bwd(Ctx&, const PoolBwd& a) {
  const int64_t B = a.dx.dim(0), Tn = a.dx.dim(1), D = a.dx.dim(2);
  const int32_t* len = checked_lengths("pool_bwd", a.lengths, Tn);
  const T* dp = a.dp.ptr<T>();
  T* dx = a.dx.ptr<T>();
  parallel_for(B, B * Tn * D >= kParallelMinElems, [&](int64_t b) {
    const int64_t n = len[b];
    const T* g = dp + b * D;
    T* db = dx + b * Tn * D;
    std::fill_n(db, Tn * D, T(0));
    if (a.kind == PoolKind::Last) {
      std::copy_n(g, D, db + (n - 1) * D);
      return;
    }
    const double inv = 1.0 / double(n);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < D; ++j) db[t * D + j] = T(double(g[j]) * inv);
  });
}

template void pool_fwd<float>(Ctx&, const PoolFwd&);
template void pool_fwd<double>(Ctx&, const PoolFwd&);
template void pool_bwd<float>(Ctx&, const PoolBwd&);
template void pool_bwd<double>(Ctx&, const PoolBwd&);

}  // namespace wersa::cpu

// CPU elementwise helpers: add, axpy, scale, and a deterministic sum of squares.
#include "wersa/ops/elementwise.h"

#include "reduce.h"

namespace wersa::cpu {

template <class T>
void add_fwd(const AddFwd& a) {
  const int64_t n = a.y.numel();
  const T* pa = a.a.ptr<T>();
  const T* pb = a.b.ptr<T>();
  T* y = a.y.ptr<T>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = pa[i] + pb[i];
}

template <class T>
void axpy(const AxpyArgs& a) {
  const int64_t n = a.y.numel();
  const double alpha = a.alpha;
  const T* x = a.x.ptr<T>();
  T* y = a.y.ptr<T>();
  // In double, rounded once: gradient accumulation in f32 loses less to cancellation.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = T(double(y[i]) + alpha * double(x[i]));
}

template <class T>
void scale_inplace(const ScaleArgs& a) {
  const int64_t n = a.x.numel();
  const T alpha = T(a.alpha);
  T* x = a.x.ptr<T>();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] *= alpha;
}

template <class T>
double sum_squares(const Tensor& t) {
  const int64_t n = t.numel();
  const T* x = t.ptr<T>();
  const FixedBlocks blocks(n, 1024);
  double* part = scratch_f64(size_t(blocks.count));
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks.count; ++b) {
    double s = 0;
    for (int64_t i = blocks.begin(b); i < blocks.end(b); ++i) s += double(x[i]) * double(x[i]);
    part[b] = s;
  }
  double total = 0;
  for (int64_t b = 0; b < blocks.count; ++b) total += part[b];
  return total;
}

template void add_fwd<float>(const AddFwd&);
template void add_fwd<double>(const AddFwd&);
template void axpy<float>(const AxpyArgs&);
template void axpy<double>(const AxpyArgs&);
template void scale_inplace<float>(const ScaleArgs&);
template void scale_inplace<double>(const ScaleArgs&);
template double sum_squares<float>(const Tensor&);
template double sum_squares<double>(const Tensor&);

}  // namespace wersa::cpu

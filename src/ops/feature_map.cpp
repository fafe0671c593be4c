#include "wersa/ops/feature_map.h"

#include <cmath>

#include "wersa/common/rng.h"
#include "wersa/ops/dispatch.h"

namespace wersa {
namespace {

// omega [d, m]; `rows` [..., d] (rank 2-4) and `feats` [..., m] with the same leading dimensions.
void check_shapes(const char* op, const Tensor& rows, const char* rows_name, const Tensor& feats,
                  const Tensor& omega) {
  WERSA_CHECK(omega.rank() == 2 && omega.dim(0) >= 1 && omega.dim(1) >= 1, op,
              ": omega must be [d, m] with d, m >= 1: ", omega.describe());
  WERSA_CHECK(rows.rank() >= 2 && rows.rank() <= 4, op, ": ", rows_name,
              " must have rank 2-4: ", rows.describe());
  Shape want = rows.shape;
  want.dim[want.rank - 1] = omega.dim(0);
  check_shape(op, rows, want);
  want.dim[want.rank - 1] = omega.dim(1);
  check_shape(op, feats, want);
}

}  // namespace

void feature_map_fwd(const FeatureMapFwd& a) {
  const char* op = "feature_map_fwd";
  check_defined(op, a.phi, "phi");
  check_defined(op, a.x, "x");
  check_defined(op, a.omega, "omega");
  check_shapes(op, a.x, "x", a.phi, a.omega);
  for (const Tensor* t : {&a.x, &a.omega}) check_dtype(op, *t, a.phi.dtype);
  check_same_device(op, {&a.phi, &a.x, &a.omega});
  WERSA_DISPATCH(feature_map_fwd, a, a.phi.device, a.phi.dtype);
}

void feature_map_bwd(const FeatureMapBwd& a) {
  const char* op = "feature_map_bwd";
  check_defined(op, a.dx, "dx");
  check_defined(op, a.dphi, "dphi");
  check_defined(op, a.phi, "phi");
  check_defined(op, a.omega, "omega");
  check_shapes(op, a.dx, "dx", a.dphi, a.omega);
  check_shape(op, a.phi, a.dphi.shape);
  for (const Tensor* t : {&a.dx, &a.phi, &a.omega}) check_dtype(op, *t, a.dphi.dtype);
  check_same_device(op, {&a.dx, &a.dphi, &a.phi, &a.omega});
  WERSA_DISPATCH(feature_map_bwd, a, a.dphi.device, a.dphi.dtype);
}

void init_omega(const Tensor& omega, uint64_t seed, uint64_t stream) {
  const char* op = "init_omega";
  check_defined(op, omega, "omega");
  WERSA_CHECK(omega.rank() == 2 && omega.dim(0) >= 1 && omega.dim(1) >= 1, op,
              ": omega must be [d, m] with d, m >= 1: ", omega.describe());
  WERSA_CHECK(omega.device == Device::CPU, op, ": omega must be in host memory: ", omega.describe());
  WERSA_CHECK(omega.dtype == DType::F32 || omega.dtype == DType::F64, op,
              ": omega must be f32 or f64: ", omega.describe());
  const double sd = 1.0 / std::sqrt(double(omega.dim(0)));
  const int64_t n = omega.numel();
  if (omega.dtype == DType::F64) {
    double* p = omega.ptr<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = sd * rng_normal(seed, stream, uint64_t(i));
  } else {
    float* p = omega.ptr<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = float(sd * rng_normal(seed, stream, uint64_t(i)));
  }
}

}  // namespace wersa

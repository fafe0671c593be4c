#include "wersa/ops/feature_map.h"

#include <cmath>

#include "check.h"
#include "dispatch.h"
#include "wersa/common/rng.h"

namespace wersa {
namespace {

// omega [d, m]; `rows` [..., d] (rank 2-4) and `feats` [..., m] with the same leading dimensions.
void check_shapes(const detail::ArgCheck& c, const Tensor& rows, const char* rows_name, const Tensor& feats,
                  const Tensor& omega) {
  c.that(omega.rank() == 2 && omega.dim(0) >= 1 && omega.dim(1) >= 1,
         "omega must be [d, m] with d, m >= 1: ", omega);
  c.that(rows.rank() >= 2 && rows.rank() <= 4, rows_name, " must have rank 2-4: ", rows);
  Shape want = rows.shape;
  want.dim[want.rank - 1] = omega.dim(0);
  check_shape(c.op(), rows, want);
  want.dim[want.rank - 1] = omega.dim(1);
  check_shape(c.op(), feats, want);
}

}  // namespace

void feature_map_fwd(Ctx& ctx, const FeatureMapFwd& a) {
  const detail::ArgCheck c(ctx, "feature_map_fwd");
  c.need(a.phi, "phi").need(a.x, "x").need(a.omega, "omega");
  check_shapes(c, a.x, "x", a.phi, a.omega);
  c.floating(a.phi).dtype(a.phi.dtype, {&a.x, &a.omega});
  WERSA_DISPATCH(ctx, feature_map_fwd, a, a.phi.dtype);
}

void feature_map_bwd(Ctx& ctx, const FeatureMapBwd& a) {
  const detail::ArgCheck c(ctx, "feature_map_bwd");
  c.need(a.dx, "dx").need(a.dphi, "dphi").need(a.phi, "phi").need(a.omega, "omega");
  check_shapes(c, a.dx, "dx", a.dphi, a.omega);
  c.need(a.phi, "phi", a.dphi.shape).floating(a.dphi).dtype(a.dphi.dtype, {&a.dx, &a.phi, &a.omega});
  if (a.kind == FeatureMapKind::Exp) c.need(a.x, "x", a.dx.shape).dtype(a.dphi.dtype, {&a.x});
  WERSA_DISPATCH(ctx, feature_map_bwd, a, a.dphi.dtype);
}

void init_omega(const Tensor& omega, uint64_t seed, uint64_t stream, FeatureMapKind kind) {
  const char* op = "init_omega";
  check_defined(op, omega, "omega");
  WERSA_CHECK(omega.rank() == 2 && omega.dim(0) >= 1 && omega.dim(1) >= 1, op,
              ": omega must be [d, m] with d, m >= 1: ", omega);
  WERSA_CHECK(omega.device == Device::CPU, op, ": omega must be in host memory: ", omega);
  WERSA_CHECK(omega.dtype == DType::F32 || omega.dtype == DType::F64, op,
              ": omega must be f32 or f64: ", omega);
  const double sd = kind == FeatureMapKind::Exp ? 1.0 : 1.0 / std::sqrt(double(omega.dim(0)));
  const int64_t n = omega.numel();
  if (omega.dtype == DType::F64) {
    double* p = omega.host<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = sd * rng_normal(seed, stream, uint64_t(i));
  } else {
    float* p = omega.host<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = float(sd * rng_normal(seed, stream, uint64_t(i)));
  }
}

}  // namespace wersa

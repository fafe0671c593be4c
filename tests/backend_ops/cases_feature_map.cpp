// test_backend_ops cases: the random-feature maps (include/wersa/ops/feature_map.h), relu and exp,
// f32 and f64. x of rank 2, 3 and 4; d from 1 to 64 and m from 1 to 256 (odd sizes, m below and
// above the row kernels' thread counts); no rows; NaN and infinities in x (relu: NaN rows give 0)
// and in dphi; a backward of more rows than one scratch chunk (R m > 2^20). Omega as init_omega
// draws it (N(0, 1/d) for relu, N(0, 1) for exp); the backward's phi positive (exp) or of both
// signs (relu: the mask).
#include <cmath>

#include "backend_ops.h"
#include "wersa/ops/feature_map.h"

namespace wersa::test {

namespace {

std::string shape_name(DType dt, Shape x, int64_t m, FeatureMapKind kind) {
  return std::string(dt == DType::F32 ? "f32" : "f64") + " x" + x.str() + " m" + std::to_string(m) +
         (kind == FeatureMapKind::Exp ? " exp" : " relu");
}

Shape with_last(Shape s, int64_t n) {
  s.dim[s.rank - 1] = n;
  return s;
}

// Products summed in another order (cuBLAS), and on a GPU expf within its ulps: seen in the
// simulator up to 4e-14 (f32) and 3e-31 (f64).
double tol(DType dt) { return dt == DType::F32 ? 1e-11 : 1e-26; }

double omega_sd(int64_t d, FeatureMapKind kind) {
  return kind == FeatureMapKind::Exp ? 1.0 : 1.0 / std::sqrt(double(d));
}

void add_fwd(std::vector<OpCase>& out, DType dt, Shape xs, int64_t m, FeatureMapKind kind,
             bool special = false) {
  const int64_t d = xs[xs.rank - 1];
  OpCase c("feature_map_fwd", "feature_map_fwd " + shape_name(dt, xs, m, kind) + (special ? " special" : ""));
  c.in("x", xs, dt, special ? Fill::Special : Fill::Normal)
      .in("omega", {d, m}, dt, Fill::Normal, 0, omega_sd(d, kind));
  c.out("phi", with_last(xs, m), dt);
  c.max_err = tol(dt);
  c.run = [kind](Ctx& ctx, const Bound& t) {
    feature_map_fwd(ctx, FeatureMapFwd{t["phi"], t["x"], t["omega"], kind});
  };
  out.push_back(c);
}

void add_bwd(std::vector<OpCase>& out, DType dt, Shape xs, int64_t m, FeatureMapKind kind,
             bool special = false) {
  const int64_t d = xs[xs.rank - 1];
  const bool is_exp = kind == FeatureMapKind::Exp;
  OpCase c("feature_map_bwd", "feature_map_bwd " + shape_name(dt, xs, m, kind) + (special ? " special" : ""));
  const Shape ps = with_last(xs, m);
  c.in("dphi", ps, dt, special ? Fill::Special : Fill::Normal)
      .in("omega", {d, m}, dt, Fill::Normal, 0, omega_sd(d, kind));
  if (is_exp)
    c.in("phi", ps, dt, Fill::Uniform, 0, 2).in("x", xs, dt);
  else
    c.in("phi", ps, dt);
  c.out("dx", xs, dt);
  c.max_err = tol(dt);
  c.run = [kind, is_exp](Ctx& ctx, const Bound& t) {
    feature_map_bwd(
        ctx, FeatureMapBwd{t["dx"], t["dphi"], t["phi"], t["omega"], is_exp ? t["x"] : Tensor{}, kind});
  };
  out.push_back(c);
}

}  // namespace

void add_feature_map_cases(std::vector<OpCase>& out) {
  for (DType dt : {DType::F32, DType::F64})
    for (FeatureMapKind kind : {FeatureMapKind::Relu, FeatureMapKind::Exp}) {
      const Shape xs[] = {{1, 1}, {1, 7}, {5, 16}, {3, 7, 33}, {2, 3, 5, 64}, {0, 8}, {2, 0, 8}};
      for (const Shape& s : xs)
        for (int64_t m : {1, 16, 33, 256}) {
          add_fwd(out, dt, s, m, kind);
          add_bwd(out, dt, s, m, kind);
        }
      add_fwd(out, dt, {40, 9}, 20, kind, true);
      add_bwd(out, dt, {40, 9}, 20, kind, true);
      add_fwd(out, dt, {2, 100, 64}, 64, kind);
      add_bwd(out, dt, {2, 100, 64}, 64, kind);
    }
  // More rows than one chunk of the backward's scratch (R m > 2^20), and a realistic size.
  add_bwd(out, DType::F32, {2, 9000, 64}, 64, FeatureMapKind::Relu);
  add_bwd(out, DType::F32, {2, 9000, 64}, 64, FeatureMapKind::Exp);
  add_fwd(out, DType::F32, {4, 4, 512, 64}, 128, FeatureMapKind::Relu);
  add_fwd(out, DType::F32, {4, 4, 512, 64}, 128, FeatureMapKind::Exp);
}

}  // namespace wersa::test

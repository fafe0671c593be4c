// test_backend_ops cases: RMSNorm forward (rstd saved or not) and backward (dx overwritten or
// accumulated or skipped, dw accumulated or skipped), f32 and f64. Shapes: N in {1, 7, 64, 130}
// and C in {1, 7, 33, 64, 100, 257, 1000} for the main variants; no rows; N = 1100 (several rows
// per parameter chunk); wide rows (C = 3000, 6000, 12000: the kernels' shared-memory paths off);
// NaN and infinities in x, w and dy.
#include "backend_ops.h"
#include "wersa/ops/rmsnorm.h"

namespace wersa::test {

namespace {

struct Variant {
  bool rstd = true;  // forward: rstd saved
  bool dx = true, dw = true, acc = false;
};

std::string shape_name(DType dt, int64_t N, int64_t C) {
  return std::string(dt == DType::F32 ? "f32" : "f64") + " N" + std::to_string(N) + " C" + std::to_string(C);
}

// special: the input that holds NaN and infinities (Fill::Special), or "".
void add_fwd(std::vector<OpCase>& out, DType dt, int64_t N, int64_t C, bool rstd,
             const std::string& special = "") {
  OpCase c("rmsnorm_fwd", "rmsnorm_fwd " + shape_name(dt, N, C) + (rstd ? "" : " no_rstd") +
                              (special.empty() ? "" : " special_" + special));
  auto fill = [&](const char* n) { return special == n ? Fill::Special : Fill::Normal; };
  c.in("x", {N, C}, dt, fill("x")).in("w", {C}, dt, fill("w")).out("y", {N, C}, dt);
  if (rstd) c.out("rstd", {N}, dt);
  c.max_err = dt == DType::F32 ? 1e-12 : 1e-26;
  c.run = [rstd](Ctx& ctx, const Bound& t) {
    rmsnorm_fwd(ctx, RmsNormFwd{t["y"], rstd ? t["rstd"] : Tensor{}, t["x"], t["w"], 1e-6});
  };
  out.push_back(c);
}

void add_bwd(std::vector<OpCase>& out, DType dt, int64_t N, int64_t C, Variant v,
             const std::string& special = "") {
  std::string name = "rmsnorm_bwd " + shape_name(dt, N, C);
  name += v.dx ? (v.acc ? " dx+=" : " dx") : "";
  name += v.dw ? " dw" : "";
  name += special.empty() ? "" : " special_" + special;
  OpCase c("rmsnorm_bwd", name);
  auto fill = [&](const char* n) { return special == n ? Fill::Special : Fill::Normal; };
  c.in("dy", {N, C}, dt, fill("dy")).in("x", {N, C}, dt, fill("x")).in("w", {C}, dt, fill("w"));
  c.in("rstd", {N}, dt, Fill::Uniform, 0.5, 2.0);
  if (v.dx) {
    if (v.acc)
      c.acc("dx", {N, C}, dt);
    else
      c.out("dx", {N, C}, dt);
  }
  if (v.dw) c.acc("dw", {C}, dt);
  c.max_err = dt == DType::F32 ? 1e-12 : 1e-26;
  c.run = [v](Ctx& ctx, const Bound& t) {
    RmsNormBwd a{v.dx ? t["dx"] : Tensor{}, v.dw ? t["dw"] : Tensor{}, t["dy"], t["x"], t["w"], t["rstd"]};
    a.accumulate_dx = v.acc;
    rmsnorm_bwd(ctx, a);
  };
  out.push_back(c);
}

}  // namespace

void add_rmsnorm_cases(std::vector<OpCase>& out) {
  for (DType dt : {DType::F32, DType::F64}) {
    for (int64_t N : {1, 7, 64, 130})
      for (int64_t C : {1, 7, 33, 64, 100, 257, 1000}) {
        add_fwd(out, dt, N, C, true);
        add_bwd(out, dt, N, C, Variant{});
      }
    for (int64_t N : {1, 7, 130})
      for (int64_t C : {1, 33, 257}) {
        add_fwd(out, dt, N, C, false);
        add_bwd(out, dt, N, C, Variant{true, true, true, true});    // dx accumulated
        add_bwd(out, dt, N, C, Variant{true, true, false, false});  // dx only
        add_bwd(out, dt, N, C, Variant{true, false, true, false});  // dw only
        add_bwd(out, dt, N, C, Variant{true, true, false, true});   // dx accumulated, no dw
      }
    // No rows: nothing to compute, dw unchanged.
    add_fwd(out, dt, 0, 7, true);
    add_bwd(out, dt, 0, 7, Variant{true, true, true, true});
    // Several rows per parameter chunk (N > 512 chunks).
    for (int64_t C : {7, 100}) {
      add_bwd(out, dt, 1100, C, Variant{});
      add_bwd(out, dt, 1100, C, Variant{true, false, true, false});
    }
    // Wide rows: shared memory holds the partial sums but not the row cache (f32 3000), neither
    // (6000), and the forward without its row cache (12000).
    for (int64_t C : {3000, 6000, 12000}) {
      add_fwd(out, dt, 3, C, true);
      add_bwd(out, dt, 600, C, Variant{true, true, true, true});
    }
    // NaN and infinities: through the row statistics (rows of 5: some rows have none), through
    // w (columns), into dw's column sums.
    add_fwd(out, dt, 64, 5, true, "x");
    add_fwd(out, dt, 7, 33, true, "w");
    add_bwd(out, dt, 64, 5, Variant{}, "dy");
    add_bwd(out, dt, 64, 5, Variant{true, true, true, true}, "x");
    add_bwd(out, dt, 7, 33, Variant{true, false, true, false}, "x");
  }
}

}  // namespace wersa::test

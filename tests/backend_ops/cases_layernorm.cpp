// test_backend_ops cases: LayerNorm forward (mean and rstd saved or not) and backward (each of dx,
// dw, db computed or skipped; dw and db accumulated), f32 and f64. Shapes: N in {1, 7, 64, 130}
// and C in {1, 7, 33, 64, 100, 257, 1000} for the main variants; no rows; N = 1100 (several rows
// per parameter chunk); wide rows (C = 2000 to 12000: the kernels' shared-memory paths off); NaN
// and infinities in x, w, b and dy.
#include "backend_ops.h"
#include "wersa/ops/layernorm.h"

namespace wersa::test {

namespace {

struct Saved {
  bool mean = true, rstd = true;
};
struct Grads {
  bool dx = true, dw = true, db = true;
};

std::string shape_name(DType dt, int64_t N, int64_t C) {
  return std::string(dt == DType::F32 ? "f32" : "f64") + " N" + std::to_string(N) + " C" + std::to_string(C);
}

// special: the input that holds NaN and infinities (Fill::Special), or "".
void add_fwd(std::vector<OpCase>& out, DType dt, int64_t N, int64_t C, Saved s,
             const std::string& special = "") {
  std::string name = "layernorm_fwd " + shape_name(dt, N, C);
  name += s.mean ? "" : " no_mean";
  name += s.rstd ? "" : " no_rstd";
  name += special.empty() ? "" : " special_" + special;
  OpCase c("layernorm_fwd", name);
  auto fill = [&](const char* n) { return special == n ? Fill::Special : Fill::Normal; };
  c.in("x", {N, C}, dt, fill("x"), 0.5, 2.0).in("w", {C}, dt, fill("w")).in("b", {C}, dt, fill("b"));
  c.out("y", {N, C}, dt);
  if (s.mean) c.out("mean", {N}, dt);
  if (s.rstd) c.out("rstd", {N}, dt);
  c.max_err = dt == DType::F32 ? 1e-12 : 1e-26;
  c.run = [s](Ctx& ctx, const Bound& t) {
    layernorm_fwd(ctx, LayerNormFwd{t["y"], s.mean ? t["mean"] : Tensor{}, s.rstd ? t["rstd"] : Tensor{},
                                    t["x"], t["w"], t["b"], 1e-5});
  };
  out.push_back(c);
}

void add_bwd(std::vector<OpCase>& out, DType dt, int64_t N, int64_t C, Grads g,
             const std::string& special = "") {
  std::string name = "layernorm_bwd " + shape_name(dt, N, C);
  name += g.dx ? " dx" : "";
  name += g.dw ? " dw" : "";
  name += g.db ? " db" : "";
  name += special.empty() ? "" : " special_" + special;
  OpCase c("layernorm_bwd", name);
  auto fill = [&](const char* n) { return special == n ? Fill::Special : Fill::Normal; };
  c.in("dy", {N, C}, dt, fill("dy")).in("x", {N, C}, dt, fill("x")).in("w", {C}, dt, fill("w"));
  c.in("mean", {N}, dt).in("rstd", {N}, dt, Fill::Uniform, 0.5, 2.0);
  if (g.dx) c.out("dx", {N, C}, dt);
  if (g.dw) c.acc("dw", {C}, dt);
  if (g.db) c.acc("db", {C}, dt);
  c.max_err = dt == DType::F32 ? 1e-12 : 1e-26;
  c.run = [g](Ctx& ctx, const Bound& t) {
    layernorm_bwd(
        ctx, LayerNormBwd{g.dx ? t["dx"] : Tensor{}, g.dw ? t["dw"] : Tensor{}, g.db ? t["db"] : Tensor{},
                          t["dy"], t["x"], t["w"], t["mean"], t["rstd"]});
  };
  out.push_back(c);
}

}  // namespace

void add_layernorm_cases(std::vector<OpCase>& out) {
  for (DType dt : {DType::F32, DType::F64}) {
    for (int64_t N : {1, 7, 64, 130})
      for (int64_t C : {1, 7, 33, 64, 100, 257, 1000}) {
        add_fwd(out, dt, N, C, Saved{});
        add_bwd(out, dt, N, C, Grads{});
      }
    for (int64_t N : {1, 7, 130})
      for (int64_t C : {1, 33, 257}) {
        add_fwd(out, dt, N, C, Saved{false, false});
        add_fwd(out, dt, N, C, Saved{true, false});
        add_fwd(out, dt, N, C, Saved{false, true});
        add_bwd(out, dt, N, C, Grads{true, false, false});
        add_bwd(out, dt, N, C, Grads{false, true, false});
        add_bwd(out, dt, N, C, Grads{false, false, true});
        add_bwd(out, dt, N, C, Grads{false, true, true});
        add_bwd(out, dt, N, C, Grads{true, false, true});
      }
    // No rows: nothing to compute, dw and db unchanged.
    add_fwd(out, dt, 0, 7, Saved{});
    add_bwd(out, dt, 0, 7, Grads{});
    // Several rows per parameter chunk (N > 512 chunks).
    for (int64_t C : {7, 100}) {
      add_bwd(out, dt, 1100, C, Grads{});
      add_bwd(out, dt, 1100, C, Grads{false, true, false});
    }
    // Wide rows: shared memory holds the partial sums but not the row cache (f32 2000), neither
    // (3000 and above), and the forward without its row cache (12000).
    for (int64_t C : {2000, 3000, 6000, 12000}) {
      add_fwd(out, dt, 3, C, Saved{});
      add_bwd(out, dt, 600, C, Grads{});
    }
    // NaN and infinities: through the row statistics (rows of 5: some rows have none), through
    // w and b (columns), into dw's and db's column sums.
    add_fwd(out, dt, 64, 5, Saved{}, "x");
    add_fwd(out, dt, 7, 33, Saved{}, "w");
    add_fwd(out, dt, 7, 33, Saved{}, "b");
    add_bwd(out, dt, 64, 5, Grads{}, "dy");
    add_bwd(out, dt, 64, 5, Grads{}, "x");
    add_bwd(out, dt, 7, 33, Grads{false, true, true}, "x");
  }
}

}  // namespace wersa::test

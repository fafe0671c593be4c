// test_backend_ops cases: adamw_step (f32, f64; with and without weight decay; first and later
// steps; NaN/Inf in the gradient; sizes 1 to past a grid's worth of 256-thread blocks).
#include "backend_ops.h"
#include "wersa/ops/adamw.h"

namespace wersa::test {

void add_adamw_cases(std::vector<OpCase>& out) {
  struct Hyper {
    double lr, wd;
    int64_t step;
  };
  for (DType dt : {DType::F32, DType::F64}) {
    const char* d = dt == DType::F32 ? "f32" : "f64";
    for (int64_t n : {1, 7, 33, 1000, 65537})
      for (const Hyper& h : {Hyper{1e-3, 0.0, 1}, Hyper{3e-4, 0.1, 10}, Hyper{1e-2, 0.01, 1000}}) {
        for (bool special : {false, true}) {
          if (special && n != 1000) continue;
          OpCase c("adamw_step", std::string("adamw_step ") + d + " n" + std::to_string(n) + " t" +
                                     std::to_string(h.step) + " wd" + std::to_string(h.wd) +
                                     (special ? " special" : ""));
          c.acc("p", {n}, dt).acc("m", {n}, dt).acc("v", {n}, dt);
          c.tensors.back().fill = Fill::Uniform;  // v >= 0, as the second moment is
          c.tensors.back().a = 0;
          c.tensors.back().b = 1e-2;
          c.tensors[1].b = 0.1;  // m: small, like a running mean of gradients
          c.in("g", {n}, dt, special ? Fill::Special : Fill::Normal);
          c.max_err = dt == DType::F32 ? 1e-12 : 1e-28;
          c.run = [h](Ctx& ctx, const Bound& t) {
            adamw_step(ctx, AdamWArgs{t["p"], t["m"], t["v"], t["g"], h.lr, 0.9, 0.95, 1e-8, h.wd, h.step});
          };
          out.push_back(c);
        }
      }
  }
}

}  // namespace wersa::test

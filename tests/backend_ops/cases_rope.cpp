// test_backend_ops cases: rope_fwd, rope_bwd (f32, f64; head width 2 to 64, odd head counts,
// T = 1 and T past the 64-position blocks of the angle table; pos0 = 0 and generation offsets;
// out of place, with NaN/Inf in x, and in place).
#include "backend_ops.h"
#include "wersa/ops/rope.h"

namespace wersa::test {

void add_rope_cases(std::vector<OpCase>& out) {
  struct Case {
    Shape s;
    double theta;
    int64_t pos0;
  };
  const Case shapes[] = {
      {{1, 1, 1, 2}, 10000, 0},   {{1, 1, 3, 8}, 10000, 5},     {{2, 70, 5, 34}, 10000, 0},
      {{3, 5, 7, 64}, 1e6, 1000}, {{1, 130, 2, 6}, 500000, 17}, {{2, 9, 1, 128}, 10000, 63},
  };
  for (DType dt : {DType::F32, DType::F64}) {
    const char* d = dt == DType::F32 ? "f32" : "f64";
    // f64: the device's pow/cos/sin may differ from the host's by an ulp (about 1e-13 absolute
    // in an angle near 1000 rad); f32: the rounded table and the rotation agree within an ulp.
    const double err = dt == DType::F32 ? 1e-12 : 1e-24;
    for (const Case& k : shapes)
      for (bool bwd : {false, true})
        for (int mode = 0; mode < 3; ++mode) {  // 0 out of place, 1 with NaN/Inf in x, 2 in place
          const char* op = bwd ? "rope_bwd" : "rope_fwd";
          std::string name = std::string(op) + " " + d + " " + k.s.str() + " pos" + std::to_string(k.pos0);
          name += mode == 0 ? "" : mode == 1 ? " special" : " inplace";
          OpCase c(op, name);
          if (mode == 2)
            c.acc("x", k.s, dt);
          else
            c.in("x", k.s, dt, mode == 1 ? Fill::Special : Fill::Normal).out("y", k.s, dt);
          c.max_err = err;
          const double theta = k.theta;
          const int64_t pos0 = k.pos0;
          c.run = [bwd, mode, theta, pos0](Ctx& ctx, const Bound& t) {
            const RopeArgs a{mode == 2 ? t["x"] : t["y"], t["x"], theta, pos0};
            if (bwd)
              rope_bwd(ctx, a);
            else
              rope_fwd(ctx, a);
          };
          out.push_back(c);
        }
  }
}

}  // namespace wersa::test

// test_backend_ops cases: activation forward and backward (dx overwritten or accumulated) for
// GELU, ReLU, sigmoid and SiLU, f32 and f64: sizes 0, 1, 7, 1000 and 65537, x with stddev 4 (the
// tails of Phi and sigmoid); NaN and infinities in x and dy; wide x (stddev 40: past the float
// cuts); in place (y = x, dx = dy) on a 2-D shape.
#include "backend_ops.h"
#include "wersa/ops/activation.h"

namespace wersa::test {

void add_activation_cases(std::vector<OpCase>& out) {
  for (DType dt : {DType::F32, DType::F64}) {
    // The CPU's float path approximates erfc and exp to a few ulp; double uses libm on both.
    const double err = dt == DType::F32 ? 1e-12 : 1e-26;
    const std::string d = dt == DType::F32 ? "f32" : "f64";
    for (Activation act : {Activation::Gelu, Activation::Relu, Activation::Sigmoid, Activation::Silu}) {
      const std::string an = activation_name(act);
      for (int64_t n : {0, 1, 7, 1000, 65537}) {
        const std::string sz = an + " " + d + " n" + std::to_string(n);
        for (bool special : {false, true}) {
          if (special && n == 0) continue;
          const Fill fx = special ? Fill::Special : Fill::Normal;
          const std::string sp = special ? " special" : "";
          OpCase f("activation_fwd", "activation_fwd " + sz + sp);
          f.in("x", {n}, dt, fx, 0, 4).out("y", {n}, dt);
          f.max_err = err;
          f.run = [act](Ctx& c, const Bound& t) { activation_fwd(c, ActivationFwd{t["y"], t["x"], act}); };
          out.push_back(f);

          for (bool acc : {false, true}) {
            OpCase b("activation_bwd", "activation_bwd " + sz + sp + (acc ? " acc" : ""));
            b.in("dy", {n}, dt, fx).in("x", {n}, dt, fx, 0, 4);
            if (acc)
              b.acc("dx", {n}, dt);
            else
              b.out("dx", {n}, dt);
            b.max_err = err;
            b.run = [act, acc](Ctx& c, const Bound& t) {
              ActivationBwd a{t["dx"], t["dy"], t["x"], act};
              a.accumulate_dx = acc;
              activation_bwd(c, a);
            };
            out.push_back(b);
          }
        }
      }
      // Wide inputs (stddev 40) with infinities in dy: past the float cuts of exp, Phi and the
      // density (|x| > 87.3, x <= -13), where 0 * inf must be NaN on both devices.
      {
        const int64_t n = 65537;
        const std::string sz = an + " " + d + " n" + std::to_string(n) + " wide";
        OpCase f("activation_fwd", "activation_fwd " + sz);
        f.in("x", {n}, dt, Fill::Special, 0, 40).out("y", {n}, dt);
        f.max_err = err;
        f.run = [act](Ctx& c, const Bound& t) { activation_fwd(c, ActivationFwd{t["y"], t["x"], act}); };
        out.push_back(f);
        OpCase b("activation_bwd", "activation_bwd " + sz);
        b.in("dy", {n}, dt, Fill::Special).in("x", {n}, dt, Fill::Special, 0, 40).out("dx", {n}, dt);
        b.max_err = err;
        b.run = [act](Ctx& c, const Bound& t) {
          activation_bwd(c, ActivationBwd{t["dx"], t["dy"], t["x"], act});
        };
        out.push_back(b);
      }
      // In place: y = x; dx = dy (overwritten and accumulated); a 2-D shape.
      const Shape s{33, 31};
      const std::string sz = an + " " + d + " 33x31";
      OpCase f("activation_fwd", "activation_fwd " + sz + " in_place");
      f.acc("x", s, dt);
      f.max_err = err;
      f.run = [act](Ctx& c, const Bound& t) { activation_fwd(c, ActivationFwd{t["x"], t["x"], act}); };
      out.push_back(f);
      for (bool acc : {false, true}) {
        OpCase b("activation_bwd", "activation_bwd " + sz + " in_place" + (acc ? " acc" : ""));
        b.acc("d", s, dt).in("x", s, dt, Fill::Normal, 0, 4);
        b.max_err = err;
        b.run = [act, acc](Ctx& c, const Bound& t) {
          ActivationBwd a{t["d"], t["d"], t["x"], act};
          a.accumulate_dx = acc;
          activation_bwd(c, a);
        };
        out.push_back(b);
      }
    }
  }
}

}  // namespace wersa::test

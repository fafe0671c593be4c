// test_backend_ops cases: SwiGLU forward and backward, f32 and f64: the elementwise form (sizes 0,
// 1, 7, 1000, 65537; NaN and infinities in gate, up and dy; wide gates past the float cut of
// sigmoid; outputs aliasing inputs) and the packed form (gate_up [..., 2F], F in {1, 7, 64, 100,
// 300} with 1, 3 and 130 rows; a rank-3 shape; no rows; 70000 rows, more than the grid's 65535).
#include "backend_ops.h"
#include "wersa/ops/swiglu.h"

namespace wersa::test {

void add_swiglu_cases(std::vector<OpCase>& out) {
  for (DType dt : {DType::F32, DType::F64}) {
    const double err = dt == DType::F32 ? 1e-12 : 1e-26;
    const std::string d = dt == DType::F32 ? "f32" : "f64";
    for (int64_t n : {0, 1, 7, 1000, 65537})
      for (bool special : {false, true}) {
        if (special && n == 0) continue;
        const std::string sz = d + " n" + std::to_string(n) + (special ? " special" : "");
        const Fill fs = special ? Fill::Special : Fill::Normal;
        OpCase f("swiglu_fwd", "swiglu_fwd " + sz);
        f.in("gate", {n}, dt, fs, 0, 3).in("up", {n}, dt).out("y", {n}, dt);
        f.max_err = err;
        f.run = [](Ctx& c, const Bound& t) { swiglu_fwd(c, SwigluFwd{t["y"], t["gate"], t["up"]}); };
        out.push_back(f);

        OpCase b("swiglu_bwd", "swiglu_bwd " + sz);
        b.in("dy", {n}, dt, fs).in("gate", {n}, dt, fs, 0, 3).in("up", {n}, dt);
        b.out("dgate", {n}, dt).out("dup", {n}, dt);
        b.max_err = err;
        b.run = [](Ctx& c, const Bound& t) {
          swiglu_bwd(c, SwigluBwd{t["dgate"], t["dup"], t["dy"], t["gate"], t["up"]});
        };
        out.push_back(b);
      }
    // Wide gates (stddev 40) with infinities in dy: past the float cut of sigmoid (|g| > 87.3),
    // where 0 * inf must be NaN on both devices.
    {
      const int64_t n = 65537;
      OpCase f("swiglu_fwd", "swiglu_fwd " + d + " n65537 wide");
      f.in("gate", {n}, dt, Fill::Special, 0, 40).in("up", {n}, dt, Fill::Special).out("y", {n}, dt);
      f.max_err = err;
      f.run = [](Ctx& c, const Bound& t) { swiglu_fwd(c, SwigluFwd{t["y"], t["gate"], t["up"]}); };
      out.push_back(f);
      OpCase b("swiglu_bwd", "swiglu_bwd " + d + " n65537 wide");
      b.in("dy", {n}, dt, Fill::Special).in("gate", {n}, dt, Fill::Special, 0, 40).in("up", {n}, dt);
      b.out("dgate", {n}, dt).out("dup", {n}, dt);
      b.max_err = err;
      b.run = [](Ctx& c, const Bound& t) {
        swiglu_bwd(c, SwigluBwd{t["dgate"], t["dup"], t["dy"], t["gate"], t["up"]});
      };
      out.push_back(b);
    }
    // Aliasing: y = gate, y = up; dgate = dy, dup = dy.
    const Shape s{5, 41};
    for (bool on_gate : {true, false}) {
      const std::string which = on_gate ? "gate" : "up";
      OpCase f("swiglu_fwd", "swiglu_fwd " + d + " 5x41 y_is_" + which);
      f.acc("gate", s, dt).acc("up", s, dt);
      f.max_err = err;
      f.run = [on_gate](Ctx& c, const Bound& t) {
        swiglu_fwd(c, SwigluFwd{on_gate ? t["gate"] : t["up"], t["gate"], t["up"]});
      };
      out.push_back(f);

      OpCase b("swiglu_bwd", "swiglu_bwd " + d + " 5x41 dy_is_" + (on_gate ? "dgate" : "dup"));
      b.acc("dy", s, dt).in("gate", s, dt, Fill::Normal, 0, 3).in("up", s, dt).out("other", s, dt);
      b.max_err = err;
      b.run = [on_gate](Ctx& c, const Bound& t) {
        swiglu_bwd(c, on_gate ? SwigluBwd{t["dy"], t["other"], t["dy"], t["gate"], t["up"]}
                              : SwigluBwd{t["other"], t["dy"], t["dy"], t["gate"], t["up"]});
      };
      out.push_back(b);
    }
    // Packed form.
    std::vector<Shape> shapes;
    for (int64_t F : {1, 7, 64, 100, 300})
      for (int64_t R : {1, 3, 130}) shapes.push_back(Shape{R, F});
    shapes.push_back(Shape{2, 3, 7});
    shapes.push_back(Shape{0, 7});      // no rows
    shapes.push_back(Shape{70000, 2});  // more rows than the grid's 65535
    for (const Shape& ys : shapes) {
      Shape ps = ys;
      ps.dim[ps.rank - 1] *= 2;
      std::string sz = d;
      for (int i = 0; i < ys.rank; ++i) sz += (i ? "x" : " ") + std::to_string(ys.dim[i]);
      for (bool special : {false, true}) {
        if (special && ys.numel() < 100) continue;
        const Fill fs = special ? Fill::Special : Fill::Normal;
        const std::string sp = special ? " special" : "";
        OpCase f("swiglu_fwd", "swiglu_fwd packed " + sz + sp);
        f.in("gate_up", ps, dt, fs, 0, 2).out("y", ys, dt);
        f.max_err = err;
        f.run = [](Ctx& c, const Bound& t) {
          SwigluFwd a{t["y"], Tensor{}, Tensor{}};
          a.gate_up = t["gate_up"];
          swiglu_fwd(c, a);
        };
        out.push_back(f);

        OpCase b("swiglu_bwd", "swiglu_bwd packed " + sz + sp);
        b.in("dy", ys, dt, fs).in("gate_up", ps, dt, fs, 0, 2).out("dgate_up", ps, dt);
        b.max_err = err;
        b.run = [](Ctx& c, const Bound& t) {
          SwigluBwd a{Tensor{}, Tensor{}, t["dy"], Tensor{}, Tensor{}};
          a.dgate_up = t["dgate_up"];
          a.gate_up = t["gate_up"];
          swiglu_bwd(c, a);
        };
        out.push_back(b);
      }
    }
  }
}

}  // namespace wersa::test

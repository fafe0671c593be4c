// test_backend_ops cases: add, axpy, scale, copy, sum of squares, clipping by a norm, conversion to
// bf16.
#include "backend_ops.h"
#include "wersa/ops/elementwise.h"

namespace wersa::test {

void add_elementwise_cases(std::vector<OpCase>& out) {
  for (DType dt : {DType::F32, DType::F64}) {
    const double err = dt == DType::F32 ? 1e-12 : 1e-28;
    const char* d = dt == DType::F32 ? "f32" : "f64";
    for (int64_t n : {1, 7, 1000, 65537}) {
      const std::string sz = std::string(d) + " n" + std::to_string(n);
      OpCase add("add_fwd", "add_fwd " + sz);
      add.in("a", {n}, dt, Fill::Special).in("b", {n}, dt).out("y", {n}, dt);
      add.max_err = err;
      add.run = [](Ctx& c, const Bound& t) { add_fwd(c, AddFwd{t["y"], t["a"], t["b"]}); };
      out.push_back(add);

      OpCase axp("axpy", "axpy " + sz);
      axp.in("x", {n}, dt).acc("y", {n}, dt);
      axp.max_err = err;
      axp.run = [](Ctx& c, const Bound& t) { axpy(c, AxpyArgs{t["y"], t["x"], -0.37}); };
      out.push_back(axp);

      OpCase sc("scale_inplace", "scale_inplace " + sz);
      sc.acc("x", {n}, dt);
      sc.max_err = err;
      sc.run = [](Ctx& c, const Bound& t) { scale_inplace(c, ScaleArgs{t["x"], 1.0 / 3}); };
      out.push_back(sc);

      OpCase cp("copy_fwd", "copy_fwd " + sz);
      cp.in("x", {n}, dt, Fill::Special).out("y", {n}, dt);
      cp.max_err = 0;
      cp.run = [](Ctx& c, const Bound& t) { copy_fwd(c, CopyArgs{t["y"], t["x"]}); };
      out.push_back(cp);

      OpCase ss("sum_squares", "sum_squares " + sz);
      ss.in("x", {n}, dt).out("out", {1}, DType::F64);
      ss.max_err = 1e-26;  // sums in double on both devices, in different orders
      ss.run = [](Ctx& c, const Bound& t) { sum_squares(c, SumSquaresArgs{t["out"], t["x"]}); };
      out.push_back(ss);

      // norm2 in [4, 4.01): a norm of about 2, clipped to 1, left alone under 3, and 0 = no clipping.
      for (double mx : {1.0, 3.0, 0.0}) {
        OpCase cl("clip_by_norm", "clip_by_norm " + sz + " max " + std::to_string(int(mx)));
        cl.in("norm2", {1}, DType::F64, Fill::Uniform, 4.0, 4.01).acc("x", {n}, dt);
        cl.max_err = err;
        cl.run = [mx](Ctx& c, const Bound& t) { clip_by_norm(c, ClipByNormArgs{t["x"], t["norm2"], mx}); };
        out.push_back(cl);
      }
    }
  }
  // The bf16 shadow weights' rounding: bit for bit the CPU's (NaN, infinities and ties included).
  for (int64_t n : {1, 7, 1000, 65537}) {
    OpCase cv("convert_bf16", "convert_bf16 n" + std::to_string(n));
    cv.in("x", {n}, DType::F32, Fill::Special).out("y", {n}, DType::BF16);
    cv.max_err = 0;
    cv.run = [](Ctx& c, const Bound& t) { convert_bf16(c, ConvertArgs{t["y"], t["x"]}); };
    out.push_back(cv);
  }
  OpCase ci("copy_fwd", "copy_fwd i32 n300");
  ci.ids("x", {300}, -5, 1000).out("y", {300}, DType::I32);
  ci.max_err = 0;
  ci.run = [](Ctx& c, const Bound& t) { copy_fwd(c, CopyArgs{t["y"], t["x"]}); };
  out.push_back(ci);
}

}  // namespace wersa::test

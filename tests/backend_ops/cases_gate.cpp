// test_backend_ops cases: the level gates (include/wersa/ops/gate.h), f32 and f64. Forward: z of
// both signs and large magnitudes (both branches of the overflow-free sigmoid, saturation), NaN
// and infinities; backward: dz only, ds only (accumulated), both; no rows; N over one chunk of
// the ds sum (many chunks) and L+1 from 1 to 9.
#include "backend_ops.h"
#include "wersa/ops/gate.h"

namespace wersa::test {

namespace {

std::string shape_name(DType dt, int64_t N, int64_t L1) {
  return std::string(dt == DType::F32 ? "f32" : "f64") + " N" + std::to_string(N) + " L" + std::to_string(L1);
}

void add_fwd(std::vector<OpCase>& out, DType dt, int64_t N, int64_t L1, double sd, bool special) {
  OpCase c("gate_fwd", "gate_fwd " + shape_name(dt, N, L1) + " sd " + std::to_string(int(sd)) +
                           (special ? " special" : ""));
  c.in("z", {N, L1}, dt, special ? Fill::Special : Fill::Normal, 0, sd).in("s", {L1}, dt);
  c.out("gamma", {N, L1}, dt).out("g", {N, L1}, dt);
  c.max_err = dt == DType::F32 ? 1e-12 : 1e-26;
  c.run = [](Ctx& ctx, const Bound& t) { gate_fwd(ctx, GateFwd{t["gamma"], t["g"], t["z"], t["s"]}); };
  out.push_back(c);
}

void add_bwd(std::vector<OpCase>& out, DType dt, int64_t N, int64_t L1, bool dz, bool ds, bool special) {
  OpCase c("gate_bwd", "gate_bwd " + shape_name(dt, N, L1) + (dz ? " dz" : "") + (ds ? " ds" : "") +
                           (special ? " special" : ""));
  c.in("dgamma", {N, L1}, dt, special ? Fill::Special : Fill::Normal)
      .in("g", {N, L1}, dt, Fill::Uniform, 0, 1);
  c.in("s", {L1}, dt);
  if (dz) c.out("dz", {N, L1}, dt);
  if (ds) c.acc("ds", {L1}, dt);
  c.max_err = dt == DType::F32 ? 1e-12 : 1e-26;
  c.run = [dz, ds](Ctx& ctx, const Bound& t) {
    gate_bwd(ctx, GateBwd{dz ? t["dz"] : Tensor{}, ds ? t["ds"] : Tensor{}, t["dgamma"], t["g"], t["s"]});
  };
  out.push_back(c);
}

}  // namespace

void add_gate_cases(std::vector<OpCase>& out) {
  for (DType dt : {DType::F32, DType::F64}) {
    for (int64_t N : {1, 7, 300})
      for (int64_t L1 : {1, 4, 9}) {
        add_fwd(out, dt, N, L1, 3, false);
        add_bwd(out, dt, N, L1, true, true, false);
      }
    add_fwd(out, dt, 200, 5, 60, false);  // saturated (g rounds to 0 or 1)
    add_fwd(out, dt, 100, 5, 1, true);
    add_bwd(out, dt, 100, 5, true, true, true);
    add_bwd(out, dt, 33, 5, true, false, false);
    add_bwd(out, dt, 33, 5, false, true, false);
    add_fwd(out, dt, 0, 5, 1, false);
    add_bwd(out, dt, 0, 5, true, true, false);
    add_bwd(out, dt, 70000, 5, true, true, false);  // over a thousand chunks of the ds sum
    add_bwd(out, dt, 20000, 9, false, true, false);
  }
  add_fwd(out, DType::F32, 65536, 5, 3, false);
}

}  // namespace wersa::test

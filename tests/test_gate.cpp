// gate: values, saturation without NaN, backward against finite differences (f64), accumulate and
// overwrite rules, f32 against f64, user errors.
#include <cmath>

#include "testutil.h"
#include "wersa/ops/gate.h"

using namespace wersa;
using namespace wersa::test;

TEST(Gate, ForwardValues) {
  const int64_t N = 7, L1 = 5;
  Buf z(DType::F64, {N, L1}), s(DType::F64, {L1}), g(DType::F64, {N, L1}), gamma(DType::F64, {N, L1});
  z.randn(1, 3.0), s.randn(2);
  z.set(0, 800.0), z.set(1, -800.0);  // exp(800) overflows a double
  gate_fwd(ctx(), {gamma, g, z, s});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t l = 0; l < L1; ++l) {
      const int64_t i = n * L1 + l;
      const double want = 1.0 / (1.0 + std::exp(-z.get(i)));
      EXPECT_NEAR(g.get(i), want, 1e-15);
      EXPECT_NEAR(gamma.get(i), want * s.get(l), 1e-15);
      EXPECT_TRUE(g.get(i) >= 0.0 && g.get(i) <= 1.0);
    }
  EXPECT_EQ(g.get(0), 1.0);
  EXPECT_EQ(g.get(1), 0.0);
}

TEST(Gate, GradientsMatchFiniteDifferences) {
  const int64_t N = 13, L1 = 5;
  Buf z(DType::F64, {N, L1}), s(DType::F64, {L1}), g(DType::F64, {N, L1}), gamma(DType::F64, {N, L1});
  Buf probe(DType::F64, {N, L1}), dz(DType::F64, {N, L1}), ds(DType::F64, {L1});
  z.randn(3, 2.0), s.randn(4, 0.3, 0.5), probe.randn(5);
  auto loss = [&] {
    gate_fwd(ctx(), {gamma, g, z, s});
    return dot(gamma, probe);
  };
  auto backward = [&] {
    gate_fwd(ctx(), {gamma, g, z, s});
    gate_bwd(ctx(), {dz, ds, probe, g, s});
  };
  expect_grad_matches(loss, backward, {{&z, &dz, "z"}, {&s, &ds, "s"}});
}

TEST(Gate, ScaleGradientAccumulatesInputGradientOverwrites) {
  const int64_t N = 6, L1 = 3;
  Buf z(DType::F64, {N, L1}), s(DType::F64, {L1}), g(DType::F64, {N, L1}), gamma(DType::F64, {N, L1});
  Buf dgamma(DType::F64, {N, L1}), dz(DType::F64, {N, L1}), ds(DType::F64, {L1}), dz2(DType::F64, {N, L1}),
      ds2(DType::F64, {L1});
  z.randn(6), s.randn(7), dgamma.randn(8);
  gate_fwd(ctx(), {gamma, g, z, s});
  gate_bwd(ctx(), {dz, ds, dgamma, g, s});
  dz2.randn(9);  // garbage that must be overwritten
  gate_bwd(ctx(), {dz2, ds2, dgamma, g, s});
  gate_bwd(ctx(), {dz2, ds2, dgamma, g, s});
  for (int64_t i = 0; i < dz.n(); ++i) EXPECT_NEAR(dz2.get(i), dz.get(i), 1e-15);
  for (int64_t i = 0; i < ds.n(); ++i) EXPECT_NEAR(ds2.get(i), 2 * ds.get(i), 1e-14);
  gate_bwd(ctx(), {{}, ds2, dgamma, g, s});  // dz may be skipped
}

TEST(Gate, FloatMatchesDouble) {
  const int64_t N = 301, L1 = 6;
  Buf z(DType::F64, {N, L1}), s(DType::F64, {L1}), g(DType::F64, {N, L1}), gamma(DType::F64, {N, L1});
  Buf dgamma(DType::F64, {N, L1}), dz(DType::F64, {N, L1}), ds(DType::F64, {L1});
  Buf zf(DType::F32, {N, L1}), sf(DType::F32, {L1}), gf(DType::F32, {N, L1}), gammaf(DType::F32, {N, L1});
  Buf dgammaf(DType::F32, {N, L1}), dzf(DType::F32, {N, L1}), dsf(DType::F32, {L1});
  z.randn(10, 2.0), s.randn(11), dgamma.randn(12);
  zf.copy_from(z), sf.copy_from(s), dgammaf.copy_from(dgamma);
  gate_fwd(ctx(), {gamma, g, z, s});
  gate_fwd(ctx(), {gammaf, gf, zf, sf});
  gate_bwd(ctx(), {dz, ds, dgamma, g, s});
  gate_bwd(ctx(), {dzf, dsf, dgammaf, gf, sf});
  EXPECT_LT(rel_err(gammaf, gamma), 1e-6);
  EXPECT_LT(rel_err(dzf, dz), 1e-6);
  EXPECT_LT(rel_err(dsf, ds), 1e-6);
}

TEST(Gate, ShapeAndDtypeErrors) {
  Buf z(DType::F32, {4, 5}), s(DType::F32, {5}), g(DType::F32, {4, 5}), gamma(DType::F32, {4, 5});
  Buf s4(DType::F32, {4}), g64(DType::F64, {4, 5}), z3(DType::F32, {4, 5, 1});
  EXPECT_THROW(gate_fwd(ctx(), {gamma, g, z, s4}), Error);
  EXPECT_THROW(gate_fwd(ctx(), {gamma, g64, z, s}), Error);
  EXPECT_THROW(gate_fwd(ctx(), {gamma, g, z3, s}), Error);
  EXPECT_THROW(gate_bwd(ctx(), {g, s4, gamma, g, s}), Error);
}

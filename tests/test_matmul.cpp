// matmul: backward against finite differences (f64), f32 kernel against the f64 result.
#include "testutil.h"
#include "wersa/ops/matmul.h"

using namespace wersa;
using namespace wersa::test;

TEST(Matmul, GradientsMatchFiniteDifferences) {
  const int64_t N = 7, I = 5, O = 3;
  Buf x(DType::F64, {N, I}), w(DType::F64, {O, I}), b(DType::F64, {O}), y(DType::F64, {N, O});
  Buf probe(DType::F64, {N, O}), dx(DType::F64, {N, I}), dw(DType::F64, {O, I}), db(DType::F64, {O});
  x.randn(1), w.randn(2), b.randn(3), probe.randn(4);
  auto loss = [&] {
    matmul_fwd(ctx(), {y, x, w, b});
    return dot(y, probe);
  };
  auto backward = [&] { matmul_bwd(ctx(), {dx, dw, db, probe, x, w}); };
  expect_grad_matches(loss, backward, {{&x, &dx, "x"}, {&w, &dw, "w"}, {&b, &db, "b"}});
}

TEST(Matmul, ParameterGradientsAccumulateActivationGradientsOverwrite) {
  const int64_t N = 4, I = 3, O = 2;
  Buf x(DType::F64, {N, I}), w(DType::F64, {O, I}), dy(DType::F64, {N, O});
  Buf dx(DType::F64, {N, I}), dw(DType::F64, {O, I}), dw2(DType::F64, {O, I}), dx2(DType::F64, {N, I});
  x.randn(1), w.randn(2), dy.randn(3);
  matmul_bwd(ctx(), {dx, dw, {}, dy, x, w});
  dx2.randn(9);  // garbage that must be overwritten
  matmul_bwd(ctx(), {dx2, dw2, {}, dy, x, w});
  matmul_bwd(ctx(), {dx2, dw2, {}, dy, x, w});
  for (int64_t i = 0; i < dw.n(); ++i) EXPECT_NEAR(dw2.get(i), 2 * dw.get(i), 1e-12);
  for (int64_t i = 0; i < dx.n(); ++i) EXPECT_NEAR(dx2.get(i), dx.get(i), 1e-12);
}

TEST(Matmul, FloatMatchesDouble) {
  const int64_t N = 33, I = 17, O = 9;
  Buf x(DType::F64, {N, I}), w(DType::F64, {O, I}), y(DType::F64, {N, O});
  Buf xf(DType::F32, {N, I}), wf(DType::F32, {O, I}), yf(DType::F32, {N, O});
  x.randn(1), w.randn(2);
  xf.copy_from(x), wf.copy_from(w);
  matmul_fwd(ctx(), {y, x, w, {}});
  matmul_fwd(ctx(), {yf, xf, wf, {}});
  EXPECT_LT(rel_err(yf, y), 1e-5);
}

TEST(Matmul, ShapeMismatchIsAnError) {
  Buf x(DType::F32, {4, 3}), w(DType::F32, {2, 5}), y(DType::F32, {4, 2});
  EXPECT_THROW(matmul_fwd(ctx(), {y, x, w, {}}), Error);
}

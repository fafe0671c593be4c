// embedding: gather forward, scatter-add backward (FD in f64, f32 vs f64, accumulation,
// determinism across thread counts) and the out-of-range token error.
#include <omp.h>

#include "testutil.h"
#include "wersa/ops/embedding.h"

using namespace wersa;
using namespace wersa::test;

namespace {
Buf make_tokens(int64_t N, int64_t V, uint64_t seed) {
  Buf tok(DType::I32, {N}, "tokens");
  Rng rng{seed, 5, 0};
  for (int64_t n = 0; n < N; ++n) tok.set(n, double(rng.below(uint64_t(V))));
  return tok;
}
}  // namespace

TEST(Embedding, ForwardGathersRows) {
  const int64_t N = 13, V = 7, D = 5;
  Buf tok = make_tokens(N, V, 1), table(DType::F64, {V, D}), y(DType::F64, {N, D});
  table.randn(2);
  y.randn(3);  // garbage that must be overwritten
  embedding_fwd(ctx(), {y, tok, table});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < D; ++j) EXPECT_EQ(y.get(n * D + j), table.get(int64_t(tok.get(n)) * D + j));
}

TEST(Embedding, GradientMatchesFiniteDifferences) {
  const int64_t N = 13, V = 7, D = 5;  // N > V: some tokens repeat, their gradients add up
  Buf tok = make_tokens(N, V, 1), table(DType::F64, {V, D}), y(DType::F64, {N, D});
  Buf probe(DType::F64, {N, D}), dtable(DType::F64, {V, D});
  table.randn(2), probe.randn(4);
  auto loss = [&] {
    embedding_fwd(ctx(), {y, tok, table});
    return dot(y, probe);
  };
  auto backward = [&] { embedding_bwd(ctx(), {dtable, probe, tok}); };
  expect_grad_matches(loss, backward, {{&table, &dtable, "table"}});
}

TEST(Embedding, BackwardAccumulatesIntoTable) {
  const int64_t N = 29, V = 11, D = 6;
  Buf tok = make_tokens(N, V, 7), dy(DType::F64, {N, D}), dtable(DType::F64, {V, D}),
      expect(DType::F64, {V, D});
  dy.randn(1);
  dtable.randn(2);  // existing gradient that must be kept
  expect.copy_from(dtable);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < D; ++j) {
      const int64_t k = int64_t(tok.get(n)) * D + j;
      expect.set(k, expect.get(k) + dy.get(n * D + j));
    }
  embedding_bwd(ctx(), {dtable, dy, tok});
  for (int64_t i = 0; i < expect.n(); ++i) EXPECT_NEAR(dtable.get(i), expect.get(i), 1e-12) << i;
}

TEST(Embedding, FloatMatchesDouble) {
  const int64_t N = 37, V = 19, D = 45;
  Buf tok = make_tokens(N, V, 3);
  Buf table(DType::F64, {V, D}), y(DType::F64, {N, D}), dy(DType::F64, {N, D}), dt(DType::F64, {V, D});
  Buf tablef(DType::F32, {V, D}), yf(DType::F32, {N, D}), dyf(DType::F32, {N, D}), dtf(DType::F32, {V, D});
  table.randn(1), dy.randn(2);
  tablef.copy_from(table), dyf.copy_from(dy);
  embedding_fwd(ctx(), {y, tok, table});
  embedding_fwd(ctx(), {yf, tok, tablef});
  EXPECT_LT(rel_err(yf, y), 1e-6);
  embedding_bwd(ctx(), {dt, dy, tok});
  embedding_bwd(ctx(), {dtf, dyf, tok});
  EXPECT_LT(rel_err(dtf, dt), 1e-5);
}

TEST(Embedding, BackwardIsIdenticalForAnyThreadCount) {
  const int64_t N = 3001, V = 50, D = 70;
  Buf tok = make_tokens(N, V, 9), dy(DType::F32, {N, D}), a(DType::F32, {V, D}), b(DType::F32, {V, D});
  dy.randn(1);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  embedding_bwd(ctx(), {a, dy, tok});
  omp_set_num_threads(4);
  embedding_bwd(ctx(), {b, dy, tok});
  omp_set_num_threads(saved);
  for (int64_t i = 0; i < a.n(); ++i) ASSERT_EQ(a.p<float>()[i], b.p<float>()[i]) << i;
}

TEST(Embedding, OutOfRangeTokenIsAnErrorNamingPositionIdAndVocab) {
  const int64_t N = 9, V = 7, D = 3;
  Buf tok = make_tokens(N, V, 1), table(DType::F32, {V, D}), y(DType::F32, {N, D});
  Buf dy(DType::F32, {N, D}), dtable(DType::F32, {V, D});
  table.randn(1), dy.randn(2);
  for (int bad : {7, -1, 1000000}) {
    tok.set(5, bad);
    try {
      embedding_fwd(ctx(), {y, tok, table});
      ADD_FAILURE() << "token " << bad << " accepted";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("position 5"), std::string::npos) << m;
      EXPECT_NE(m.find("id " + std::to_string(bad)), std::string::npos) << m;
      EXPECT_NE(m.find("[0, 7)"), std::string::npos) << m;
    }
    EXPECT_THROW(embedding_bwd(ctx(), {dtable, dy, tok}), Error);
    // Checked before running: nothing was scattered into the gradient.
    for (int64_t i = 0; i < dtable.n(); ++i) ASSERT_EQ(dtable.get(i), 0.0);
  }
}

TEST(Embedding, ShapeAndDtypeErrors) {
  const int64_t N = 4, V = 5, D = 3;
  Buf tok = make_tokens(N, V, 1), table(DType::F32, {V, D}), y(DType::F32, {N, D});
  Buf tokf(DType::F32, {N}), ybad(DType::F32, {N, D + 1}), y64(DType::F64, {N, D}), tok2(DType::I32, {N, 1});
  EXPECT_THROW(embedding_fwd(ctx(), {y, tokf, table}), Error);
  EXPECT_THROW(embedding_fwd(ctx(), {ybad, tok, table}), Error);
  EXPECT_THROW(embedding_fwd(ctx(), {y64, tok, table}), Error);
  EXPECT_THROW(embedding_fwd(ctx(), {y, tok2, table}), Error);
  EXPECT_THROW(embedding_fwd(ctx(), {y, tok, Tensor{}}), Error);
  EXPECT_THROW(embedding_bwd(ctx(), {table, ybad, tok}), Error);
  EXPECT_NO_THROW(embedding_fwd(ctx(), {y, tok, table}));
}

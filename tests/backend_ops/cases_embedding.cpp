// test_backend_ops cases: token embedding (embedding_fwd with f32/f64/bf16 tables, embedding_bwd),
// and the bad-id behaviour on a device (NaN row forward, skipped backward, nothing out of bounds).
#include <gtest/gtest.h>

#include <cmath>

#include "backend_ops.h"
#include "guarded_buffer.h"
#include "wersa/ops/embedding.h"

namespace wersa::test {

void add_embedding_cases(std::vector<OpCase>& out) {
  for (DType dt : {DType::F32, DType::F64}) {
    const char* d = dt == DType::F32 ? "f32" : "f64";
    for (int64_t N : {1, 7, 64, 300}) {
      for (int64_t D : {1, 7, 33, 100, 257}) {
        for (int64_t V : {1, 5, 1000}) {
          const std::string sz =
              std::string(d) + " N" + std::to_string(N) + " D" + std::to_string(D) + " V" + std::to_string(V);
          for (DType tdt : {dt, DType::BF16}) {
            const bool b16 = tdt == DType::BF16;
            OpCase f("embedding_fwd", "embedding_fwd " + sz + (b16 ? " bf16" : ""));
            f.ids("tokens", {N}, 0, V).in("table", {V, D}, tdt, V == 5 ? Fill::Special : Fill::Normal);
            f.out("y", {N, D}, dt);
            f.max_err = 0;  // a copy (bf16: widened exactly)
            f.run = [](Ctx& c, const Bound& t) {
              embedding_fwd(c, EmbeddingFwd{t["y"], t["tokens"], t["table"]});
            };
            out.push_back(f);
          }
          OpCase b("embedding_bwd", "embedding_bwd " + sz);
          b.ids("tokens", {N}, 0, V).in("dy", {N, D}, dt, V == 5 && D == 33 ? Fill::Special : Fill::Normal);
          b.acc("dtable", {V, D}, dt);
          b.max_err = 0;  // each element's sums in token order, as on the CPU: bitwise equal
          b.run = [](Ctx& c, const Bound& t) {
            embedding_bwd(c, EmbeddingBwd{t["dtable"], t["dy"], t["tokens"]});
          };
          out.push_back(b);
        }
      }
    }
  }
}

namespace {

// Ids with two out of range (one negative, one >= V) among valid ones.
std::vector<int32_t> bad_ids(int64_t N, int32_t V) {
  std::vector<int32_t> ids(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) ids[size_t(n)] = int32_t((n * 7 + 3) % V);
  ids[1] = -4;
  ids[size_t(N - 2)] = V + 9;
  return ids;
}

}  // namespace

TEST(EmbeddingCuda, BadIdsForwardNaNRowNoStrayAccess) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t N = 9, D = 37;
  const int32_t V = 11;
  const std::vector<int32_t> ids = bad_ids(N, V);
  std::vector<float> table(size_t(V * D));
  for (size_t i = 0; i < table.size(); ++i) table[i] = float(i) * 0.25f - 3;
  std::vector<float> y0(size_t(N * D), 1234.5f);
  GuardedBuffer tok(Device::CUDA, DType::I32, {N}, ids.data()),
      tab(Device::CUDA, DType::F32, {V, D}, table.data()), y(Device::CUDA, DType::F32, {N, D}, y0.data());
  Ctx ctx(Device::CUDA, ScratchPolicy::Grow);
  embedding_fwd(ctx, EmbeddingFwd{y.t(), tok.t(), tab.t()});
  ctx.sync();
  const std::vector<float> got = y.read<float>();
  for (int64_t n = 0; n < N; ++n) {
    const int32_t v = ids[size_t(n)];
    for (int64_t j = 0; j < D; ++j) {
      const float g = got[size_t(n * D + j)];
      if (v < 0 || v >= V) {
        EXPECT_TRUE(std::isnan(g)) << "n " << n << " j " << j;
      } else {
        EXPECT_EQ(g, table[size_t(v * D + j)]) << "n " << n << " j " << j;
      }
    }
  }
  EXPECT_TRUE(tok.guards_intact() && tab.guards_intact() && y.guards_intact());
  EXPECT_EQ(tab.read<float>(), table);
}

TEST(EmbeddingCuda, BadIdsBackwardSkippedNoStrayAccess) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t N = 300, D = 130;  // several staged token batches and column blocks
  const int32_t V = 11;
  const std::vector<int32_t> ids = bad_ids(N, V);
  std::vector<double> dy(size_t(N * D)), dtable(size_t(V * D));
  for (size_t i = 0; i < dy.size(); ++i) dy[i] = double(i % 17) - 8;
  for (size_t i = 0; i < dtable.size(); ++i) dtable[i] = double(i % 5);
  std::vector<double> want = dtable;  // the contributions of the valid ids, in token order
  for (int64_t n = 0; n < N; ++n) {
    const int32_t v = ids[size_t(n)];
    if (v < 0 || v >= V) continue;
    for (int64_t j = 0; j < D; ++j) want[size_t(v * D + j)] += dy[size_t(n * D + j)];
  }
  GuardedBuffer tok(Device::CUDA, DType::I32, {N}, ids.data()),
      g(Device::CUDA, DType::F64, {N, D}, dy.data()), dt(Device::CUDA, DType::F64, {V, D}, dtable.data());
  Ctx ctx(Device::CUDA, ScratchPolicy::Grow);
  embedding_bwd(ctx, EmbeddingBwd{dt.t(), g.t(), tok.t()});
  ctx.sync();
  EXPECT_EQ(dt.read<double>(), want);
  EXPECT_TRUE(tok.guards_intact() && g.guards_intact() && dt.guards_intact());
}

}  // namespace wersa::test

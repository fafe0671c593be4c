// The thread-count paths of decoding (issue #38): the decode team runs every chunk of a job exactly
// once (also over 20,000 back-to-back jobs, where a claim could reach into the next job), on more
// than one thread, also after its workers went to sleep; a one-row GEMV (f32, f64,
// bf16 weights) forced onto one thread and forced to split over the team (set_gemv_split_bytes)
// both match a double-precision reference and each other bit for bit, at shapes with row and
// column tails and at 2 and 3 threads; a model whose GEMVs and linear-attention step run split
// decodes like its parallel forward and exactly like the one-thread decode.
#include <omp.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "../src/kernels/cpu/team.h"
#include "decode_threads.h"
#include "testutil.h"
#include "wersa/backend/backend.h"
#include "wersa/model/generate.h"
#include "wersa/ops/matmul.h"

using namespace wersa;
using namespace wersa::test;

namespace {

constexpr int64_t kNeverSplit = int64_t(1) << 62;

}  // namespace

TEST(DecodeTeam, EveryChunkRunsOnceOnSeveralThreads) {
  for (int threads : {2, 3}) {
    const Threads th(threads, -1);
    std::atomic<int> runs[37];
    std::atomic<int> on_worker{0};
    for (int job = 0; job < 300; ++job) {
      const int chunks = 1 + job % 37;
      for (auto& r : runs) r.store(0);
      auto f = [&](int c, int n) {
        ASSERT_EQ(n, chunks);
        runs[c].fetch_add(1);
        if (cpu::team_part() != 0) on_worker.fetch_add(1);
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
        while (std::chrono::steady_clock::now() < until) {
        }
      };
      cpu::team_run(chunks, f);
      for (int c = 0; c < 37; ++c)
        ASSERT_EQ(runs[c].load(), c < chunks ? 1 : 0) << "job " << job << " chunk " << c;
      // Now and then a pause longer than the workers' spin, so that they sleep and must be woken.
      if (job % 50 == 49)
        std::this_thread::sleep_for(std::chrono::microseconds(2 * cpu::team_spin_us() + 1000));
    }
    // Back-to-back jobs of growing chunk counts and no work: a claim must never reach into the job
    // published next (a chunk run twice or lost).
    for (int job = 0; job < 20000; ++job) {
      const int chunks = 2 + job % 36;
      for (int c = 0; c < chunks; ++c) runs[c].store(0, std::memory_order_relaxed);
      auto g = [&](int c, int) { runs[c].fetch_add(1, std::memory_order_relaxed); };
      cpu::team_run(chunks, g);
      for (int c = 0; c < chunks; ++c) ASSERT_EQ(runs[c].load(), 1) << "stress job " << job << " chunk " << c;
    }
    // A worker takes part: the caller's chunk waits (up to 10 s) until another thread ran one.
    on_worker.store(0);
    auto wait_for_worker = [&](int, int) {
      if (cpu::team_part() != 0) return void(on_worker.fetch_add(1));
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (on_worker.load() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
    };
    std::this_thread::sleep_for(std::chrono::microseconds(2 * cpu::team_spin_us() + 1000));  // workers asleep
    cpu::team_run(2, wait_for_worker);
    EXPECT_GE(on_worker.load(), 1) << threads << " threads: no chunk ran on a worker";
  }
}

namespace {

// y = x w^T + b (N = 1) with f64 sums over the weights as the kernel sees them (bf16: widened).
std::vector<double> reference(const Buf& x, const Buf& w, const Buf& b, const Buf& y0, bool acc) {
  const int64_t O = w.t.dim(0), I = w.t.dim(1);
  std::vector<double> out(static_cast<size_t>(O));
  for (int64_t o = 0; o < O; ++o) {
    double s = b.get(o) + (acc ? y0.get(o) : 0.0);
    for (int64_t i = 0; i < I; ++i) s += x.get(i) * w.get(o * I + i);
    out[size_t(o)] = s;
  }
  return out;
}

}  // namespace

TEST(DecodeTeam, GemvOnOneThreadAndSplitMatchDoubleAndEachOther) {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 1},     {3, 5},    {9, 33},     {37, 67},
                                                           {130, 257}, {515, 96}, {1000, 600}, {64, 8200}};
  for (DType wt : {DType::F32, DType::F64, DType::BF16}) {
    const DType xt = wt == DType::F64 ? DType::F64 : DType::F32;
    for (const auto& [O, I] : shapes) {
      Buf x(xt, {1, I}), w0(xt, {O, I}), b(xt, {O}), y0(xt, {1, O});
      x.randn(uint64_t(O + 1)), w0.randn(uint64_t(I + 2)), b.randn(3), y0.randn(4);
      Buf w(wt, {O, I}), wr(xt, {O, I});  // the weights as stored, and their values at x's precision
      tensor_convert(w, w0);
      tensor_convert(wr, w);
      for (bool acc : {false, true}) {
        const std::vector<double> want = reference(x, wr, b, y0, acc);
        std::vector<std::vector<double>> got;
        for (int threads : {1, 2, 3})
          for (int64_t split : {kNeverSplit, int64_t(0)}) {
            const Threads th(threads, split);
            Buf y(xt, {1, O});
            y.copy_from(y0);
            matmul_fwd(ctx(), {y, x, w, b, acc});
            double worst = 0;
            for (int64_t o = 0; o < O; ++o)
              worst =
                  std::max(worst, std::fabs(y.get(o) - want[size_t(o)]) / (1.0 + std::fabs(want[size_t(o)])));
            EXPECT_LT(worst, xt == DType::F64 ? 1e-13 : 2e-5)
                << dtype_name(wt) << " O " << O << " I " << I << " threads " << threads << " split " << split;
            got.emplace_back();
            for (int64_t o = 0; o < O; ++o) got.back().push_back(y.get(o));
          }
        for (size_t k = 1; k < got.size(); ++k)
          for (int64_t o = 0; o < O; ++o)
            ASSERT_EQ(got[k][size_t(o)], got[0][size_t(o)])
                << dtype_name(wt) << " O " << O << " I " << I << " run " << k << " row " << o;
      }
    }
  }
}

namespace {

// Large enough heads (H m d = 4 x 384 x 64 > 2^16 multiply-adds) that the linear attention's
// decode step goes to the team too, one chunk per kv head.
ModelConfig split_model(const std::string& type) {
  ModelConfig m;
  m.vocab_size = 53;
  m.dim = 256;
  m.layers = 2;
  m.heads = 4;
  m.kv_heads = 4;
  m.ffn_dim = 160;
  m.rope_theta = 10000.0;
  m.init_std = 0.1;
  m.attention.type = attention_kind_from_name(type);
  m.attention.features = 384;
  m.attention.levels = 2;
  m.attention.conv_width = 5;
  m.attention.chunk = 16;
  return m;
}

}  // namespace

TEST(DecodeTeam, SplitDecodeEqualsOneThreadDecodeAndTheForward) {
  for (const char* type : {"wersa", "linear", "softmax"}) {
    for (DType dt : {DType::F64, DType::F32}) {
      Model m(split_model(type), dt, Device::CPU, false);
      m.init(7);
      const int64_t T = 20, V = m.config().vocab_size;
      std::vector<int32_t> toks(static_cast<size_t>(T));
      for (int64_t i = 0; i < T; ++i) toks[size_t(i)] = int32_t(rng_bits(5, 1, uint64_t(i)) % uint64_t(V));
      // The parallel forward's logits of every position (prefill with all logits).
      Buf all(dt, {T, V});
      {
        DecodeState st(m, DecodeOptions{T, T});
        prefill(m, st, toks, all.t);
      }
      std::vector<std::vector<double>> runs;
      for (int64_t split : {kNeverSplit, int64_t(0)}) {
        const Threads th(2, split);
        DecodeState st(m, DecodeOptions{T, 4});
        runs.emplace_back();
        double worst = 0, scale = 1e-30;
        for (int64_t t = 0; t < T; ++t) {
          const Tensor& l = decode_step(m, st, toks[size_t(t)]);
          for (int64_t v = 0; v < V; ++v) {
            const double got = dt == DType::F64 ? l.ptr<double>()[v] : double(l.ptr<float>()[v]);
            runs.back().push_back(got);
            worst = std::max(worst, std::fabs(got - all.get(t * V + v)));
            scale = std::max(scale, std::fabs(all.get(t * V + v)));
          }
        }
        EXPECT_LT(worst / scale, dt == DType::F64 ? 1e-10 : 1e-4) << type << " split " << split;
      }
      for (size_t k = 0; k < runs[0].size(); ++k)
        ASSERT_EQ(runs[1][k], runs[0][k]) << type << " " << dtype_name(dt) << " logit " << k;
    }
  }
}

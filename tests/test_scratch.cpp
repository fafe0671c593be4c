// Planned scratch (tensor/context.h): planning an op sequence validates it and records its scratch
// without computing anything; the planned run then gives the results of a growing context, takes
// no new allocation, and an op call the planning did not see is an internal error. Per-thread
// slices are distinct for every thread.
#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "testutil.h"
#include "wersa/ops/conv.h"
#include "wersa/ops/elementwise.h"
#include "wersa/ops/haar.h"
#include "wersa/ops/layernorm.h"
#include "wersa/ops/linear_attention.h"
#include "wersa/ops/matmul.h"
#include "wersa/ops/rope.h"
#include "wersa/ops/softmax_attention.h"

using namespace wersa;
using namespace wersa::test;

namespace {

constexpr double kSentinel = -12345.0;

// A small training-like op sequence in f32: forwards and backwards of scratch-taking ops, a few
// without scratch, gradients that accumulate and a state advanced in place.
struct Problem {
  static constexpr int64_t B = 2, T = 21, C = 12, K = 4, H = 2, d = 6, L = 3;
  const DType dt = DType::F32;
  // Inputs.
  Buf x{dt, {B, T, C}}, w{dt, {C, K}}, bias{dt, {C}}, lnw{dt, {C}}, lnb{dt, {C}}, gamma{dt, {B, T, L + 1}};
  Buf q{dt, {B, T, H, d}}, k{dt, {B, T, H, d}}, v{dt, {B, T, H, d}}, mw{dt, {C, C}};
  // Outputs (overwritten), accumulated gradients, states.
  Buf y{dt, {B, T, C}}, mean{dt, {B * T}}, rstd{dt, {B * T}}, yn{dt, {B * T, C}}, dx{dt, {B * T, C}};
  Buf o{dt, {B, T, H, d}}, lse{dt, {B, T, H}}, lo{dt, {B, T, H, d}}, den{dt, {B, T, H}};
  Buf dq{dt, {B, T, H, d}}, dk{dt, {B, T, H, d}}, dv{dt, {B, T, H, d}}, rq{dt, {B, T, H, d}};
  Buf hy{dt, {B, T, C}}, hdx{dt, {B, T, C}}, hdg{dt, {B, T, L + 1}}, my{dt, {B * T, C}}, ss{DType::F64, {1}};
  Buf dw{dt, {C, K}}, db{dt, {C}}, lndw{dt, {C}}, lndb{dt, {C}}, window{dt, {B, K - 1, C}};

  Problem() {
    x.randn(1), w.randn(2), bias.randn(3), lnw.randn(4, 0.5, 1.0), lnb.randn(5), gamma.uniform(6, 0.1, 1.5);
    q.randn(7), k.uniform(8, 0.0, 1.0), v.randn(9), mw.randn(10);
  }
  std::vector<Buf*> outputs() {
    return {&y, &mean, &rstd, &yn, &dx, &o, &lse, &lo, &den, &dq, &dk, &dv, &rq, &hy, &hdx, &hdg, &my, &ss};
  }
  std::vector<Buf*> accumulated() { return {&dw, &db, &lndw, &lndb, &window}; }
  void reset() {
    for (Buf* b : outputs())
      for (int64_t i = 0; i < b->n(); ++i) b->set(i, kSentinel);
    uint64_t seed = 20;
    for (Buf* b : accumulated()) b->randn(seed++);
  }
  void run(Ctx& c) {
    depthwise_conv_fwd(c, {y, x, w, bias, true, window, 5});
    depthwise_conv_bwd(c, {{}, dw, db, y, x, w});
    const Tensor y2 = y.t.view({B * T, C}), x2 = x.t.view({B * T, C});
    layernorm_fwd(c, {yn, mean, rstd, x2, lnw, lnb});
    layernorm_bwd(c, {dx, lndw, lndb, yn, x2, lnw, mean, rstd});
    softmax_attention_fwd(c, {o, lse, q, k, v, 0.4, true});
    softmax_attention_bwd(c, {dq, dk, dv, o, o, lse, q, k, v, 0.4, true});
    linear_attention_fwd(c, {lo, den, k, k, v, 8, 1e-6, true});
    rope_fwd(c, {rq, q, 10000.0, 3});
    haar_filter_fwd(c, {hy, x, gamma, int(L)});
    haar_filter_bwd(c, {hdx, hdg, hy, x, gamma, int(L)});
    matmul_fwd(c, {my, y2, mw, {}});
    sum_squares(c, {ss, my});
  }
  // Every output and accumulated buffer, bytes concatenated.
  std::vector<char> snapshot() {
    std::vector<Buf*> all = outputs();
    for (Buf* b : accumulated()) all.push_back(b);
    std::vector<char> out;
    for (Buf* b : all) {
      const char* p = static_cast<const char*>(b->t.data);
      out.insert(out.end(), p, p + b->t.bytes());
    }
    return out;
  }
};

}  // namespace

TEST(Scratch, PlanningComputesNothing) {
  Problem p;
  p.reset();
  const std::vector<char> before = p.snapshot();
  Ctx c(Device::CPU, ScratchPolicy::Planned);
  EXPECT_EQ(c.scratch_bytes(), 0u);
  c.plan([&] { p.run(c); });
  EXPECT_FALSE(c.planning());
  EXPECT_GT(c.scratch_bytes(), 0u);
  // Sentinels, accumulated gradients and the conv window are as they were.
  EXPECT_TRUE(p.snapshot() == before);
  for (int64_t i = 0; i < p.y.n(); ++i) ASSERT_EQ(p.y.get(i), kSentinel);
  for (int64_t i = 0; i < p.ss.n(); ++i) ASSERT_EQ(p.ss.get(i), kSentinel);
}

TEST(Scratch, PlannedRunEqualsGrowingRunAndAllocatesNothing) {
  Problem p;
  p.reset();
  p.run(ctx());
  const std::vector<char> grow = p.snapshot();
  for (int64_t i = 0; i < p.y.n(); ++i) ASSERT_NE(p.y.get(i), kSentinel);

  Ctx c(Device::CPU, ScratchPolicy::Planned);
  c.plan([&] { p.run(c); });
  for (int rep = 0; rep < 2; ++rep) {
    p.reset();
    const int64_t allocs = device_alloc_count();
    p.run(c);
    EXPECT_EQ(device_alloc_count(), allocs) << "a planned run allocated";
    EXPECT_TRUE(p.snapshot() == grow) << "run " << rep;
  }
  // A growing context allocates for its first calls only.
  p.reset();
  const int64_t allocs = device_alloc_count();
  p.run(ctx());
  EXPECT_EQ(device_alloc_count(), allocs);
}

TEST(Scratch, ScratchIsSizedForTheLargestCallNotTheSum) {
  const DType dt = DType::F64;
  Buf x(dt, {3, 40, 16}), w(dt, {16, 5}), y(dt, {3, 40, 16}), xs(dt, {1, 8, 16}), ys(dt, {1, 8, 16});
  x.randn(1), w.randn(2), xs.randn(3);
  auto bytes_of = [&](const std::function<void(Ctx&)>& f) {
    Ctx c(Device::CPU, ScratchPolicy::Planned);
    c.plan([&] { f(c); });
    return c.scratch_bytes();
  };
  const size_t big = bytes_of([&](Ctx& c) { depthwise_conv_fwd(c, {y, x, w, {}}); });
  const size_t small = bytes_of([&](Ctx& c) { depthwise_conv_fwd(c, {ys, xs, w, {}}); });
  const size_t both = bytes_of([&](Ctx& c) {
    depthwise_conv_fwd(c, {y, x, w, {}});
    depthwise_conv_fwd(c, {ys, xs, w, {}});
  });
  EXPECT_GT(big, 0u);
  EXPECT_GE(big, small);
  EXPECT_EQ(both, big);
  // An op without scratch records none.
  Buf mx(dt, {4, 16}), mw(dt, {8, 16}), my(dt, {4, 8});
  EXPECT_EQ(bytes_of([&](Ctx& c) { matmul_fwd(c, {my, mx, mw, {}}); }), 0u);
}

TEST(Scratch, PlanningValidatesArguments) {
  Buf x(DType::F32, {2, 5, 4}), w(DType::F32, {3, 3}), y(DType::F32, {2, 5, 4}), good_w(DType::F32, {4, 3});
  Ctx c(Device::CPU, ScratchPolicy::Planned);
  EXPECT_THROW(c.plan([&] { depthwise_conv_fwd(c, {y, x, w, {}}); }), Error);
  EXPECT_FALSE(c.planning());
  c.plan([&] { depthwise_conv_fwd(c, {y, x, good_w, {}}); });
  x.randn(1), good_w.randn(2);
  EXPECT_NO_THROW(depthwise_conv_fwd(c, {y, x, good_w, {}}));
  // A tensor on another device than the context's is an error too.
  Tensor xc = x.t;
  xc.device = Device::CUDA;
  EXPECT_THROW(depthwise_conv_fwd(c, {y, xc, good_w, {}}), Error);
}

TEST(ScratchDeathTest, CallLargerThanPlannedDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // sum_squares takes one partial sum per block, min(n, 1024) blocks.
  Buf small(DType::F32, {10}), big(DType::F32, {1000}), out(DType::F64, {1});
  small.randn(1), big.randn(2);
  Ctx c(Device::CPU, ScratchPolicy::Planned);
  c.plan([&] { sum_squares(c, {out, small}); });
  EXPECT_NO_THROW(sum_squares(c, {out, small}));
  EXPECT_DEATH(sum_squares(c, {out, big}), "planning did not see");
  // A context that planned nothing has no scratch at all.
  Buf x(DType::F32, {2, 5, 4}), w(DType::F32, {4, 3}), y(DType::F32, {2, 5, 4});
  Ctx empty(Device::CPU, ScratchPolicy::Planned);
  EXPECT_DEATH(depthwise_conv_fwd(empty, {y, x, w, {}}), "planning did not see");
}

TEST(Scratch, PerThreadSlicesAreDistinctForEveryThread) {
  const int saved = cpu_threads();
  for (int threads : {1, 2, 3, 5}) {
    set_cpu_threads(threads);
    Ctx c(Device::CPU, ScratchPolicy::Grow);
    for (int call = 0; call < 2; ++call) {  // the first call grows the scratch, the second uses it
      ScratchScope scope(c);
      const int64_t n = 13;
      const PerThread<double> s = c.per_thread<double>(n);
      ASSERT_EQ(s.copies, threads);
      EXPECT_GE(s.stride, n);
      for (int t = 0; t < s.copies; ++t) {
        EXPECT_EQ(reinterpret_cast<uintptr_t>(s.get(t)) % 64, 0u) << t;
        for (int u = 0; u < t; ++u) EXPECT_GE(std::abs(s.get(t) - s.get(u)), n) << t << " " << u;
      }
      std::vector<int> seen(size_t(threads), 0);
#pragma omp parallel
      {
        const int me = omp_get_thread_num();
        double* mine = s.get(me);
        for (int64_t i = 0; i < n; ++i) mine[i] = me * 1000 + double(i);
#pragma omp atomic
        seen[size_t(me)] += 1;
      }
      for (int t = 0; t < threads; ++t) {
        EXPECT_EQ(seen[size_t(t)], 1) << "thread " << t;
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(s.get(t)[i], t * 1000 + double(i));
      }
    }
  }
  set_cpu_threads(saved);
}

// Op times (Ctx::set_op_times): every outermost op call of a CPU context adds one call and its
// wall time under the op's name; planning adds nothing; clearing the pointer stops it.
TEST(OpTimes, EveryCallIsCountedUnderItsOpOnce) {
  Ctx c(Device::CPU, ScratchPolicy::Grow);
  Buf x(DType::F32, {64, 32}), w(DType::F32, {16, 32}), y(DType::F32, {64, 16}), s(DType::F64, {1});
  x.randn(1), w.randn(2);
  OpTimes times;
  c.plan([&] { matmul_fwd(c, {y, x, w, {}}); });  // planning: no times (no ctx times yet either)
  c.set_op_times(&times);
  c.plan([&] { matmul_fwd(c, {y, x, w, {}}); });
  EXPECT_TRUE(times.entries.empty());
  for (int i = 0; i < 3; ++i) matmul_fwd(c, {y, x, w, {}});
  sum_squares(c, {s, y});
  c.set_op_times(nullptr);
  matmul_fwd(c, {y, x, w, {}});  // after the pointer is cleared: not counted
  ASSERT_EQ(times.entries.size(), 2u);
  EXPECT_STREQ(times.entries[0].op, "matmul_fwd");
  EXPECT_EQ(times.entries[0].calls, 3);
  EXPECT_STREQ(times.entries[1].op, "sum_squares");
  EXPECT_EQ(times.entries[1].calls, 1);
  for (const OpTimes::Entry& e : times.entries) EXPECT_GE(e.seconds, 0.0);
  EXPECT_DOUBLE_EQ(times.total_seconds(), times.entries[0].seconds + times.entries[1].seconds);
  // One name from two translation units is one entry (a pointer to another copy of the literal).
  const std::string other = "matmul_fwd";
  times.add(other.c_str(), 0.5);
  EXPECT_EQ(times.entries.size(), 2u);
  EXPECT_EQ(times.entries[0].calls, 4);
}

// The matmul calls are also kept by shape and products, with 2 n i o FLOPs per product.
TEST(OpTimes, MatmulCallsByShape) {
  Ctx c(Device::CPU, ScratchPolicy::Grow);
  Buf x(DType::F32, {64, 32}), w(DType::F32, {16, 32}), y(DType::F32, {64, 16});
  Buf x2(DType::F32, {8, 32}), y2(DType::F32, {8, 16}), dx(DType::F32, {64, 32}), dw(DType::F32, {16, 32});
  x.randn(1), w.randn(2), x2.randn(3), y.randn(4);
  OpTimes times;
  c.set_op_times(&times);
  for (int i = 0; i < 2; ++i) matmul_fwd(c, {y, x, w, {}});
  matmul_fwd(c, {y2, x2, w, {}});
  MatmulFwd acc{y2, x2, w, {}};
  acc.accumulate_y = true;
  matmul_fwd(c, acc);
  matmul_bwd(c, {dx, dw, {}, y, x, w});
  matmul_bwd(c, {{}, dw, {}, y, x, w});
  c.set_op_times(nullptr);
  ASSERT_EQ(times.gemms.size(), 5u);
  auto check = [&](size_t k, const char* op, const char* products, int64_t n, int64_t calls, double flops) {
    const OpTimes::Gemm& g = times.gemms[k];
    EXPECT_STREQ(g.op, op) << k;
    EXPECT_STREQ(g.products, products) << k;
    EXPECT_EQ(g.n, n) << k;
    EXPECT_EQ(g.i, 32) << k;
    EXPECT_EQ(g.o, 16) << k;
    EXPECT_EQ(g.calls, calls) << k;
    EXPECT_DOUBLE_EQ(g.flops, flops) << k;
    EXPECT_GE(g.seconds, 0.0) << k;
  };
  check(0, "matmul_fwd", "y", 64, 2, 2 * 2.0 * 64 * 32 * 16);
  check(1, "matmul_fwd", "y", 8, 1, 2.0 * 8 * 32 * 16);
  check(2, "matmul_fwd", "y+=", 8, 1, 2.0 * 8 * 32 * 16);
  check(3, "matmul_bwd", "dx,dw", 64, 1, 2 * 2.0 * 64 * 32 * 16);
  check(4, "matmul_bwd", "dw", 64, 1, 2.0 * 64 * 32 * 16);
  // The op entries count the same calls.
  ASSERT_EQ(times.entries.size(), 2u);
  EXPECT_EQ(times.entries[0].calls, 4);
  EXPECT_EQ(times.entries[1].calls, 2);
}

// The ops that route generation state above the kernels (a one-position step, a continued chunk,
// a KV-cache append) run several kernels per call: a planned context sees all of their scratch
// (the chunk's and the step's, in f32 and f64), and each call is one entry under the op's name.
TEST(OpTimes, RoutedOpsArePlannedAndTimedAsOneCall) {
  for (DType dt : {DType::F32, DType::F64}) {
    SCOPED_TRACE(dtype_name(dt));
    constexpr int64_t T = 9, C = 40, K = 4, L = 3, H = 4, Hkv = 2, m = 5, d = 6, Tmax = 16;
    Buf x(dt, {1, T, C}), w(dt, {C, K}), b(dt, {C}), y(dt, {1, T, C}), win(dt, {1, K - 1, C});
    Buf gamma(dt, {1, T, L + 1}), hstate(dt, {1, (1 << L) - 1, C});
    Buf pq(dt, {1, T, H, m}), pk(dt, {1, T, Hkv, m}), lv(dt, {1, T, Hkv, d}), lo(dt, {1, T, H, d});
    Buf lden(dt, {1, T, H}), S(dt, {1, Hkv, m, d}), z(dt, {1, Hkv, m});
    Buf q(dt, {1, T, H, d}), k(dt, {1, T, Hkv, d}), kc(dt, {Tmax, Hkv, d}), vc(dt, {Tmax, Hkv, d});
    x.randn(1), w.randn(2), b.randn(3), gamma.randn(4), pq.uniform(5, 0.1, 1.0), pk.uniform(6, 0.1, 1.0);
    lv.randn(7), q.randn(8), k.randn(9);
    // Rows [t0, t0 + n) of a [1, T, ...] buffer.
    auto rows = [](const Buf& a, int64_t t0, int64_t n) {
      Shape s = a.t.shape;
      const int64_t inner = a.n() / s[1];
      s.dim[1] = n;
      return Tensor(static_cast<char*>(a.t.data) + size_t(t0 * inner) * dtype_size(a.t.dtype), a.t.dtype,
                    Device::CPU, s, "rows");
    };
    auto run = [&](Ctx& c, int64_t t0, int64_t n) {
      depthwise_conv_fwd(c, {rows(y, t0, n), rows(x, t0, n), w, b, true, win, t0});
      haar_filter_fwd(c, {rows(y, t0, n), rows(x, t0, n), rows(gamma, t0, n), L, hstate, t0});
      LinearAttnFwd f{rows(lo, t0, n), rows(lden, t0, n), rows(pq, t0, n), rows(pk, t0, n), rows(lv, t0, n)};
      f.S0 = S, f.z0 = z, f.advance = true;
      linear_attention_fwd(c, f);
      softmax_attention_fwd(
          c, {rows(lo, t0, n), {}, rows(q, t0, n), rows(k, t0, n), rows(k, t0, n), 0.5, true, kc, vc, t0});
    };
    Ctx c(Device::CPU, ScratchPolicy::Planned);
    c.plan([&] {
      run(c, 0, T - 1);
      run(c, T - 1, 1);
    });
    OpTimes times;
    c.set_op_times(&times);
    run(c, 0, T - 1);  // no more scratch than planned (else an internal error)
    run(c, T - 1, 1);
    c.set_op_times(nullptr);
    const char* ops[] = {"depthwise_conv_fwd", "haar_filter_fwd", "linear_attention_fwd",
                         "softmax_attention_fwd"};
    ASSERT_EQ(times.entries.size(), 4u);
    for (int i = 0; i < 4; ++i) {
      EXPECT_STREQ(times.entries[size_t(i)].op, ops[i]);
      EXPECT_EQ(times.entries[size_t(i)].calls, 2) << ops[i];
    }
  }
}

// The few-row GEMV (src/kernels/cpu/gemv.h, issue #35): matmul_fwd over N <= kGemvMaxRows rows
// gives every row bitwise what the one-row GEMV gives that row alone (f32, f64 and bf16 weights),
// so that a sequence decoded beside others gets the logits it gets alone. Shapes with row tails
// (O mod 4), column tails (I mod 16 and mod 32) and more than one 8192-column chunk of the bf16
// kernel; odd N (the 2 x 2 tiles' leftover row); with and without bias and accumulation; on one
// thread and split over the decode team at 2 and 3 threads, in each kernel version the CPU runs
// (gemv_limit_isa: AVX-512, AVX2, x86-64; all bitwise the same); all against a double-precision
// reference, and N = kGemvMaxRows + 1 (BLAS from there on) too.
#include <omp.h>

#include <cmath>

#include "../src/kernels/cpu/gemv.h"
#include "decode_threads.h"
#include "testutil.h"
#include "wersa/backend/backend.h"
#include "wersa/ops/matmul.h"

using namespace wersa;
using namespace wersa::test;

namespace {

constexpr int64_t kNeverSplit = int64_t(1) << 62;

struct Case {
  int64_t N, O, I;
};

// y = x w^T + b (+ y0) in double over the weights as the kernel sees them (bf16: widened).
std::vector<double> reference(const Case& c, const Buf& x, const Buf& w, const Buf* b, const Buf& y0,
                              bool acc) {
  std::vector<double> out(static_cast<size_t>(c.N * c.O));
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t o = 0; o < c.O; ++o) {
      double s = (b ? b->get(o) : 0.0) + (acc ? y0.get(n * c.O + o) : 0.0);
      for (int64_t i = 0; i < c.I; ++i) s += x.get(n * c.I + i) * w.get(o * c.I + i);
      out[size_t(n * c.O + o)] = s;
    }
  return out;
}

std::vector<double> values(const Buf& b) {
  std::vector<double> v;
  for (int64_t i = 0; i < b.n(); ++i) v.push_back(b.get(i));
  return v;
}

// Each version of the row kernels this CPU runs (AVX-512, AVX2, x86-64): f(), then the best again.
template <class F>
void each_isa(F&& f) {
  for (cpu::GemvIsa isa : {cpu::GemvIsa::Avx512, cpu::GemvIsa::Avx2, cpu::GemvIsa::Base}) {
    cpu::gemv_limit_isa(isa);
    if (cpu::gemv_isa() != isa) continue;  // not on this CPU
    f(isa);
  }
  cpu::gemv_limit_isa(cpu::GemvIsa::Avx512);
}

void check(DType wt, const Case& c) {
  const DType xt = wt == DType::F64 ? DType::F64 : DType::F32;
  Buf x(xt, {c.N, c.I}), w0(xt, {c.O, c.I}), b(xt, {c.O}), y0(xt, {c.N, c.O});
  x.randn(uint64_t(c.N + 10 * c.I)), w0.randn(uint64_t(c.O + 7)), b.randn(3), y0.randn(4);
  Buf w(wt, {c.O, c.I}), wr(xt, {c.O, c.I});  // the weights as stored, and their values at x's precision
  tensor_convert(w, w0);
  tensor_convert(wr, w);
  const bool few = c.N <= cpu::kGemvMaxRows;
  for (bool bias : {false, true})
    for (bool acc : {false, true}) {
      const std::string what = std::string(dtype_name(wt)) + " N " + std::to_string(c.N) + " O " +
                               std::to_string(c.O) + " I " + std::to_string(c.I) + " bias " +
                               std::to_string(bias) + " acc " + std::to_string(acc);
      const std::vector<double> want = reference(c, x, wr, bias ? &b : nullptr, y0, acc);
      std::vector<std::vector<double>> runs;
      each_isa([&](cpu::GemvIsa isa) {
        for (const auto& [threads, split] :
             std::vector<std::pair<int, int64_t>>{{1, kNeverSplit}, {2, kNeverSplit}, {2, 0}, {3, 0}}) {
          const Threads th(threads, split);
          Buf y(xt, {c.N, c.O});
          y.copy_from(y0);
          matmul_fwd(ctx(), {y, x, w, bias ? b.t : Tensor(), acc});
          double worst = 0;
          for (int64_t k = 0; k < c.N * c.O; ++k)
            worst =
                std::max(worst, std::fabs(y.get(k) - want[size_t(k)]) / (1.0 + std::fabs(want[size_t(k)])));
          EXPECT_LT(worst, xt == DType::F64 ? 1e-13 : 2e-5)
              << what << " threads " << threads << " split " << split;
          runs.push_back(values(y));
          if (!few) continue;
          // Each row alone (the one-row GEMV) under the same threads: the same bits.
          for (int64_t n = 0; n < c.N; ++n) {
            Buf y1(xt, {1, c.O});
            for (int64_t o = 0; o < c.O; ++o) y1.set(o, y0.get(n * c.O + o));
            matmul_fwd(ctx(), {y1, x.t.rows(n, n + 1), w, bias ? b.t : Tensor(), acc});
            for (int64_t o = 0; o < c.O; ++o)
              ASSERT_EQ(y.get(n * c.O + o), y1.get(o))
                  << what << " kernel version " << int(isa) << " threads " << threads << " split " << split
                  << ": row " << n << " output " << o << " differs from the row alone";
          }
        }
      });
      // One thread or split, 2 or 3 threads, each kernel version (the same products and sums in the
      // same order; no contraction to FMA): the same bits.
      if (few)
        for (size_t r = 1; r < runs.size(); ++r) ASSERT_EQ(runs[r], runs[0]) << what << " run " << r;
    }
}

}  // namespace

TEST(GemvRows, FewRowsEqualEachRowAloneBitwiseAndMatchDouble) {
  // Every tile of the AVX-512 version (4 x 4 to 1 x 1: O mod 4 and N mod 4, with and without a
  // column tail) and of the others.
  const std::vector<Case> shapes = {{1, 1, 1},         {2, 3, 5},    {3, 9, 33},    {5, 37, 67},
                                    {8, 130, 257},     {7, 515, 96}, {16, 64, 48},  {4, 7, 40},
                                    {2, 6, 8192 + 72}, {3, 5, 16},   {13, 11, 100}, {15, 14, 200},
                                    {12, 12, 512},     {2, 8, 64},   {6, 9, 160},   {17, 37, 67}};
  for (DType wt : {DType::F32, DType::F64, DType::BF16})
    for (const Case& c : shapes) check(wt, c);
}

TEST(GemvRows, TheRowsThresholdEdges) {
  // kGemvMaxRows rows take the kernel (each row bitwise alone), one more BLAS (the reference only).
  for (DType wt : {DType::F32, DType::BF16})
    for (int64_t N : {cpu::kGemvMaxRows - 1, cpu::kGemvMaxRows, cpu::kGemvMaxRows + 1})
      check(wt, {N, 45, 131});
}

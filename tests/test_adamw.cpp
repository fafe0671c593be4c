// AdamW's flat form (ops/adamw.h: one call over whole arenas with a table of ranges): on the CPU
// bitwise the same as one call per range, untouched outside the ranges, and its table checked
// before anything is written; the optimizer's CUDA path (one launch over its arenas) against its
// CPU path (one call per tensor), whole model and head only, where a CUDA device is present.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "testutil.h"
#include "wersa/backend/backend.h"
#include "wersa/model/model.h"
#include "wersa/ops/adamw.h"
#include "wersa/ops/elementwise.h"
#include "wersa/optim/optimizer.h"

using namespace wersa;
using namespace wersa::test;

namespace {

template <class T>
void flat_matches_per_range(DType dt) {
  const int64_t n = 1000;
  // Ranges with gaps, adjacent ranges, an empty one, decaying and not; [0, 3) and [990, 1000) in none.
  const std::vector<int32_t> seg = {3, 40, 1, 40, 101, 0, 101, 101, 1, 128, 777, 1, 777, 990, 0};
  const int64_t S = int64_t(seg.size() / 3);
  Buf table(DType::I32, {S, 3});
  std::memcpy(table.p<int32_t>(), seg.data(), seg.size() * 4);
  Buf p(dt, {n}), m(dt, {n}), v(dt, {n}), g(dt, {n});
  p.randn(1), m.randn(2, 0.1), v.uniform(3, 0, 0.01), g.randn(4);
  Buf p2(dt, {n}), m2(dt, {n}), v2(dt, {n});
  p2.copy_from(p), m2.copy_from(m), v2.copy_from(v);
  const double lr = 3e-3, wd = 0.1;
  for (int64_t step = 1; step <= 2; ++step) {
    adamw_step(ctx(), {p, m, v, g, lr, 0.9, 0.95, 1e-8, wd, step, table});
    for (int64_t s = 0; s < S; ++s) {
      const int64_t b = seg[size_t(3 * s)], e = seg[size_t(3 * s + 1)];
      if (b == e) continue;
      auto view = [&](const Buf& x) { return Tensor(x.p<T>() + b, dt, Device::CPU, {e - b}); };
      adamw_step(ctx(), {view(p2), view(m2), view(v2), view(g), lr, 0.9, 0.95, 1e-8,
                         seg[size_t(3 * s + 2)] ? wd : 0.0, step});
    }
  }
  EXPECT_EQ(std::memcmp(p.p<T>(), p2.p<T>(), n * sizeof(T)), 0);
  EXPECT_EQ(std::memcmp(m.p<T>(), m2.p<T>(), n * sizeof(T)), 0);
  EXPECT_EQ(std::memcmp(v.p<T>(), v2.p<T>(), n * sizeof(T)), 0);
  Buf p0(dt, {n});
  p0.randn(1);
  for (int64_t i : {0, 1, 2, 990, 999})
    EXPECT_EQ(p.get(i), p0.get(i)) << "element " << i << " is in no range";
  EXPECT_NE(p.get(3), p0.get(3));
}

}  // namespace

TEST(AdamWFlat, BitwiseAsOneCallPerRange) {
  flat_matches_per_range<float>(DType::F32);
  flat_matches_per_range<double>(DType::F64);
}

TEST(AdamWFlat, BadTablesAreRejectedBeforeWriting) {
  const int64_t n = 50;
  Buf p(DType::F32, {n}), m(DType::F32, {n}), v(DType::F32, {n}), g(DType::F32, {n});
  p.randn(1), g.randn(2);
  Buf p0(DType::F32, {n});
  p0.copy_from(p);
  const std::vector<std::vector<int32_t>> bad = {
      {0, 51, 1},            // past the end
      {-1, 10, 1},           // before the start
      {10, 5, 0},            // begin > end
      {0, 20, 1, 10, 30, 1}  // overlapping
  };
  for (const auto& rows : bad) {
    Buf t(DType::I32, {int64_t(rows.size() / 3), 3});
    std::memcpy(t.p<int32_t>(), rows.data(), rows.size() * 4);
    EXPECT_THROW(adamw_step(ctx(), {p, m, v, g, 1e-3, 0.9, 0.95, 1e-8, 0.1, 1, t}), Error);
    EXPECT_EQ(std::memcmp(p.p<float>(), p0.p<float>(), n * 4), 0);
  }
  Buf wrong(DType::I32, {2, 2});
  EXPECT_THROW(adamw_step(ctx(), {p, m, v, g, 1e-3, 0.9, 0.95, 1e-8, 0.1, 1, wrong}), Error);
  Buf f32(DType::F32, {1, 3});
  EXPECT_THROW(adamw_step(ctx(), {p, m, v, g, 1e-3, 0.9, 0.95, 1e-8, 0.1, 1, f32}), Error);
}

namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 41;
  c.dim = 32;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.ffn_dim = 40;
  c.task.type = "classify";
  c.task.num_classes = 3;
  return c;
}

std::vector<unsigned char> bytes_of(const Arena& a, DType dt) {
  const Tensor f = a.flat(dt);
  std::vector<unsigned char> h(f.bytes());
  device_copy(Device::CPU, h.data(), f.device, f.data, h.size());
  return h;
}

double norm_err(const std::vector<unsigned char>& a, const std::vector<unsigned char>& b, DType dt) {
  double num = 0, den = 0;
  const size_t n = a.size() / dtype_size(dt);
  for (size_t i = 0; i < n; ++i) {
    const double x = dt == DType::F32 ? reinterpret_cast<const float*>(a.data())[i]
                                      : reinterpret_cast<const double*>(a.data())[i];
    const double y = dt == DType::F32 ? reinterpret_cast<const float*>(b.data())[i]
                                      : reinterpret_cast<const double*>(b.data())[i];
    num += (x - y) * (x - y);
    den += y * y;
  }
  return den > 0 ? num / den : num;
}

}  // namespace

// The CUDA optimizer updates the whole model in one flat launch: the same parameters and moments
// as the CPU optimizer's per-tensor calls (bitwise in the simulator; within rounding on a GPU,
// which may contract a * b + c), and with head_only only the classifier head moves.
TEST(AdamWFlat, CudaOptimizerMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  for (DType dt : {DType::F32, DType::F64}) {
    Model cpu(small_config(), dt);
    cpu.init(7);
    Model gpu(cpu, Device::CUDA);
    AdamW a_cpu(cpu), a_gpu(gpu);
    TrainConfig tc;
    tc.weight_decay = 0.1;
    Ctx c_cpu(Device::CPU, ScratchPolicy::Grow), c_gpu(Device::CUDA, ScratchPolicy::Grow);
    for (int64_t step = 1; step <= 3; ++step) {
      Buf g(dt, {cpu.grads_arena().flat(dt).numel()});
      g.randn(uint64_t(100 + step), 0.01);
      tensor_copy(cpu.grads_arena().flat(dt), g);
      tensor_copy(gpu.grads_arena().flat(dt), g);
      const bool head_only = step == 3;
      const auto before = bytes_of(gpu.params_arena(), dt);
      a_cpu.step(c_cpu, tc, 1e-3, step, head_only);
      a_gpu.step(c_gpu, tc, 1e-3, step, head_only);
      c_gpu.sync();
      const double tol = dt == DType::F32 ? 1e-12 : 1e-28;
      EXPECT_LE(norm_err(bytes_of(gpu.params_arena(), dt), bytes_of(cpu.params_arena(), dt), dt), tol);
      EXPECT_LE(norm_err(bytes_of(a_gpu.m_arena(), dt), bytes_of(a_cpu.m_arena(), dt), dt), tol);
      EXPECT_LE(norm_err(bytes_of(a_gpu.v_arena(), dt), bytes_of(a_cpu.v_arena(), dt), dt), tol);
#if defined(WERSA_CUDA_SIM)
      EXPECT_TRUE(bytes_of(gpu.params_arena(), dt) == bytes_of(cpu.params_arena(), dt)) << "step " << step;
#endif
      if (head_only) {  // only the classifier's views changed
        const auto after = bytes_of(gpu.params_arena(), dt);
        const char* base = static_cast<const char*>(gpu.params_arena().flat(dt).data);
        size_t changed_outside = 0, changed_inside = 0;
        std::vector<bool> head(after.size(), false);
        for (size_t i = 0; i < gpu.param_decls().size(); ++i)
          if (gpu.param_decls()[i].name.rfind(kClassifierPrefix, 0) == 0) {
            const Tensor& t = gpu.params_arena().tensors()[i];
            const size_t off = size_t(static_cast<const char*>(t.data) - base);
            for (size_t k = 0; k < t.bytes(); ++k) head[off + k] = true;
          }
        for (size_t k = 0; k < after.size(); ++k)
          (head[k] ? changed_inside : changed_outside) += after[k] != before[k];
        EXPECT_EQ(changed_outside, 0u);
        EXPECT_GT(changed_inside, 0u);
      }
    }
  }
}

// Gradient clipping decided where the norm lives (clip_by_norm): the factor max_norm / norm in
// double, applied once, exactly when norm > max_norm > 0; a NaN norm, max_norm 0 and a norm under
// the limit leave the gradients alone; the optimizer's sum of squares feeds it.
template <class T>
void clip_matches_brute_force(DType dt) {
  const int64_t n = 777;
  Buf x(dt, {n}), norm2(DType::F64, {1});
  x.randn(9);
  std::vector<T> x0(x.p<T>(), x.p<T>() + n);
  for (double sq : {6.25, 0.81, std::nan("")})
    for (double mx : {0.0, 1.0, 2.5, 3.0}) {
      std::memcpy(x.p<T>(), x0.data(), size_t(n) * sizeof(T));
      norm2.p<double>()[0] = sq;
      clip_by_norm(ctx(), {x, norm2, mx});
      const double norm = std::sqrt(sq);
      const bool clips = mx > 0 && norm > mx;
      for (int64_t i = 0; i < n; ++i) {
        const T want = clips ? T(x0[size_t(i)] * T(mx / norm)) : x0[size_t(i)];
        ASSERT_EQ(x.p<T>()[i], want) << "norm^2 " << sq << " max " << mx << " at " << i;
      }
      if (clips) {  // the clipped vector's norm is max_norm (to rounding) when norm2 is x's own
        std::memcpy(x.p<T>(), x0.data(), size_t(n) * sizeof(T));
        sum_squares(ctx(), {norm2, x});
        clip_by_norm(ctx(), {x, norm2, mx * 1e-3});
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += double(x.p<T>()[i]) * double(x.p<T>()[i]);
        EXPECT_NEAR(std::sqrt(s), mx * 1e-3, mx * 1e-3 * (dt == DType::F32 ? 1e-6 : 1e-14));
      }
    }
  EXPECT_THROW(clip_by_norm(ctx(), {x, Tensor{}, 1.0}), Error);
  EXPECT_THROW(clip_by_norm(ctx(), {x, norm2, std::nan("")}), Error);
}

TEST(ClipByNorm, MatchesBruteForce) {
  clip_matches_brute_force<float>(DType::F32);
  clip_matches_brute_force<double>(DType::F64);
}

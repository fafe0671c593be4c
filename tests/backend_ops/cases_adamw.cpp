// test_backend_ops cases: adamw_step (f32, f64; with and without weight decay; first and later
// steps; NaN/Inf in the gradient; sizes 1 to past a grid's worth of 256-thread blocks), and its
// flat form (a table of ranges over whole arenas). Plain TEST: a bad table on the device touches
// nothing outside the tensors.
#include <gtest/gtest.h>

#include <cmath>

#include "backend_ops.h"
#include "guarded_buffer.h"
#include "wersa/backend/backend.h"
#include "wersa/ops/adamw.h"

namespace wersa::test {

void add_adamw_cases(std::vector<OpCase>& out) {
  struct Hyper {
    double lr, wd;
    int64_t step;
  };
  for (DType dt : {DType::F32, DType::F64}) {
    const char* d = dt == DType::F32 ? "f32" : "f64";
    for (int64_t n : {1, 7, 33, 1000, 65537})
      for (const Hyper& h : {Hyper{1e-3, 0.0, 1}, Hyper{3e-4, 0.1, 10}, Hyper{1e-2, 0.01, 1000}}) {
        for (bool special : {false, true}) {
          if (special && n != 1000) continue;
          OpCase c("adamw_step", std::string("adamw_step ") + d + " n" + std::to_string(n) + " t" +
                                     std::to_string(h.step) + " wd" + std::to_string(h.wd) +
                                     (special ? " special" : ""));
          c.acc("p", {n}, dt).acc("m", {n}, dt).acc("v", {n}, dt);
          c.tensors.back().fill = Fill::Uniform;  // v >= 0, as the second moment is
          c.tensors.back().a = 0;
          c.tensors.back().b = 1e-2;
          c.tensors[1].b = 0.1;  // m: small, like a running mean of gradients
          c.in("g", {n}, dt, special ? Fill::Special : Fill::Normal);
          c.max_err = dt == DType::F32 ? 1e-12 : 1e-28;
          c.run = [h](Ctx& ctx, const Bound& t) {
            adamw_step(ctx, AdamWArgs{t["p"], t["m"], t["v"], t["g"], h.lr, 0.9, 0.95, 1e-8, h.wd, h.step});
          };
          out.push_back(c);
        }
      }
    // The flat form: ranges with gaps (left as they are), adjacent and empty ranges, with and
    // without decay. The table is an output of the case that `run` fills from the host before
    // the op (the framework fills inputs only at random): the same rows on both devices.
    for (int64_t n : {1, 300, 70000}) {
      std::vector<int32_t> rows;
      if (n == 1)
        rows = {0, 1, 1};
      else
        rows = {3, 40, 1, 40, 101, 0, 101, 101, 1, 128, int32_t(n / 2), 1, int32_t(n / 2), int32_t(n - 10),
                0};
      const int64_t S = int64_t(rows.size() / 3);
      OpCase c("adamw_step", std::string("adamw_step ") + d + " flat n" + std::to_string(n));
      c.acc("p", {n}, dt).acc("m", {n}, dt).acc("v", {n}, dt);
      c.tensors.back().fill = Fill::Uniform;
      c.tensors.back().a = 0;
      c.tensors.back().b = 1e-2;
      c.in("g", {n}, dt).out("segments", {S, 3}, DType::I32);
      c.max_err = dt == DType::F32 ? 1e-12 : 1e-28;
      c.run = [rows](Ctx& ctx, const Bound& t) {
        const Tensor& seg = t["segments"];
        device_copy(seg.device, seg.data, Device::CPU, rows.data(), rows.size() * sizeof(int32_t));
        adamw_step(ctx, AdamWArgs{t["p"], t["m"], t["v"], t["g"], 3e-4, 0.9, 0.95, 1e-8, 0.1, 7, seg});
      };
      out.push_back(c);
    }
  }
}

// On the device the table is not checked: rows outside the tensors, reversed or overlapping make
// some ranges move or not, but nothing outside p, m, v, g (and every element at most once).
TEST(AdamWFlatBadTable, NothingOutsideTheTensors) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t n = 50;
  const std::vector<int32_t> rows = {-5, 10, 1, 30, 20, 0, 15, 40, 1, 35, 1 << 30, 0, 2000000000, -7, 1};
  std::vector<float> ones(size_t(n), 1.0f), zeros(size_t(n), 0.0f);
  GuardedBuffer p(Device::CUDA, DType::F32, {n}, ones), m(Device::CUDA, DType::F32, {n}, zeros),
      v(Device::CUDA, DType::F32, {n}, zeros), g(Device::CUDA, DType::F32, {n}, ones),
      seg(Device::CUDA, DType::I32, {int64_t(rows.size() / 3), 3}, rows);
  Ctx ctx(Device::CUDA);
  adamw_step(ctx, AdamWArgs{p.t(), m.t(), v.t(), g.t(), 1e-3, 0.9, 0.95, 1e-8, 0.1, 1, seg.t()});
  ctx.sync();
  for (const GuardedBuffer* t : {&p, &m, &v, &g}) {
    bool ok = false;
    const std::vector<float> x = t->read<float>(&ok);
    EXPECT_TRUE(ok) << "a write outside a tensor";
    for (float e : x) EXPECT_TRUE(std::isfinite(e));
  }
  bool ok = false;
  EXPECT_EQ(seg.read<int32_t>(&ok), rows);
  EXPECT_TRUE(ok);
  // Moved elements took exactly one step: m = (1 - b1) g (twice would give about 0.19).
  for (float e : m.read<float>()) EXPECT_TRUE(e == 0.0f || e == 1.0f - 0.9f) << e;
}

}  // namespace wersa::test

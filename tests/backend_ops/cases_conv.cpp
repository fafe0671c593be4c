// test_backend_ops cases: the depthwise convolution (include/wersa/ops/conv.h), f32 and f64.
//   depthwise_conv_fwd     causal and centred (K odd and even), with and without bias, with lengths
//                          (padded batches), continuing a sequence from a window (through the op:
//                          a chunk of one position runs the step kernel, a longer one the forward
//                          reading the ring and then the window kernel; the ring is compared),
//                          K = 1, K > T, T = 1, channels not a multiple of 32, empty batches, NaN
//                          and infinities in x
//   depthwise_conv_bwd     every subset of dx (overwritten or accumulated), dw, db; causal and
//                          centred; lengths; K > 8 (two groups of taps); many row chunks (B T over
//                          16k rows) and several channel blocks (C > 128); NaN in dy
//   depthwise_conv_step    positions before, at and after K - 1 (ring rows of negative positions
//                          unread), K = 1 (no window), with and without bias
//   depthwise_conv_window  T < K-1, T = K-1, T > K-1, pos0 0 and past the ring
// Plain TESTs: lengths outside [1, T] on the device give NaN in that sequence's rows of y and dx
// and in all of dw and db, and nothing is written outside the tensors.
#include <gtest/gtest.h>

#include <cmath>

#include "backend_ops.h"
#include "guarded_buffer.h"
#include "wersa/ops/conv.h"

namespace wersa::test {

namespace {

const char* dname(DType dt) { return dt == DType::F32 ? "f32" : "f64"; }
double tol(DType dt) { return dt == DType::F32 ? 1e-12 : 1e-26; }
std::string shape_name(DType dt, int64_t B, int64_t T, int64_t C, int64_t K) {
  return std::string(dname(dt)) + " B" + std::to_string(B) + " T" + std::to_string(T) + " C" +
         std::to_string(C) + " K" + std::to_string(K);
}

struct Fwd {
  bool causal = true, bias = true, lengths = false, special = false;
};

void add_fwd(std::vector<OpCase>& out, DType dt, int64_t B, int64_t T, int64_t C, int64_t K, Fwd v) {
  std::string name = "depthwise_conv_fwd " + shape_name(dt, B, T, C, K) + (v.causal ? " causal" : " centred");
  name +=
      std::string(v.bias ? "" : " no_bias") + (v.lengths ? " lengths" : "") + (v.special ? " special" : "");
  OpCase c("depthwise_conv_fwd", name);
  c.in("x", {B, T, C}, dt, v.special ? Fill::Special : Fill::Normal).in("w", {C, K}, dt);
  if (v.bias) c.in("b", {C}, dt);
  if (v.lengths) c.ids("lengths", {B}, 1, T + 1);
  c.out("y", {B, T, C}, dt);
  c.max_err = tol(dt);
  c.run = [v](Ctx& ctx, const Bound& t) {
    DepthwiseConvFwd a{t["y"], t["x"], t["w"], v.bias ? t["b"] : Tensor{}, v.causal};
    if (v.lengths) a.lengths = t["lengths"];
    depthwise_conv_fwd(ctx, a);
  };
  out.push_back(c);
}

// A causal forward continuing a sequence at pos0 from a window (advanced in place: compared too).
void add_fwd_window(std::vector<OpCase>& out, DType dt, int64_t B, int64_t T, int64_t C, int64_t K,
                    int64_t pos0, bool bias) {
  // One position of one sequence is the step kernel's; anything longer, the forward's and the window's.
  const char* op = B == 1 && T == 1 ? "depthwise_conv_step" : "depthwise_conv_fwd";
  OpCase c(op, "depthwise_conv_fwd window " + shape_name(dt, B, T, C, K) + " pos0 " + std::to_string(pos0) +
                   (bias ? "" : " no_bias"));
  c.in("x", {B, T, C}, dt).in("w", {C, K}, dt);
  if (bias) c.in("b", {C}, dt);
  c.acc("window", {B, K - 1, C}, dt).out("y", {B, T, C}, dt);
  c.max_err = tol(dt);
  c.run = [bias, pos0](Ctx& ctx, const Bound& t) {
    DepthwiseConvFwd a{t["y"], t["x"], t["w"], bias ? t["b"] : Tensor{}, true, t["window"], pos0};
    depthwise_conv_fwd(ctx, a);
  };
  out.push_back(c);
}

struct Bwd {
  bool dx = true, acc = false, dw = true, db = true, causal = true, lengths = false, special = false;
};

void add_bwd(std::vector<OpCase>& out, DType dt, int64_t B, int64_t T, int64_t C, int64_t K, Bwd v) {
  std::string name = "depthwise_conv_bwd " + shape_name(dt, B, T, C, K) + (v.causal ? " causal" : " centred");
  name += v.dx ? (v.acc ? " dx+=" : " dx") : "";
  name += std::string(v.dw ? " dw" : "") + (v.db ? " db" : "") + (v.lengths ? " lengths" : "");
  name += v.special ? " special" : "";
  OpCase c("depthwise_conv_bwd", name);
  c.in("dy", {B, T, C}, dt, v.special ? Fill::Special : Fill::Normal)
      .in("x", {B, T, C}, dt)
      .in("w", {C, K}, dt);
  if (v.lengths) c.ids("lengths", {B}, 1, T + 1);
  if (v.dx) {
    if (v.acc)
      c.acc("dx", {B, T, C}, dt);
    else
      c.out("dx", {B, T, C}, dt);
  }
  if (v.dw) c.acc("dw", {C, K}, dt);
  if (v.db) c.acc("db", {C}, dt);
  // dw and db: the CPU sums runs of 64 products in T, the kernel every product in double (seen in
  // the simulator: up to 4e-14 in f32, 1e-30 in f64; y, dx, the step and the window were exact).
  c.max_err = tol(dt);
  c.run = [v](Ctx& ctx, const Bound& t) {
    DepthwiseConvBwd a{v.dx ? t["dx"] : Tensor{},
                       v.dw ? t["dw"] : Tensor{},
                       v.db ? t["db"] : Tensor{},
                       t["dy"],
                       t["x"],
                       t["w"],
                       v.causal,
                       v.acc};
    if (v.lengths) a.lengths = t["lengths"];
    depthwise_conv_bwd(ctx, a);
  };
  out.push_back(c);
}

void add_step(std::vector<OpCase>& out, DType dt, int64_t C, int64_t K, int64_t pos, bool bias) {
  OpCase c("depthwise_conv_step", "depthwise_conv_step " + std::string(dname(dt)) + " C" + std::to_string(C) +
                                      " K" + std::to_string(K) + " pos " + std::to_string(pos) +
                                      (bias ? "" : " no_bias"));
  c.in("x", {C}, dt).in("w", {C, K}, dt);
  if (bias) c.in("b", {C}, dt);
  if (K > 1) c.acc("window", {K - 1, C}, dt);
  c.out("y", {C}, dt);
  c.max_err = tol(dt);
  c.run = [K, pos, bias](Ctx& ctx, const Bound& t) {
    depthwise_conv_step(ctx, DepthwiseConvStep{t["y"], K > 1 ? t["window"] : Tensor{}, t["x"], t["w"],
                                               bias ? t["b"] : Tensor{}, pos});
  };
  out.push_back(c);
}

void add_window(std::vector<OpCase>& out, DType dt, int64_t B, int64_t T, int64_t C, int64_t W,
                int64_t pos0) {
  OpCase c("depthwise_conv_window",
           "depthwise_conv_window " + shape_name(dt, B, T, C, W + 1) + " pos0 " + std::to_string(pos0));
  c.in("x", {B, T, C}, dt).acc("window", {B, W, C}, dt);
  c.max_err = 0;  // copies
  c.run = [pos0](Ctx& ctx, const Bound& t) {
    depthwise_conv_window(ctx, DepthwiseConvWindow{t["window"], t["x"], pos0});
  };
  out.push_back(c);
}

}  // namespace

void add_conv_cases(std::vector<OpCase>& out) {
  struct S {
    int64_t B, T, C, K;
  };
  const S small[] = {{1, 1, 1, 1}, {1, 1, 5, 4},  {2, 7, 33, 4}, {3, 17, 8, 3},
                     {1, 5, 3, 7}, {2, 9, 40, 2}, {1, 12, 6, 1}, {2, 64, 64, 4}};
  for (DType dt : {DType::F32, DType::F64}) {
    for (const S& s : small)
      for (bool causal : {true, false}) {
        add_fwd(out, dt, s.B, s.T, s.C, s.K, Fwd{causal, true, false, false});
        add_fwd(out, dt, s.B, s.T, s.C, s.K, Fwd{causal, false, true, false});  // no bias, lengths
        add_fwd(out, dt, s.B, s.T, s.C, s.K, Fwd{causal, true, true, false});
        add_bwd(out, dt, s.B, s.T, s.C, s.K, Bwd{true, false, true, true, causal, false});
        add_bwd(out, dt, s.B, s.T, s.C, s.K, Bwd{true, true, true, true, causal, true});  // dx+=, lengths
        add_bwd(out, dt, s.B, s.T, s.C, s.K, Bwd{true, false, true, true, causal, true});
      }
    // Subsets of the gradients.
    for (bool causal : {true, false}) {
      add_bwd(out, dt, 2, 19, 33, 4, Bwd{true, false, false, false, causal, false});  // dx only
      add_bwd(out, dt, 2, 19, 33, 4, Bwd{true, true, false, false, causal, true});    // dx+= only, lengths
      add_bwd(out, dt, 2, 19, 33, 4, Bwd{false, false, true, false, causal, true});   // dw only, lengths
      add_bwd(out, dt, 2, 19, 33, 4, Bwd{false, false, false, true, causal, false});  // db only
      add_bwd(out, dt, 2, 19, 33, 4, Bwd{false, false, true, true, causal, false});   // dw, db
    }
    // Two groups of taps (K + 1 > 8): K = 9 odd and 12 even.
    for (int64_t K : {9, 12})
      for (bool causal : {true, false}) {
        add_fwd(out, dt, 2, 30, 17, K, Fwd{causal, true, true, false});
        add_bwd(out, dt, 2, 30, 17, K, Bwd{true, false, true, true, causal, true});
      }
    // Empty batches: nothing written, dw and db unchanged.
    add_fwd(out, dt, 0, 5, 4, 3, Fwd{});
    add_fwd(out, dt, 2, 0, 4, 3, Fwd{});
    add_bwd(out, dt, 0, 5, 4, 3, Bwd{true, true, true, true, true, false});
    add_bwd(out, dt, 2, 0, 4, 3, Bwd{});
    add_fwd(out, dt, 2, 3, 0, 3, Fwd{true, true, true, false});  // no channels
    add_bwd(out, dt, 2, 3, 0, 3, Bwd{true, false, true, true, true, true});
    // NaN and infinities.
    add_fwd(out, dt, 2, 13, 9, 4, Fwd{true, true, false, true});
    add_fwd(out, dt, 2, 13, 9, 5, Fwd{false, true, true, true});
    add_bwd(out, dt, 2, 13, 9, 4, Bwd{true, false, true, true, true, false, true});
    add_bwd(out, dt, 2, 13, 9, 5, Bwd{true, true, true, true, false, true, true});
    // Continuing a sequence from a window.
    for (int64_t pos0 : {0, 2, 3, 50}) {
      add_fwd_window(out, dt, 2, 7, 33, 4, pos0, true);
      add_fwd_window(out, dt, 3, 2, 5, 4, pos0, false);  // T < K - 1
      add_fwd_window(out, dt, 1, 1, 33, 4, pos0, true);  // the step kernel
      add_fwd_window(out, dt, 2, 1, 6, 3, pos0, true);   // T = 1 of two sequences: the forward
    }
    add_fwd_window(out, dt, 1, 9, 4, 1, 5, true);  // K = 1: the ring is empty (plain forward)
    // Generation steps.
    for (int64_t K : {1, 2, 4})
      for (int64_t pos : {0, 1, 2, 3, 100})
        for (int64_t C : {1, 33}) add_step(out, dt, C, K, pos, pos % 2 == 0);
    add_step(out, dt, 300, 5, 7, true);
    // Advancing a window.
    for (int64_t pos0 : {0, 1, 6, 41}) {
      add_window(out, dt, 2, 2, 5, 3, pos0);  // T < K - 1
      add_window(out, dt, 2, 3, 5, 3, pos0);  // T = K - 1
      add_window(out, dt, 3, 8, 33, 3, pos0);
      add_window(out, dt, 1, 1, 7, 1, pos0);
    }
    add_window(out, dt, 2, 0, 5, 3, 4);  // no rows: unchanged
  }
  // Realistic and large: many row chunks (B T > 16k rows), several channel blocks (C > 128).
  add_fwd(out, DType::F32, 4, 1000, 256, 4, Fwd{});
  add_fwd(out, DType::F32, 4, 1000, 256, 4, Fwd{true, true, true, false});
  add_fwd(out, DType::F32, 2, 333, 300, 5, Fwd{false, true, false, false});
  add_bwd(out, DType::F32, 4, 1000, 256, 4, Bwd{});
  add_bwd(out, DType::F32, 2, 9000, 8, 4, Bwd{true, false, true, true, true, true});
  add_bwd(out, DType::F32, 2, 333, 300, 5, Bwd{true, true, true, true, false, true});
  add_bwd(out, DType::F64, 3, 6000, 40, 3, Bwd{true, false, true, true, false, false});
  add_fwd_window(out, DType::F32, 4, 500, 256, 4, 1234, true);
}

namespace {

// T = 4; sequences 1 (length 0) and 3 (length 5) are bad.
const std::vector<int32_t> kLengths = {2, 0, 4, 5};
bool bad(int64_t b) { return kLengths[size_t(b)] < 1 || kLengths[size_t(b)] > 4; }

TEST(ConvBadLengths, NanForThatSequence) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t B = 4, Tn = 4, C = 3, K = 2;
  std::vector<float> x(size_t(B * Tn * C)), w(size_t(C * K), 0.5f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 5) - 2.f;
  GuardedBuffer gx(Device::CUDA, DType::F32, {B, Tn, C}, x);
  GuardedBuffer gw(Device::CUDA, DType::F32, {C, K}, w);
  GuardedBuffer gl(Device::CUDA, DType::I32, {B}, kLengths);
  GuardedBuffer gy(Device::CUDA, DType::F32, {B, Tn, C}, std::vector<float>(x.size(), -7.f));
  GuardedBuffer gdx(Device::CUDA, DType::F32, {B, Tn, C}, std::vector<float>(x.size(), -7.f));
  GuardedBuffer gdw(Device::CUDA, DType::F32, {C, K}, std::vector<float>(w.size(), 1.f));
  GuardedBuffer gdb(Device::CUDA, DType::F32, {C}, std::vector<float>(size_t(C), 1.f));
  Ctx ctx(Device::CUDA, ScratchPolicy::Grow);
  DepthwiseConvFwd f{gy.t(), gx.t(), gw.t(), Tensor{}};
  f.lengths = gl.t();
  depthwise_conv_fwd(ctx, f);
  DepthwiseConvBwd bw{gdx.t(), gdw.t(), gdb.t(), gx.t(), gx.t(), gw.t()};
  bw.accumulate_dx = true;
  bw.lengths = gl.t();
  depthwise_conv_bwd(ctx, bw);
  ctx.sync();
  bool guards = false;
  for (const GuardedBuffer* g : {&gy, &gdx}) {
    const std::vector<float> v = g->read<float>(&guards);
    EXPECT_TRUE(guards) << "a write outside the tensor";
    for (int64_t b = 0; b < B; ++b)
      for (int64_t e = 0; e < Tn * C; ++e) {
        const float got = v[size_t(b * Tn * C + e)];
        if (bad(b))
          EXPECT_TRUE(std::isnan(got)) << "b " << b << " e " << e << ": " << got;
        else
          EXPECT_TRUE(std::isfinite(got)) << "b " << b << " e " << e << ": " << got;
      }
  }
  for (const GuardedBuffer* g : {&gdw, &gdb}) {
    const std::vector<float> v = g->read<float>(&guards);
    EXPECT_TRUE(guards) << "a write outside the tensor";
    for (float got : v) EXPECT_TRUE(std::isnan(got)) << got;
  }
}

}  // namespace
}  // namespace wersa::test

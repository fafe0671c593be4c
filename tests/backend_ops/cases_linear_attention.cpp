// test_backend_ops cases: linear_attention_fwd, _bwd, _step, _state (f32, f64). Features phiq,
// phik uniform in [0, 1) (non-negative, as phi's), v and dout normal. Shapes (B, T, H, Hkv, m, d):
// T = 0, 1, 31, 63, 64, 65, 130, 200 (the CUDA chunks are 64 rows for f32, 32 for f64), several
// heads, GQA (H / Hkv = 2, 4), d != m, m and d + 1 past the kernels' 64-wide tiles; causal and
// bidirectional; the causal forward from an initial state (S0, z0), also advancing it; eps = 0.25
// (where a lost eps shows in f32); the CPU's chunk 16 and 1000
// (the CUDA kernels keep their own); padded sequences (phik and v zeroed past each length by
// mask_padding; lengths 1, T and T / 2 + 1); B = 2, H = 4, T = 1024, m = d = 64 (plain simulator
// build only). The step: one position, and 70 positions in a row from a given state (den written
// or not); the state op over a prefix, overwritten or accumulated. Plain TESTs: on CUDA, steps from
// zero reproduce the forward's rows, and the state op after the prefix equals the steps' state.
#include <gtest/gtest.h>

#include <cmath>

#include "backend_ops.h"
#include "guarded_buffer.h"
#include "wersa/ops/elementwise.h"
#include "wersa/ops/linear_attention.h"
#include "wersa/ops/mask.h"

namespace wersa::test {

namespace {

struct Sz {
  int64_t B, T, H, Hkv, m, d;
};

std::string tag(DType dt, const Sz& s) {
  return std::string(dt == DType::F32 ? "f32" : "f64") + " B" + std::to_string(s.B) + " T" +
         std::to_string(s.T) + " H" + std::to_string(s.H) + " Hkv" + std::to_string(s.Hkv) + " m" +
         std::to_string(s.m) + " d" + std::to_string(s.d);
}

// Normalised error thresholds. Seen on the simulator: f32 up to 2e-14 (forward, step, state) and
// 5e-13 (backward, T = 1024), f64 up to 5e-31. A wrong mask, chunk state or normaliser gives 1e-4
// and more; a lost eps shows in the eps = 0.25 cases.
double tol(DType dt) { return dt == DType::F32 ? 1e-10 : 1e-26; }

// The inputs phiq, phik, v; with `pad`, lengths [B] and the masked copies phik_p, v_p (outputs
// not compared) that the op then reads.
void add_inputs(OpCase& c, DType dt, const Sz& s, bool pad) {
  c.in("phiq", {s.B, s.T, s.H, s.m}, dt, Fill::Uniform, 0, 1);
  c.in("phik", {s.B, s.T, s.Hkv, s.m}, dt, Fill::Uniform, 0, 1);
  c.in("v", {s.B, s.T, s.Hkv, s.d}, dt);
  if (pad) {
    c.out("lengths", {s.B}, DType::I32, false);
    c.out("phik_p", {s.B, s.T, s.Hkv, s.m}, dt, false).out("v_p", {s.B, s.T, s.Hkv, s.d}, dt, false);
  }
}

// phik and v as the op reads them: masked past each sequence's length when padded. The lengths
// cycle through 1, T and T / 2 + 1.
std::pair<Tensor, Tensor> keys(Ctx& ctx, const Bound& t, bool pad) {
  if (!pad) return {t["phik"], t["v"]};
  const int64_t B = t["phik"].dim(0), T = t["phik"].dim(1);
  std::vector<int32_t> len(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) len[size_t(b)] = int32_t(b % 3 == 0 ? 1 : b % 3 == 1 ? T : T / 2 + 1);
  tensor_copy(ctx, t["lengths"], Tensor(len.data(), DType::I32, Device::CPU, Shape{B}, "lengths"));
  mask_padding(ctx, MaskPadding{t["phik_p"], t["phik"], t["lengths"]});
  mask_padding(ctx, MaskPadding{t["v_p"], t["v"], t["lengths"]});
  return {t["phik_p"], t["v_p"]};
}

void add_fwd(std::vector<OpCase>& out, DType dt, Sz s, bool causal, bool state = false, bool pad = false,
             int chunk = 64, double eps = 1e-6) {
  std::string name = "linear_attention_fwd " + tag(dt, s) + (causal ? " causal" : " bidir");
  name += std::string(state ? " S0" : "") + (pad ? " padded" : "") +
          (chunk != 64 ? " chunk" + std::to_string(chunk) : "");
  name += eps != 1e-6 ? " large_eps" : "";
  OpCase c("linear_attention_fwd", name);
  add_inputs(c, dt, s, pad);
  if (state) {
    c.in("S0", {s.B, s.Hkv, s.m, s.d}, dt);
    c.in("z0", {s.B, s.Hkv, s.m}, dt, Fill::Uniform, 0, 4);
  }
  c.out("o", {s.B, s.T, s.H, s.d}, dt).out("den", {s.B, s.T, s.H}, dt);
  c.max_err = tol(dt);
  c.run = [causal, state, pad, chunk, eps](Ctx& ctx, const Bound& t) {
    const auto [k, v] = keys(ctx, t, pad);
    LinearAttnFwd a{t["o"], t["den"], t["phiq"], k, v, chunk, eps, causal};
    if (state) a.S0 = t["S0"], a.z0 = t["z0"];
    linear_attention_fwd(ctx, a);
  };
  out.push_back(c);
}

// The causal forward with `advance` (routed by the op: the step for B = T = 1, else the forward
// then the state op accumulating): (S0, z0), copied from (S_in, z_in) first, end past the chunk.
void add_advance(std::vector<OpCase>& out, DType dt, Sz s) {
  OpCase c("linear_attention_fwd", "linear_attention_fwd " + tag(dt, s) + " advance");
  add_inputs(c, dt, s, false);
  c.in("S_in", {s.B, s.Hkv, s.m, s.d}, dt).in("z_in", {s.B, s.Hkv, s.m}, dt, Fill::Uniform, 0, 4);
  c.out("S0", {s.B, s.Hkv, s.m, s.d}, dt).out("z0", {s.B, s.Hkv, s.m}, dt);
  c.out("o", {s.B, s.T, s.H, s.d}, dt).out("den", {s.B, s.T, s.H}, dt);
  c.max_err = tol(dt);
  c.run = [](Ctx& ctx, const Bound& t) {
    copy_fwd(ctx, CopyArgs{t["S0"], t["S_in"]});
    copy_fwd(ctx, CopyArgs{t["z0"], t["z_in"]});
    LinearAttnFwd a{t["o"], t["den"], t["phiq"], t["phik"], t["v"], 64, 1e-6, true};
    a.S0 = t["S0"], a.z0 = t["z0"], a.advance = true;
    linear_attention_fwd(ctx, a);
  };
  out.push_back(c);
}

void add_bwd(std::vector<OpCase>& out, DType dt, Sz s, bool causal, bool pad = false, int chunk = 64) {
  std::string name = "linear_attention_bwd " + tag(dt, s) + (causal ? " causal" : " bidir");
  name += std::string(pad ? " padded" : "") + (chunk != 64 ? " chunk" + std::to_string(chunk) : "");
  OpCase c("linear_attention_bwd", name);
  add_inputs(c, dt, s, pad);
  c.in("dout", {s.B, s.T, s.H, s.d}, dt).in("o", {s.B, s.T, s.H, s.d}, dt);
  c.in("den", {s.B, s.T, s.H}, dt, Fill::Uniform, 0.5, 2);
  c.out("dphiq", {s.B, s.T, s.H, s.m}, dt).out("dphik", {s.B, s.T, s.Hkv, s.m}, dt);
  c.out("dv", {s.B, s.T, s.Hkv, s.d}, dt);
  c.max_err = tol(dt);
  c.run = [causal, pad, chunk](Ctx& ctx, const Bound& t) {
    const auto [k, v] = keys(ctx, t, pad);
    linear_attention_bwd(ctx, LinearAttnBwd{t["dphiq"], t["dphik"], t["dv"], t["dout"], t["o"], t["den"],
                                            t["phiq"], k, v, chunk, 1e-6, causal});
  };
  out.push_back(c);
}

// P steps of one sequence from the state (S_in, z_in): o [P, H, d] (and den [P, H]), S, z after.
void add_step(std::vector<OpCase>& out, DType dt, int64_t P, int64_t H, int64_t Hkv, int64_t m, int64_t d,
              bool den, double eps = 1e-6) {
  OpCase c("linear_attention_step", "linear_attention_step " + std::string(dt == DType::F32 ? "f32" : "f64") +
                                        " P" + std::to_string(P) + " H" + std::to_string(H) + " Hkv" +
                                        std::to_string(Hkv) + " m" + std::to_string(m) + " d" +
                                        std::to_string(d) + (den ? " den" : "") +
                                        (eps != 1e-6 ? " large_eps" : ""));
  c.in("phiq", {P, H, m}, dt, Fill::Uniform, 0, 1).in("phik", {P, Hkv, m}, dt, Fill::Uniform, 0, 1);
  c.in("v", {P, Hkv, d}, dt).in("S_in", {Hkv, m, d}, dt).in("z_in", {Hkv, m}, dt, Fill::Uniform, 0, 4);
  c.out("S", {Hkv, m, d}, dt).out("z", {Hkv, m}, dt).out("o", {P, H, d}, dt);
  if (den) c.out("den", {P, H}, dt);
  c.max_err = tol(dt);
  c.run = [P, H, Hkv, m, d, den, eps](Ctx& ctx, const Bound& t) {
    copy_fwd(ctx, CopyArgs{t["S"], t["S_in"]});
    copy_fwd(ctx, CopyArgs{t["z"], t["z_in"]});
    for (int64_t p = 0; p < P; ++p) {
      LinearAttnStep a{t["o"].rows(p, p + 1).view({H, d}),
                       t["S"],
                       t["z"],
                       t["phiq"].rows(p, p + 1).view({H, m}),
                       t["phik"].rows(p, p + 1).view({Hkv, m}),
                       t["v"].rows(p, p + 1).view({Hkv, d}),
                       eps};
      if (den) a.den = t["den"].rows(p, p + 1).view({H});
      linear_attention_step(ctx, a);
    }
  };
  out.push_back(c);
}

void add_state(std::vector<OpCase>& out, DType dt, int64_t B, int64_t T, int64_t Hkv, int64_t m, int64_t d,
               bool accumulate) {
  OpCase c("linear_attention_state",
           "linear_attention_state " + tag(dt, Sz{B, T, Hkv, Hkv, m, d}) + (accumulate ? " accumulate" : ""));
  c.in("phik", {B, T, Hkv, m}, dt, Fill::Uniform, 0, 1).in("v", {B, T, Hkv, d}, dt);
  if (accumulate)
    c.acc("S", {B, Hkv, m, d}, dt).acc("z", {B, Hkv, m}, dt);
  else
    c.out("S", {B, Hkv, m, d}, dt).out("z", {B, Hkv, m}, dt);
  c.max_err = tol(dt);
  c.run = [accumulate](Ctx& ctx, const Bound& t) {
    linear_attention_state(ctx, LinearAttnState{t["S"], t["z"], t["phik"], t["v"], accumulate});
  };
  out.push_back(c);
}

}  // namespace

void add_linear_attention_cases(std::vector<OpCase>& out) {
  const Sz shapes[] = {
      {1, 1, 1, 1, 4, 3},      // one position
      {1, 31, 2, 2, 8, 5},     // under one f64 chunk
      {1, 63, 2, 2, 16, 8},    // under one f32 chunk
      {1, 64, 2, 1, 16, 8},    // exactly one f32 chunk, GQA
      {2, 65, 4, 2, 12, 20},   // one past, d != m
      {1, 130, 4, 1, 70, 65},  // m and d + 1 past the 64-wide tiles, 4 query heads per kv head
      {2, 200, 3, 3, 33, 17},  // several chunks, odd sizes
      // The same paths in shapes the sanitizer build runs (up to 2^17 elements per case).
      {1, 70, 2, 1, 70, 65},  // the tiles past 64, several chunks
      {1, 200, 2, 1, 8, 5},   // 4 (f32) and 7 (f64) chunks
  };
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Sz& s : shapes)
      for (bool causal : {true, false}) {
        add_fwd(out, dt, s, causal);
        add_bwd(out, dt, s, causal);
      }
    // No positions: nothing to write.
    add_fwd(out, dt, {1, 0, 2, 1, 4, 3}, true);
    add_bwd(out, dt, {1, 0, 2, 1, 4, 3}, false);
    // From an initial state.
    add_fwd(out, dt, {1, 1, 2, 1, 8, 5}, true, true);
    add_fwd(out, dt, {2, 65, 4, 2, 12, 20}, true, true);
    add_fwd(out, dt, {1, 130, 4, 1, 70, 65}, true, true);
    for (const Sz& s : {Sz{1, 1, 4, 2, 16, 8}, Sz{2, 65, 4, 2, 12, 20}, Sz{1, 130, 4, 1, 70, 65}})
      add_advance(out, dt, s);
    // A large eps: the normaliser's eps is where it should be.
    add_fwd(out, dt, {2, 65, 4, 2, 12, 20}, true, false, false, 64, 0.25);
    add_fwd(out, dt, {2, 65, 4, 2, 12, 20}, false, false, false, 64, 0.25);
    add_step(out, dt, 5, 4, 2, 16, 8, true, 0.25);
    // The CPU's work split does not change the result.
    add_fwd(out, dt, {2, 100, 2, 1, 16, 8}, true, false, false, 16);
    add_fwd(out, dt, {2, 100, 2, 1, 16, 8}, false, false, false, 1000);
    add_bwd(out, dt, {2, 100, 2, 1, 16, 8}, true, false, 16);
    add_bwd(out, dt, {2, 100, 2, 1, 16, 8}, false, false, 1000);
    // Padded sequences (lengths 1, T, T / 2 + 1, 1, ...).
    for (const Sz& s : {Sz{3, 3, 2, 1, 8, 5}, Sz{4, 70, 2, 2, 16, 8}, Sz{2, 130, 2, 1, 16, 8}})
      for (bool causal : {true, false}) {
        add_fwd(out, dt, s, causal, false, true);
        add_bwd(out, dt, s, causal, true);
      }
    // Generation.
    for (bool den : {true, false}) add_step(out, dt, 1, 4, 2, 16, 8, den);
    add_step(out, dt, 70, 4, 2, 16, 8, true);
    add_step(out, dt, 3, 3, 1, 5, 130, true);
    add_step(out, dt, 2, 2, 2, 70, 1, false);
    for (bool acc : {false, true}) {
      add_state(out, dt, 2, 200, 3, 16, 8, acc);
      add_state(out, dt, 1, 1, 2, 4, 3, acc);
      add_state(out, dt, 2, 64, 1, 70, 65, acc);
      add_state(out, dt, 1, 0, 2, 4, 3, acc);
    }
  }
  // Realistic: the plain simulator build only (past the sanitizers' size).
  for (bool causal : {true, false}) {
    add_fwd(out, DType::F32, {2, 1024, 4, 4, 64, 64}, causal);
    add_bwd(out, DType::F32, {2, 1024, 4, 4, 64, 64}, causal);
  }
  add_fwd(out, DType::F32, {1, 1024, 8, 2, 64, 64}, true);
  add_bwd(out, DType::F32, {1, 1024, 8, 2, 64, 64}, true);
}

namespace {

// On CUDA: steps from zero over a sequence give the forward's rows and den, and the state op over
// the sequence gives the steps' final state.
template <class E>
void steps_equal_forward(DType dt, double tol_rel) {
  const int64_t T = 100, H = 4, Hkv = 2, m = 16, d = 8;
  uint64_t x = 7;
  auto rnd = [&] {  // in [0, 1)
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return double(x >> 11) / double(1ull << 53);
  };
  std::vector<E> q(size_t(T * H * m)), k(size_t(T * Hkv * m)), v(size_t(T * Hkv * d));
  for (auto& e : q) e = E(rnd());
  for (auto& e : k) e = E(rnd());
  for (auto& e : v) e = E(2 * rnd() - 1);
  const Device dev = Device::CUDA;
  GuardedBuffer gq(dev, dt, {1, T, H, m}, q), gk(dev, dt, {1, T, Hkv, m}, k), gv(dev, dt, {1, T, Hkv, d}, v);
  GuardedBuffer go(dev, dt, {1, T, H, d}, std::vector<E>(size_t(T * H * d)));
  GuardedBuffer gden(dev, dt, {1, T, H}, std::vector<E>(size_t(T * H)));
  GuardedBuffer gos(dev, dt, {T, H, d}, std::vector<E>(size_t(T * H * d)));
  GuardedBuffer gdens(dev, dt, {T, H}, std::vector<E>(size_t(T * H)));
  GuardedBuffer gS(dev, dt, {Hkv, m, d}, std::vector<E>(size_t(Hkv * m * d)));
  GuardedBuffer gz(dev, dt, {Hkv, m}, std::vector<E>(size_t(Hkv * m)));
  GuardedBuffer gS2(dev, dt, {1, Hkv, m, d}, std::vector<E>(size_t(Hkv * m * d), E(5)));
  GuardedBuffer gz2(dev, dt, {1, Hkv, m}, std::vector<E>(size_t(Hkv * m), E(5)));
  Ctx ctx(dev, ScratchPolicy::Grow);
  linear_attention_fwd(ctx, LinearAttnFwd{go.t(), gden.t(), gq.t(), gk.t(), gv.t(), 64, 1e-6, true});
  const Tensor q2 = gq.t().view({T, H, m}), k2 = gk.t().view({T, Hkv, m}), v2 = gv.t().view({T, Hkv, d});
  for (int64_t t = 0; t < T; ++t)
    linear_attention_step(
        ctx, LinearAttnStep{gos.t().rows(t, t + 1).view({H, d}), gS.t(), gz.t(),
                            q2.rows(t, t + 1).view({H, m}), k2.rows(t, t + 1).view({Hkv, m}),
                            v2.rows(t, t + 1).view({Hkv, d}), 1e-6, gdens.t().rows(t, t + 1).view({H})});
  linear_attention_state(ctx, LinearAttnState{gS2.t(), gz2.t(), gk.t(), gv.t()});
  ctx.sync();
  auto rel = [](const std::vector<E>& a, const std::vector<E>& b) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
      scale = std::max(scale, std::fabs(double(b[i])));
    }
    return scale > 0 ? worst / scale : worst;
  };
  EXPECT_LT(rel(gos.read<E>(), go.read<E>()), tol_rel) << "o";
  EXPECT_LT(rel(gdens.read<E>(), gden.read<E>()), tol_rel) << "den";
  EXPECT_LT(rel(gS2.read<E>(), gS.read<E>()), tol_rel) << "S";
  EXPECT_LT(rel(gz2.read<E>(), gz.read<E>()), tol_rel) << "z";
  for (const GuardedBuffer* g : {&go, &gden, &gos, &gdens, &gS, &gz, &gS2, &gz2})
    EXPECT_TRUE(g->guards_intact());
}

TEST(LinearAttentionCuda, StepsEqualForwardRows) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  steps_equal_forward<float>(DType::F32, 1e-5);
  steps_equal_forward<double>(DType::F64, 1e-12);
}

}  // namespace
}  // namespace wersa::test

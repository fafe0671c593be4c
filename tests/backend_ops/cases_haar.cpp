// test_backend_ops cases: the causal Haar analysis (with and without a history state), its adjoint
// (dx overwritten or added), the gated synthesis and its adjoint (dcoef, dgamma, both; dgamma added
// to), haar_step (with and without y) and the fused filter forward (plain; with a state, as the op
// layer routes it: one position to haar_step, a chunk to analysis + synthesis) and backward (dx,
// dgamma, both; dgamma added to); f32 and f64.
// Shapes: T = 1, odd T and C, one and several channel slabs (C up to 32, 64, 128 per block), one
// and several time chunks (halos: T > max(64, 4 (2^L - 1))), levels 1..5 and 16 (2^L - 1 far
// beyond T; 12 for the filters), the rings in scratch instead of shared memory (L = 7 and 10,
// f64 L = 5 for the adjoint's two rings); states read by every chunk at pos0 0, 3, 13 and T
// shorter than some levels' delta; NaN and infinities in x, dy, gamma; empty T and C. A few
// realistic ones (B 4, T 512, C 256).
// A plain TEST: the kernels that take scratch (rings in scratch, dgamma's per-slab sums) run in a
// planned CUDA context after planning, and give what a growing one gives.
#include <gtest/gtest.h>

#include <cmath>

#include "backend_ops.h"
#include "guarded_buffer.h"
#include "wersa/ops/haar.h"

namespace wersa::test {

namespace {

struct Dims {
  int64_t B, T, C;
};

std::string tag(DType dt, Dims d, int L) {
  return std::string(dt == DType::F32 ? "f32" : "f64") + " B" + std::to_string(d.B) + " T" +
         std::to_string(d.T) + " C" + std::to_string(d.C) + " L" + std::to_string(L);
}
double threshold(DType dt) { return dt == DType::F32 ? 1e-12 : 1e-26; }
int64_t ring_rows(int L) { return (int64_t(1) << L) - 1; }
Shape coef_shape(Dims d, int L) { return Shape{L + 1, d.B, d.T, d.C}; }
Fill fill_if(bool special) { return special ? Fill::Special : Fill::Normal; }

// special: "x", "dy", "gamma" or "" (which input holds NaN and infinities).
void add_analysis_fwd(std::vector<OpCase>& out, DType dt, Dims d, int L, const std::string& special = "") {
  OpCase c("haar_analysis_fwd", "haar_analysis_fwd " + tag(dt, d, L) + (special.empty() ? "" : " special"));
  c.in("x", {d.B, d.T, d.C}, dt, fill_if(special == "x")).out("coef", coef_shape(d, L), dt);
  c.max_err = threshold(dt);
  c.run = [L](Ctx& ctx, const Bound& t) { haar_analysis_fwd(ctx, HaarAnalysisFwd{t["coef"], t["x"], L}); };
  out.push_back(c);
}

void add_analysis_state(std::vector<OpCase>& out, DType dt, Dims d, int L, int64_t pos0,
                        bool special = false) {
  OpCase c("haar_analysis_fwd", "haar_analysis_fwd state pos0 " + std::to_string(pos0) + " " + tag(dt, d, L) +
                                    (special ? " special" : ""));
  c.in("x", {d.B, d.T, d.C}, dt, fill_if(special)).out("coef", coef_shape(d, L), dt);
  c.acc("state", {d.B, ring_rows(L), d.C}, dt);
  c.max_err = threshold(dt);
  c.run = [L, pos0](Ctx& ctx, const Bound& t) {
    haar_analysis_fwd(ctx, HaarAnalysisFwd{t["coef"], t["x"], L, t["state"], pos0});
  };
  out.push_back(c);
}

void add_analysis_bwd(std::vector<OpCase>& out, DType dt, Dims d, int L, bool acc, bool special = false) {
  OpCase c("haar_analysis_bwd",
           "haar_analysis_bwd " + tag(dt, d, L) + (acc ? " dx+=" : "") + (special ? " special" : ""));
  c.in("dcoef", coef_shape(d, L), dt, fill_if(special));
  if (acc)
    c.acc("dx", {d.B, d.T, d.C}, dt);
  else
    c.out("dx", {d.B, d.T, d.C}, dt);
  c.max_err = threshold(dt);
  c.run = [L, acc](Ctx& ctx, const Bound& t) {
    haar_analysis_bwd(ctx, HaarAnalysisBwd{t["dx"], t["dcoef"], L, acc});
  };
  out.push_back(c);
}

void add_synthesis_fwd(std::vector<OpCase>& out, DType dt, Dims d, int L, const std::string& special = "") {
  OpCase c("haar_synthesis_fwd",
           "haar_synthesis_fwd " + tag(dt, d, L) + (special.empty() ? "" : " special_" + special));
  c.in("coef", coef_shape(d, L), dt, fill_if(special == "x"))
      .in("gamma", {d.B, d.T, L + 1}, dt, fill_if(special == "gamma"), 0.5, 0.3)
      .out("y", {d.B, d.T, d.C}, dt);
  c.max_err = threshold(dt);
  c.run = [L](Ctx& ctx, const Bound& t) {
    haar_synthesis_fwd(ctx, HaarSynthesisFwd{t["y"], t["coef"], t["gamma"], L});
  };
  out.push_back(c);
}

struct Grads {
  bool first = true, second = true, acc = false;  // dcoef / dx, dgamma, dgamma added to
  std::string name() const {
    return std::string(first ? " d1" : "") + (second ? (acc ? " dgamma+=" : " dgamma") : "");
  }
};

void add_synthesis_bwd(std::vector<OpCase>& out, DType dt, Dims d, int L, Grads g,
                       const std::string& special = "") {
  OpCase c("haar_synthesis_bwd",
           "haar_synthesis_bwd " + tag(dt, d, L) + g.name() + (special.empty() ? "" : " special_" + special));
  c.in("dy", {d.B, d.T, d.C}, dt, fill_if(special == "dy"))
      .in("coef", coef_shape(d, L), dt, fill_if(special == "x"))
      .in("gamma", {d.B, d.T, L + 1}, dt, fill_if(special == "gamma"), 0.5, 0.3);
  if (g.first) c.out("dcoef", coef_shape(d, L), dt);
  if (g.second) {
    if (g.acc)
      c.acc("dgamma", {d.B, d.T, L + 1}, dt);
    else
      c.out("dgamma", {d.B, d.T, L + 1}, dt);
  }
  c.max_err = threshold(dt);
  c.run = [L, g](Ctx& ctx, const Bound& t) {
    HaarSynthesisBwd a{g.first ? t["dcoef"] : Tensor{},
                       g.second ? t["dgamma"] : Tensor{},
                       t["dy"],
                       t["coef"],
                       t["gamma"],
                       L};
    a.accumulate_dgamma = g.acc;
    haar_synthesis_bwd(ctx, a);
  };
  out.push_back(c);
}

void add_step(std::vector<OpCase>& out, DType dt, int64_t C, int L, int64_t pos, bool y,
              bool special = false) {
  OpCase c("haar_step", "haar_step " + std::string(dt == DType::F32 ? "f32" : "f64") + " C" +
                            std::to_string(C) + " L" + std::to_string(L) + " pos " + std::to_string(pos) +
                            (y ? " y" : " no_y") + (special ? " special" : ""));
  c.in("x", {C}, dt, fill_if(special)).acc("state", {ring_rows(L), C}, dt);
  if (y) c.in("gamma", {L + 1}, dt, Fill::Normal, 0.5, 0.3).out("y", {C}, dt);
  c.max_err = threshold(dt);
  c.run = [L, pos, y](Ctx& ctx, const Bound& t) {
    haar_step(ctx, HaarStep{y ? t["y"] : Tensor{}, t["state"], t["x"], y ? t["gamma"] : Tensor{}, L, pos});
  };
  out.push_back(c);
}

// state: with a history state at pos0 (routed by the op layer to haar_step or analysis + synthesis).
void add_filter_fwd(std::vector<OpCase>& out, DType dt, Dims d, int L, const std::string& special = "",
                    bool state = false, int64_t pos0 = 0) {
  OpCase c("haar_filter_fwd", "haar_filter_fwd " + tag(dt, d, L) +
                                  (state ? " state pos0 " + std::to_string(pos0) : "") +
                                  (special.empty() ? "" : " special_" + special));
  c.in("x", {d.B, d.T, d.C}, dt, fill_if(special == "x"))
      .in("gamma", {d.B, d.T, L + 1}, dt, fill_if(special == "gamma"), 0.5, 0.3)
      .out("y", {d.B, d.T, d.C}, dt);
  if (state) c.acc("state", {d.B, ring_rows(L), d.C}, dt);
  c.max_err = threshold(dt);
  c.run = [L, state, pos0](Ctx& ctx, const Bound& t) {
    haar_filter_fwd(ctx, HaarFilterFwd{t["y"], t["x"], t["gamma"], L, state ? t["state"] : Tensor{}, pos0});
  };
  out.push_back(c);
}

void add_filter_bwd(std::vector<OpCase>& out, DType dt, Dims d, int L, Grads g,
                    const std::string& special = "") {
  OpCase c("haar_filter_bwd",
           "haar_filter_bwd " + tag(dt, d, L) + g.name() + (special.empty() ? "" : " special_" + special));
  c.in("dy", {d.B, d.T, d.C}, dt, fill_if(special == "dy"))
      .in("x", {d.B, d.T, d.C}, dt, fill_if(special == "x"))
      .in("gamma", {d.B, d.T, L + 1}, dt, fill_if(special == "gamma"), 0.5, 0.3);
  if (g.first) c.out("dx", {d.B, d.T, d.C}, dt);
  if (g.second) {
    if (g.acc)
      c.acc("dgamma", {d.B, d.T, L + 1}, dt);
    else
      c.out("dgamma", {d.B, d.T, L + 1}, dt);
  }
  c.max_err = threshold(dt);
  c.run = [L, g](Ctx& ctx, const Bound& t) {
    HaarFilterBwd a{
        g.first ? t["dx"] : Tensor{}, g.second ? t["dgamma"] : Tensor{}, t["dy"], t["x"], t["gamma"], L};
    a.accumulate_dgamma = g.acc;
    haar_filter_bwd(ctx, a);
  };
  out.push_back(c);
}

}  // namespace

void add_haar_cases(std::vector<OpCase>& out) {
  // Small shapes: one block and several; one chunk and several (T 100, 300 at L <= 3).
  const Dims small[] = {{1, 1, 1},    {2, 7, 5},     {1, 8, 33}, {3, 33, 40},
                        {2, 100, 64}, {1, 130, 130}, {2, 300, 7}};
  const Grads variants[] = {
      {true, true, false}, {true, false, false}, {false, true, false}, {true, true, true}};
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Dims& d : small)
      for (int L : {1, 2, 3, 5}) {
        add_analysis_fwd(out, dt, d, L);
        add_analysis_bwd(out, dt, d, L, false);
        add_synthesis_fwd(out, dt, d, L);
        add_filter_fwd(out, dt, d, L);
        add_synthesis_bwd(out, dt, d, L, variants[0]);
        add_filter_bwd(out, dt, d, L, variants[0]);
      }
    for (const Dims& d : {Dims{2, 7, 5}, Dims{1, 130, 130}, Dims{2, 300, 7}})
      for (int L : {1, 3}) {
        add_analysis_bwd(out, dt, d, L, true);
        for (int v = 1; v < 4; ++v) {
          add_synthesis_bwd(out, dt, d, L, variants[v]);
          add_filter_bwd(out, dt, d, L, variants[v]);
        }
      }
    // 2^L - 1 far beyond T (L = 16; the filters at L = 12, the model's largest: the CPU filter's
    // buffers grow with 2^L, about 1 GiB per thread at L = 16): most levels read only zeros.
    for (const Dims& d : {Dims{1, 5, 3}, Dims{2, 40, 33}}) {
      add_analysis_fwd(out, dt, d, 16);
      add_analysis_bwd(out, dt, d, 16, true);
      add_synthesis_fwd(out, dt, d, 16);
      add_synthesis_bwd(out, dt, d, 16, variants[3]);
      add_filter_fwd(out, dt, d, 12);
      add_filter_bwd(out, dt, d, 12, variants[3]);
    }
    // Rings in scratch: L = 10 (one chunk, 1023 ring rows), L = 7 with 130 channels (several
    // chunks), f64 L = 5 (the adjoint's two rings no longer fit in shared memory).
    for (auto [d, L] : {std::pair{Dims{1, 600, 5}, 10}, std::pair{Dims{1, 1100, 130}, 7},
                        std::pair{Dims{2, 300, 130}, 5}}) {
      add_analysis_fwd(out, dt, d, L);
      add_analysis_bwd(out, dt, d, L, false);
      add_filter_fwd(out, dt, d, L);
      add_filter_bwd(out, dt, d, L, variants[0]);
    }
    // History states: every chunk reads it (pos0 0, 3, 13), then it advances; chunks shorter than
    // some levels' delta; several chunks (T 300).
    for (const Dims& d : {Dims{1, 1, 5}, Dims{2, 2, 5}, Dims{1, 5, 33}, Dims{2, 40, 130}, Dims{1, 300, 7}})
      for (int L : {1, 3, 4})
        for (int64_t pos0 : {0, 3, 13}) add_analysis_state(out, dt, d, L, pos0);
    add_analysis_state(out, dt, Dims{2, 3, 9}, 6, 21);
    add_analysis_state(out, dt, Dims{1, 700, 5}, 8, 1000);  // the rings of both walks in scratch
    add_analysis_state(out, dt, Dims{2, 40, 33}, 3, 7, true);
    add_analysis_state(out, dt, Dims{2, 0, 5}, 3, 7);  // empty chunk: the state unchanged
    // haar_step.
    for (int64_t C : {1, 7, 130, 300})
      for (int L : {1, 3, 5})
        for (int64_t pos : {0, 1, 6, 37}) add_step(out, dt, C, L, pos, true);
    add_step(out, dt, 7, 3, 5, false);
    add_step(out, dt, 130, 5, (int64_t(1) << 33) + 3, false);
    add_step(out, dt, 3, 16, 40000, true);
    add_step(out, dt, 33, 3, 11, true, true);
    // The filter with a state: one position of one sequence, and a chunk.
    for (int64_t pos0 : {0, 9}) {
      add_filter_fwd(out, dt, Dims{1, 1, 33}, 3, "", true, pos0);
      add_filter_fwd(out, dt, Dims{2, 40, 33}, 3, "", true, pos0);
      add_filter_fwd(out, dt, Dims{1, 300, 130}, 2, "", true, pos0);
    }
    // NaN and infinities.
    for (const Dims& d : {Dims{2, 33, 40}, Dims{1, 300, 130}}) {
      add_analysis_fwd(out, dt, d, 3, "x");
      add_analysis_bwd(out, dt, d, 3, true, true);
      add_synthesis_fwd(out, dt, d, 3, "x");
      add_synthesis_fwd(out, dt, d, 3, "gamma");
      add_filter_fwd(out, dt, d, 3, "x");
      add_filter_fwd(out, dt, d, 3, "gamma");
      for (const char* s : {"dy", "x", "gamma"}) {
        add_synthesis_bwd(out, dt, d, 3, variants[0], s);
        add_filter_bwd(out, dt, d, 3, variants[3], s);
      }
    }
    // Empty: no positions; no channels (dgamma = 0, or unchanged when added to).
    for (const Dims& d : {Dims{2, 0, 5}, Dims{2, 3, 0}}) {
      add_analysis_fwd(out, dt, d, 2);
      add_analysis_bwd(out, dt, d, 2, true);
      add_synthesis_fwd(out, dt, d, 2);
      add_filter_fwd(out, dt, d, 2);
      for (int v : {0, 3}) {
        add_synthesis_bwd(out, dt, d, 2, variants[v]);
        add_filter_bwd(out, dt, d, 2, variants[v]);
      }
    }
  }
  // Realistic (f32): the filter of a batch of q^ rows (heads x width 256), L = 3.
  const Dims big{4, 512, 256};
  add_filter_fwd(out, DType::F32, big, 3);
  add_filter_bwd(out, DType::F32, big, 3, Grads{true, true, true});
  add_analysis_fwd(out, DType::F32, big, 3);
  add_analysis_bwd(out, DType::F32, big, 3, false);
  add_synthesis_bwd(out, DType::F32, big, 3, Grads{true, true, false});
}

namespace {

std::vector<float> pattern(int64_t n, int seed) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(std::sin(0.37 * double(i) + seed));
  return v;
}

// Runs `op` on fresh copies of the inputs in a planned context (after planning it) and in a
// growing one; the outputs (and the state) must agree bitwise.
void check_planned(int64_t B, int64_t T, int64_t C, int L, bool state, bool takes_scratch) {
  const int64_t P = (int64_t(1) << L) - 1;
  const std::vector<float> x = pattern(B * T * C, 1), dy = pattern(B * T * C, 2),
                           g = pattern(B * T * (L + 1), 3), st = pattern(B * P * C, 4);
  std::vector<std::vector<float>> results[2];
  for (int planned = 0; planned < 2; ++planned) {
    GuardedBuffer gx(Device::CUDA, DType::F32, {B, T, C}, x), gdy(Device::CUDA, DType::F32, {B, T, C}, dy);
    GuardedBuffer gg(Device::CUDA, DType::F32, {B, T, L + 1}, g), gs(Device::CUDA, DType::F32, {B, P, C}, st);
    GuardedBuffer coef(Device::CUDA, DType::F32, {L + 1, B, T, C},
                       std::vector<float>(size_t((L + 1) * B * T * C)));
    GuardedBuffer y(Device::CUDA, DType::F32, {B, T, C}, std::vector<float>(size_t(B * T * C)));
    GuardedBuffer dx(Device::CUDA, DType::F32, {B, T, C}, std::vector<float>(size_t(B * T * C)));
    GuardedBuffer dg(Device::CUDA, DType::F32, {B, T, L + 1}, g);
    auto run = [&](Ctx& c) {
      haar_analysis_fwd(c, HaarAnalysisFwd{coef.t(), gx.t(), L, state ? gs.t() : Tensor{}, 5});
      haar_analysis_bwd(c, HaarAnalysisBwd{dx.t(), coef.t(), L, true});
      haar_filter_fwd(c, HaarFilterFwd{y.t(), gx.t(), gg.t(), L});
      HaarFilterBwd fb{dx.t(), dg.t(), gdy.t(), gx.t(), gg.t(), L};
      fb.accumulate_dgamma = true;
      haar_filter_bwd(c, fb);
    };
    Ctx c(Device::CUDA, planned ? ScratchPolicy::Planned : ScratchPolicy::Grow);
    if (planned) {
      c.plan([&] { run(c); });
      EXPECT_EQ(c.scratch_bytes() > 0, takes_scratch);
    }
    ASSERT_NO_THROW(run(c));
    c.sync();
    for (const GuardedBuffer* b : {&coef, &y, &dx, &dg, &gs}) {
      bool ok = false;
      results[planned].push_back(b->read<float>(&ok));
      EXPECT_TRUE(ok);
    }
  }
  for (size_t i = 0; i < results[0].size(); ++i)
    EXPECT_EQ(std::memcmp(results[0][i].data(), results[1][i].data(), results[0][i].size() * sizeof(float)),
              0)
        << "output " << i;
}

TEST(HaarScratch, PlannedContextRuns) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  check_planned(1, 600, 5, 10, true, true);   // rings of every walk in scratch, one slab
  check_planned(2, 300, 130, 6, true, true);  // the adjoint's rings in scratch, two slabs (per-slab sums)
  check_planned(2, 40, 33, 3, false, false);  // rings in shared memory, one slab: no scratch
}

}  // namespace
}  // namespace wersa::test

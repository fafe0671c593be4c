// Chunked linear attention: against the O(T^2) definition (spec invariant 3), causality, finite
// difference gradients (invariant 5), float vs double, generation steps and state export.
#include <cmath>
#include <cstring>

#include "testutil.h"
#include "wersa/ops/linear_attention.h"

using namespace wersa;
using namespace wersa::test;

namespace {

struct Sizes {
  int64_t B, T, H, Hkv, m, d;
};

// The inputs and outputs of one problem, in one dtype.
struct Prob {
  Sizes s;
  Buf q, k, v, o, den;
  Prob(DType dt, Sizes z)
      : s(z),
        q(dt, {z.B, z.T, z.H, z.m}, "phiq"),
        k(dt, {z.B, z.T, z.Hkv, z.m}, "phik"),
        v(dt, {z.B, z.T, z.Hkv, z.d}, "v"),
        o(dt, {z.B, z.T, z.H, z.d}, "o"),
        den(dt, {z.B, z.T, z.H}, "den") {}
  // ReLU-like features (about half exactly zero, as phi produces) or strictly positive ones.
  void fill(uint64_t seed, bool positive) {
    if (positive) {
      q.uniform(seed, 0.05, 1.0);
      k.uniform(seed + 1, 0.05, 1.0);
    } else {
      q.randn(seed);
      k.randn(seed + 1);
      for (int64_t i = 0; i < q.n(); ++i) q.set(i, std::max(0.0, q.get(i)));
      for (int64_t i = 0; i < k.n(); ++i) k.set(i, std::max(0.0, k.get(i)));
    }
    v.randn(seed + 2);
  }
  void copy_inputs(const Prob& o2) { q.copy_from(o2.q), k.copy_from(o2.k), v.copy_from(o2.v); }
  void fwd(int chunk, bool causal, double eps = 1e-6) {
    linear_attention_fwd(ctx(), {o, den, q, k, v, chunk, eps, causal});
  }
};

// The definition of spec step 7, directly, in double: O(T^2 m d).
void reference(const Prob& p, bool causal, double eps, std::vector<double>& o, std::vector<double>& den) {
  const Sizes& s = p.s;
  o.assign(size_t(s.B * s.T * s.H * s.d), 0.0);
  den.assign(size_t(s.B * s.T * s.H), 0.0);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t g = h / (s.H / s.Hkv);
      for (int64_t t = 0; t < s.T; ++t) {
        const int64_t last = causal ? t : s.T - 1;
        std::vector<double> S(size_t(s.m * s.d), 0.0), z(size_t(s.m), 0.0);
        for (int64_t u = 0; u <= last; ++u)
          for (int64_t i = 0; i < s.m; ++i) {
            const double kf = p.k.get(((b * s.T + u) * s.Hkv + g) * s.m + i);
            z[i] += kf;
            for (int64_t e = 0; e < s.d; ++e)
              S[i * s.d + e] += kf * p.v.get(((b * s.T + u) * s.Hkv + g) * s.d + e);
          }
        double dn = eps;
        std::vector<double> num(size_t(s.d), 0.0);
        for (int64_t i = 0; i < s.m; ++i) {
          const double qf = p.q.get(((b * s.T + t) * s.H + h) * s.m + i);
          dn += qf * z[i];
          for (int64_t e = 0; e < s.d; ++e) num[e] += qf * S[i * s.d + e];
        }
        den[(b * s.T + t) * s.H + h] = dn;
        for (int64_t e = 0; e < s.d; ++e) o[((b * s.T + t) * s.H + h) * s.d + e] = num[e] / dn;
      }
    }
}

bool bitwise_equal_rows(const Buf& a, const Buf& b, int64_t row_elems, int64_t rows_per_batch, int64_t B,
                        int64_t upto) {
  const size_t es = dtype_size(a.t.dtype);
  for (int64_t bb = 0; bb < B; ++bb) {
    const int64_t off = bb * rows_per_batch * row_elems;
    if (std::memcmp(static_cast<const char*>(a.t.data) + off * es,
                    static_cast<const char*>(b.t.data) + off * es, size_t(upto * row_elems) * es) != 0)
      return false;
  }
  return true;
}

}  // namespace

TEST(LinearAttention, ChunkedEqualsQuadraticDefinition) {
  for (int64_t T : {1, 7, 63, 64, 65, 130, 200})
    for (int chunk : {64, 16})
      for (auto [H, Hkv] : {std::pair<int64_t, int64_t>{4, 2}, {3, 3}})
        for (bool causal : {true, false}) {
          SCOPED_TRACE(::testing::Message() << "T=" << T << " chunk=" << chunk << " H=" << H << " Hkv=" << Hkv
                                            << " causal=" << causal);
          Prob p(DType::F64, {2, T, H, Hkv, 8, 5});
          p.fill(uint64_t(T * 10 + H), false);
          p.fwd(chunk, causal);
          std::vector<double> o, den;
          reference(p, causal, 1e-6, o, den);
          EXPECT_LT(max_rel(p.o, o), 1e-12);
          EXPECT_LT(max_rel(p.den, den), 1e-12);
          // The float kernel too.
          Prob pf(DType::F32, p.s);
          pf.copy_inputs(p);
          pf.fwd(chunk, causal);
          EXPECT_LT(max_rel(pf.o, o), 2e-5);
          EXPECT_LT(max_rel(pf.den, den), 2e-5);
        }
}

TEST(LinearAttention, AnyChunkLengthGivesTheDefinition) {
  for (int chunk : {1, 3, 37, 1 << 30}) {
    Prob p(DType::F64, {1, 37, 2, 2, 5, 4});
    p.fill(31, false);
    p.fwd(chunk, true);
    std::vector<double> o, den;
    reference(p, true, 1e-6, o, den);
    EXPECT_LT(max_rel(p.o, o), 1e-12) << "chunk " << chunk;
  }
}

TEST(LinearAttention, EpsIsAddedToTheDenominator) {
  Prob p(DType::F64, {1, 9, 2, 1, 4, 3});
  p.fill(5, true);
  p.fwd(4, true, 0.25);
  std::vector<double> o, den;
  reference(p, true, 0.25, o, den);
  EXPECT_LT(max_rel(p.o, o), 1e-12);
  EXPECT_LT(max_rel(p.den, den), 1e-12);
  // All-zero query features: o = 0 / eps = 0, den = eps.
  p.q.zero();
  p.fwd(4, true, 0.25);
  for (int64_t i = 0; i < p.den.n(); ++i) EXPECT_EQ(p.den.get(i), 0.25);
  for (int64_t i = 0; i < p.o.n(); ++i) EXPECT_EQ(p.o.get(i), 0.0);
}

TEST(LinearAttention, CausalOutputsIgnoreTheFuture) {
  for (DType dt : {DType::F32, DType::F64})
    for (int64_t t0 : {1, 40, 64, 70, 129}) {
      SCOPED_TRACE(::testing::Message() << "t0=" << t0 << " " << dtype_name(dt));
      const Sizes s{2, 130, 4, 2, 8, 6};
      Prob a(dt, s), b(dt, s);
      a.fill(3, false);
      b.copy_inputs(a);
      // Change every input at positions >= t0.
      Prob noise(dt, s);
      noise.fill(99, false);
      auto overwrite = [&](Buf& dst, const Buf& src, int64_t row) {
        for (int64_t bb = 0; bb < s.B; ++bb)
          for (int64_t i = t0 * row; i < s.T * row; ++i)
            dst.set(bb * s.T * row + i, src.get(bb * s.T * row + i));
      };
      overwrite(b.q, noise.q, s.H * s.m);
      overwrite(b.k, noise.k, s.Hkv * s.m);
      overwrite(b.v, noise.v, s.Hkv * s.d);
      a.fwd(64, true);
      b.fwd(64, true);
      EXPECT_TRUE(bitwise_equal_rows(a.o, b.o, s.H * s.d, s.T, s.B, t0));
      EXPECT_TRUE(bitwise_equal_rows(a.den, b.den, s.H, s.T, s.B, t0));
      // ...and the change is visible at t0 (the test can fail).
      EXPECT_FALSE(bitwise_equal_rows(a.o, b.o, s.H * s.d, s.T, s.B, t0 + 1));
      // Bidirectional attention does see the future.
      a.fwd(64, false);
      b.fwd(64, false);
      EXPECT_FALSE(bitwise_equal_rows(a.o, b.o, s.H * s.d, s.T, s.B, t0));
    }
}

namespace {
void grad_check(Sizes s, int chunk, bool causal, bool relu_features) {
  SCOPED_TRACE(::testing::Message() << "T=" << s.T << " chunk=" << chunk << " H=" << s.H << " Hkv=" << s.Hkv
                                    << " causal=" << causal << " relu=" << relu_features);
  Prob p(DType::F64, s);
  p.fill(11, !relu_features);
  if (relu_features) {
    // Keep the features away from the ReLU kink and den away from 0: zero some entries exactly.
    p.q.uniform(21, 0.05, 1.0);
    p.k.uniform(22, 0.05, 1.0);
    for (int64_t i = 0; i < p.q.n(); i += 3) p.q.set(i, 0.0);
    for (int64_t i = 1; i < p.k.n(); i += 4) p.k.set(i, 0.0);
  }
  Buf probe(DType::F64, p.o.t.shape), dq(DType::F64, p.q.t.shape), dk(DType::F64, p.k.t.shape),
      dv(DType::F64, p.v.t.shape);
  probe.randn(7);
  auto loss = [&] {
    p.fwd(chunk, causal);
    return dot(p.o, probe);
  };
  auto backward = [&] {
    p.fwd(chunk, causal);
    linear_attention_bwd(ctx(), {dq, dk, dv, probe, p.o, p.den, p.q, p.k, p.v, chunk, 1e-6, causal});
  };
  expect_grad_matches(loss, backward, {{&p.q, &dq, "phiq"}, {&p.k, &dk, "phik"}, {&p.v, &dv, "v"}});
}
}  // namespace

TEST(LinearAttention, GradientsMatchFiniteDifferences) {
  for (bool causal : {true, false}) {
    grad_check({2, 13, 4, 2, 6, 5}, 4, causal, false);
    grad_check({1, 37, 3, 3, 5, 4}, 16, causal, false);
    grad_check({2, 7, 2, 1, 4, 3}, 64, causal, false);  // one partial chunk
    grad_check({1, 21, 4, 2, 6, 5}, 8, causal, true);   // exact zeros in the features
  }
}

TEST(LinearAttention, GradientsOverwriteAndAreDeterministic) {
  const Sizes s{2, 100, 4, 2, 8, 6};
  Prob p(DType::F32, s);
  p.fill(4, false);
  p.fwd(16, true);
  Buf probe(DType::F32, p.o.t.shape);
  probe.randn(5);
  Buf dq1(DType::F32, p.q.t.shape), dk1(DType::F32, p.k.t.shape), dv1(DType::F32, p.v.t.shape);
  Buf dq2(DType::F32, p.q.t.shape), dk2(DType::F32, p.k.t.shape), dv2(DType::F32, p.v.t.shape);
  dq2.randn(1), dk2.randn(2), dv2.randn(3);  // garbage that must be overwritten
  linear_attention_bwd(ctx(), {dq1, dk1, dv1, probe, p.o, p.den, p.q, p.k, p.v, 16, 1e-6, true});
  linear_attention_bwd(ctx(), {dq2, dk2, dv2, probe, p.o, p.den, p.q, p.k, p.v, 16, 1e-6, true});
  EXPECT_EQ(std::memcmp(dq1.t.data, dq2.t.data, dq1.t.bytes()), 0);
  EXPECT_EQ(std::memcmp(dk1.t.data, dk2.t.data, dk1.t.bytes()), 0);
  EXPECT_EQ(std::memcmp(dv1.t.data, dv2.t.data, dv1.t.bytes()), 0);
}

TEST(LinearAttention, FloatMatchesDouble) {
  // The second size has the head and feature widths of configs/bench-cpu.json (a whole vector
  // block of columns plus the denominator's) and a partial last chunk; a causal float runs the
  // banded vector kernels of linear_attention_vec.cpp on a vector build, the others BLAS.
  for (const Sizes s : {Sizes{2, 150, 4, 2, 16, 8}, Sizes{1, 203, 2, 1, 64, 64}})
    for (bool causal : {true, false}) {
      Prob pd(DType::F64, s), pf(DType::F32, s);
      pd.fill(8, false);
      pf.copy_inputs(pd);
      pd.fwd(64, causal);
      pf.fwd(64, causal);
      EXPECT_LT(rel_err(pf.o, pd.o), 1e-5);
      EXPECT_LT(rel_err(pf.den, pd.den), 1e-5);
      Buf probe(DType::F64, pd.o.t.shape), probef(DType::F32, pd.o.t.shape);
      probe.randn(9);
      probef.copy_from(probe);
      Buf dq(DType::F64, pd.q.t.shape), dk(DType::F64, pd.k.t.shape), dv(DType::F64, pd.v.t.shape);
      Buf dqf(DType::F32, pd.q.t.shape), dkf(DType::F32, pd.k.t.shape), dvf(DType::F32, pd.v.t.shape);
      linear_attention_bwd(ctx(), {dq, dk, dv, probe, pd.o, pd.den, pd.q, pd.k, pd.v, 64, 1e-6, causal});
      linear_attention_bwd(ctx(), {dqf, dkf, dvf, probef, pf.o, pf.den, pf.q, pf.k, pf.v, 64, 1e-6, causal});
      EXPECT_LT(rel_err(dqf, dq), 1e-4);
      EXPECT_LT(rel_err(dkf, dk), 1e-4);
      EXPECT_LT(rel_err(dvf, dv), 1e-4);
    }
}

namespace {
// Tensor view of rows [t] of batch b of x [B, T, X, Y] as [X, Y].
Tensor at(const Buf& x, int64_t b, int64_t t) {
  const Shape& s = x.t.shape;
  const int64_t row = s[2] * s[3];
  return Tensor(static_cast<char*>(x.t.data) + ((b * s[1] + t) * row) * dtype_size(x.t.dtype), x.t.dtype,
                Device::CPU, Shape{s[2], s[3]});
}

void steps_reproduce_forward(DType dt, double tol) {
  const Sizes s{2, 130, 4, 2, 16, 8};
  Prob p(dt, s);
  p.fill(12, false);
  p.fwd(64, true);
  Buf ostep(dt, p.o.t.shape);
  for (int64_t b = 0; b < s.B; ++b) {
    Buf S(dt, {s.Hkv, s.m, s.d}), z(dt, {s.Hkv, s.m});
    for (int64_t t = 0; t < s.T; ++t)
      linear_attention_step(ctx(),
                            {at(ostep, b, t), S, z, at(p.q, b, t), at(p.k, b, t), at(p.v, b, t), 1e-6});
  }
  EXPECT_LT(rel_err(ostep, p.o), tol) << dtype_name(dt);
}
}  // namespace

TEST(LinearAttention, StepsReproduceTheParallelForward) {
  steps_reproduce_forward(DType::F32, 1e-5);
  steps_reproduce_forward(DType::F64, 1e-12);
}

TEST(LinearAttention, StateExportThenStepsEqualsForward) {
  for (DType dt : {DType::F32, DType::F64}) {
    const Sizes s{2, 100, 4, 2, 16, 8};
    const int64_t P = 67;  // prefix length, not a multiple of the chunk
    Prob full(dt, s);
    full.fill(13, false);
    full.fwd(16, true);
    Prob pre(dt, {s.B, P, s.H, s.Hkv, s.m, s.d});
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t t = 0; t < P; ++t) {
        for (int64_t i = 0; i < s.Hkv * s.m; ++i)
          pre.k.set((b * P + t) * s.Hkv * s.m + i, full.k.get((b * s.T + t) * s.Hkv * s.m + i));
        for (int64_t i = 0; i < s.Hkv * s.d; ++i)
          pre.v.set((b * P + t) * s.Hkv * s.d + i, full.v.get((b * s.T + t) * s.Hkv * s.d + i));
      }
    Buf S(dt, {s.B, s.Hkv, s.m, s.d}), z(dt, {s.B, s.Hkv, s.m});
    S.randn(1), z.randn(2);  // overwritten
    linear_attention_state(ctx(), {S, z, pre.k, pre.v});
    Buf ostep(dt, full.o.t.shape);
    double worst = 0, scale = 0;
    for (int64_t b = 0; b < s.B; ++b) {
      const Tensor Sb(static_cast<char*>(S.t.data) + b * s.Hkv * s.m * s.d * dtype_size(dt), dt, Device::CPU,
                      Shape{s.Hkv, s.m, s.d});
      const Tensor zb(static_cast<char*>(z.t.data) + b * s.Hkv * s.m * dtype_size(dt), dt, Device::CPU,
                      Shape{s.Hkv, s.m});
      for (int64_t t = P; t < s.T; ++t) {
        linear_attention_step(
            ctx(), {at(ostep, b, t), Sb, zb, at(full.q, b, t), at(full.k, b, t), at(full.v, b, t), 1e-6});
        for (int64_t i = 0; i < s.H * s.d; ++i) {
          const int64_t idx = (b * s.T + t) * s.H * s.d + i;
          worst = std::max(worst, std::fabs(ostep.get(idx) - full.o.get(idx)));
          scale = std::max(scale, std::fabs(full.o.get(idx)));
        }
      }
    }
    EXPECT_GT(scale, 0.0);
    EXPECT_LT(worst / scale, dt == DType::F32 ? 1e-5 : 1e-12) << dtype_name(dt);
  }
}

TEST(LinearAttention, BadArgumentsAreErrors) {
  Prob p(DType::F32, {1, 5, 3, 2, 4, 3});  // H % Hkv != 0
  EXPECT_THROW(p.fwd(4, true), Error);
  Prob ok(DType::F32, {1, 5, 4, 2, 4, 3});
  EXPECT_THROW(ok.fwd(0, true), Error);
  EXPECT_THROW(ok.fwd(4, true, -1.0), Error);
  Buf o64(DType::F64, ok.o.t.shape);
  EXPECT_THROW(linear_attention_fwd(ctx(), {o64, ok.den, ok.q, ok.k, ok.v}), Error);
  Buf vbad(DType::F32, {1, 6, 2, 3});
  EXPECT_THROW(linear_attention_fwd(ctx(), {ok.o, ok.den, ok.q, ok.k, vbad}), Error);
  Buf i32(DType::I32, ok.q.t.shape);
  EXPECT_THROW(linear_attention_fwd(ctx(), {ok.o, ok.den, i32, ok.k, ok.v}), Error);
  EXPECT_THROW(linear_attention_fwd(ctx(), {ok.o, {}, ok.q, ok.k, ok.v}), Error);
  Buf dq(DType::F32, ok.q.t.shape), dk(DType::F32, {1, 5, 2, 5}), dv(DType::F32, ok.v.t.shape);
  EXPECT_THROW(linear_attention_bwd(ctx(), {dq, dk, dv, ok.o, ok.o, ok.den, ok.q, ok.k, ok.v}), Error);
  Buf S(DType::F32, {2, 4, 3}), z(DType::F32, {2, 4}), o(DType::F32, {4, 3});
  Buf q1(DType::F32, {4, 4}), k1(DType::F32, {2, 4}), v1(DType::F32, {2, 3}), zbad(DType::F32, {2, 5});
  EXPECT_NO_THROW(linear_attention_step(ctx(), {o, S, z, q1, k1, v1}));
  EXPECT_THROW(linear_attention_step(ctx(), {o, S, zbad, q1, k1, v1}), Error);
  Buf Sb(DType::F32, {1, 2, 4, 3}), zb(DType::F32, {1, 2, 4});
  EXPECT_NO_THROW(linear_attention_state(ctx(), {Sb, zb, ok.k, ok.v}));
  EXPECT_THROW(linear_attention_state(ctx(), {Sb, zb, ok.k, vbad}), Error);
}

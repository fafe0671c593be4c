// Exact softmax attention: against a naive double reference with an explicit softmax, finite
// difference gradients, causality, float vs double, KV-cache decoding against the forward; lengths
// (padded batches): padded keys masked out and never read, their gradient zero, finite differences.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "testutil.h"
#include "wersa/ops/softmax_attention.h"

using namespace wersa;
using namespace wersa::test;

namespace {

struct Sizes {
  int64_t B, T, H, Hkv, d;
};

struct Prob {
  Sizes s;
  Buf q, k, v, o, lse;
  double scale;
  Prob(DType dt, Sizes z)
      : s(z),
        q(dt, {z.B, z.T, z.H, z.d}, "q"),
        k(dt, {z.B, z.T, z.Hkv, z.d}, "k"),
        v(dt, {z.B, z.T, z.Hkv, z.d}, "v"),
        o(dt, {z.B, z.T, z.H, z.d}, "o"),
        lse(dt, {z.B, z.T, z.H}, "lse"),
        scale(1.0 / std::sqrt(double(z.d))) {}
  void fill(uint64_t seed) {
    q.randn(seed, 1.5);
    k.randn(seed + 1, 1.5);
    v.randn(seed + 2);
  }
  void copy_inputs(const Prob& o2) { q.copy_from(o2.q), k.copy_from(o2.k), v.copy_from(o2.v); }
  void fwd(bool causal) { softmax_attention_fwd(ctx(), {o, lse, q, k, v, scale, causal}); }
  void bwd(const Buf& dout, const Buf& dq, const Buf& dk, const Buf& dv, bool causal) {
    softmax_attention_bwd(ctx(), {dq, dk, dv, dout, o, lse, q, k, v, scale, causal});
  }
};

// Explicit softmax over the full score row, in double.
void reference(const Prob& p, bool causal, std::vector<double>& o, std::vector<double>& lse) {
  const Sizes& s = p.s;
  o.assign(size_t(s.B * s.T * s.H * s.d), 0.0);
  lse.assign(size_t(s.B * s.T * s.H), 0.0);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t g = h / (s.H / s.Hkv);
      for (int64_t t = 0; t < s.T; ++t) {
        const int64_t n = causal ? t + 1 : s.T;
        std::vector<double> sc(static_cast<size_t>(n));
        for (int64_t j = 0; j < n; ++j) {
          double acc = 0;
          for (int64_t e = 0; e < s.d; ++e)
            acc +=
                p.q.get(((b * s.T + t) * s.H + h) * s.d + e) * p.k.get(((b * s.T + j) * s.Hkv + g) * s.d + e);
          sc[size_t(j)] = p.scale * acc;
        }
        double z = 0;
        for (double x : sc) z += std::exp(x);
        lse[(b * s.T + t) * s.H + h] = std::log(z);
        for (int64_t j = 0; j < n; ++j) {
          const double pj = std::exp(sc[size_t(j)]) / z;
          for (int64_t e = 0; e < s.d; ++e)
            o[((b * s.T + t) * s.H + h) * s.d + e] += pj * p.v.get(((b * s.T + j) * s.Hkv + g) * s.d + e);
        }
      }
    }
}

}  // namespace

TEST(SoftmaxAttention, MatchesNaiveReference) {
  // T covers every tail of the 4-query blocks; d = 12 covers the 8-wide tiles and their tail.
  for (int64_t T : {1, 7, 30, 65})
    for (auto [H, Hkv] : {std::pair<int64_t, int64_t>{4, 2}, {3, 3}, {4, 1}})
      for (bool causal : {true, false}) {
        SCOPED_TRACE(::testing::Message()
                     << "T=" << T << " H=" << H << " Hkv=" << Hkv << " causal=" << causal);
        Prob p(DType::F64, {2, T, H, Hkv, 12});
        p.fill(uint64_t(T + 100 * H));
        p.fwd(causal);
        std::vector<double> o, lse;
        reference(p, causal, o, lse);
        EXPECT_LT(max_rel(p.o, o), 1e-12);
        EXPECT_LT(max_rel(p.lse, lse), 1e-12);
        Prob pf(DType::F32, p.s);
        pf.copy_inputs(p);
        pf.fwd(causal);
        EXPECT_LT(max_rel(pf.o, o), 1e-5);
        EXPECT_LT(max_rel(pf.lse, lse), 1e-5);
      }
}

TEST(SoftmaxAttention, LargeScoresDoNotOverflow) {
  Prob p(DType::F32, {1, 9, 2, 2, 4});
  p.fill(3);
  p.scale = 200.0;  // scores of several hundred: exp without the max shift would overflow
  p.fwd(true);
  for (int64_t i = 0; i < p.o.n(); ++i) ASSERT_TRUE(std::isfinite(p.o.get(i)));
  for (int64_t i = 0; i < p.lse.n(); ++i) ASSERT_TRUE(std::isfinite(p.lse.get(i)));
}

TEST(SoftmaxAttention, GradientsMatchFiniteDifferences) {
  for (int64_t T : {1, 5, 13})
    for (auto [H, Hkv] : {std::pair<int64_t, int64_t>{4, 2}, {2, 2}})
      for (bool causal : {true, false}) {
        SCOPED_TRACE(::testing::Message()
                     << "T=" << T << " H=" << H << " Hkv=" << Hkv << " causal=" << causal);
        Prob p(DType::F64, {2, T, H, Hkv, 10});
        p.fill(uint64_t(T));
        Buf probe(DType::F64, p.o.t.shape), dq(DType::F64, p.q.t.shape), dk(DType::F64, p.k.t.shape),
            dv(DType::F64, p.v.t.shape);
        probe.randn(17);
        auto loss = [&] {
          p.fwd(causal);
          return dot(p.o, probe);
        };
        auto backward = [&] {
          p.fwd(causal);
          p.bwd(probe, dq, dk, dv, causal);
        };
        // T = 1: o = v exactly, so q and k get zero gradient; only v is checked there.
        if (T == 1)
          expect_grad_matches(loss, backward, {{&p.v, &dv, "v"}});
        else
          expect_grad_matches(loss, backward, {{&p.q, &dq, "q"}, {&p.k, &dk, "k"}, {&p.v, &dv, "v"}});
        if (T == 1) {
          for (int64_t i = 0; i < dq.n(); ++i) EXPECT_NEAR(dq.get(i), 0.0, 1e-12);
          for (int64_t i = 0; i < dk.n(); ++i) EXPECT_NEAR(dk.get(i), 0.0, 1e-12);
        }
      }
}

TEST(SoftmaxAttention, CausalOutputsIgnoreTheFuture) {
  for (DType dt : {DType::F32, DType::F64})
    for (int64_t t0 : {1, 20, 36}) {
      SCOPED_TRACE(::testing::Message() << "t0=" << t0 << " " << dtype_name(dt));
      const Sizes s{2, 37, 4, 2, 8};
      Prob a(dt, s), b(dt, s), noise(dt, s);
      a.fill(5);
      b.copy_inputs(a);
      noise.fill(55);
      auto overwrite = [&](Buf& dst, const Buf& src, int64_t row) {
        for (int64_t bb = 0; bb < s.B; ++bb)
          for (int64_t i = t0 * row; i < s.T * row; ++i)
            dst.set(bb * s.T * row + i, src.get(bb * s.T * row + i));
      };
      overwrite(b.q, noise.q, s.H * s.d);
      overwrite(b.k, noise.k, s.Hkv * s.d);
      overwrite(b.v, noise.v, s.Hkv * s.d);
      a.fwd(true);
      b.fwd(true);
      const size_t es = dtype_size(dt);
      for (int64_t bb = 0; bb < s.B; ++bb) {
        const int64_t row = s.H * s.d, off = bb * s.T * row;
        EXPECT_EQ(std::memcmp(static_cast<char*>(a.o.t.data) + off * es,
                              static_cast<char*>(b.o.t.data) + off * es, size_t(t0 * row) * es),
                  0);
        EXPECT_NE(std::memcmp(static_cast<char*>(a.o.t.data) + off * es,
                              static_cast<char*>(b.o.t.data) + off * es, size_t((t0 + 1) * row) * es),
                  0);
      }
    }
}

TEST(SoftmaxAttention, FloatMatchesDoubleAndBackwardIsDeterministic) {
  for (bool causal : {true, false}) {
    const Sizes s{2, 50, 4, 2, 16};
    Prob pd(DType::F64, s), pf(DType::F32, s);
    pd.fill(6);
    pf.copy_inputs(pd);
    pd.fwd(causal);
    pf.fwd(causal);
    EXPECT_LT(rel_err(pf.o, pd.o), 1e-5);
    Buf probe(DType::F64, pd.o.t.shape), probef(DType::F32, pd.o.t.shape);
    probe.randn(9);
    probef.copy_from(probe);
    Buf dq(DType::F64, pd.q.t.shape), dk(DType::F64, pd.k.t.shape), dv(DType::F64, pd.v.t.shape);
    Buf dqf(DType::F32, pd.q.t.shape), dkf(DType::F32, pd.k.t.shape), dvf(DType::F32, pd.v.t.shape);
    Buf dqf2(DType::F32, pd.q.t.shape), dkf2(DType::F32, pd.k.t.shape), dvf2(DType::F32, pd.v.t.shape);
    dqf2.randn(1), dkf2.randn(2), dvf2.randn(3);  // garbage that must be overwritten
    pd.bwd(probe, dq, dk, dv, causal);
    pf.bwd(probef, dqf, dkf, dvf, causal);
    pf.bwd(probef, dqf2, dkf2, dvf2, causal);
    EXPECT_LT(rel_err(dqf, dq), 1e-4);
    EXPECT_LT(rel_err(dkf, dk), 1e-4);
    EXPECT_LT(rel_err(dvf, dv), 1e-4);
    EXPECT_EQ(std::memcmp(dqf.t.data, dqf2.t.data, dqf.t.bytes()), 0);
    EXPECT_EQ(std::memcmp(dkf.t.data, dkf2.t.data, dkf.t.bytes()), 0);
    EXPECT_EQ(std::memcmp(dvf.t.data, dvf2.t.data, dvf.t.bytes()), 0);
  }
}

TEST(SoftmaxAttention, DecodeReproducesTheForward) {
  for (DType dt : {DType::F32, DType::F64}) {
    const Sizes s{2, 29, 4, 2, 8};
    const int64_t Tmax = s.T + 5;
    Prob p(dt, s);
    p.fill(7);
    p.fwd(true);
    Buf od(dt, p.o.t.shape);
    const size_t es = dtype_size(dt);
    for (int64_t b = 0; b < s.B; ++b) {
      Buf kc(dt, {Tmax, s.Hkv, s.d}), vc(dt, {Tmax, s.Hkv, s.d});
      kc.randn(1, 1e3), vc.randn(2, 1e3);  // rows not yet written must be ignored
      for (int64_t t = 0; t < s.T; ++t) {
        const int64_t kr = s.Hkv * s.d, qr = s.H * s.d;
        for (int64_t i = 0; i < kr; ++i) {
          kc.set(t * kr + i, p.k.get((b * s.T + t) * kr + i));
          vc.set(t * kr + i, p.v.get((b * s.T + t) * kr + i));
        }
        const Tensor q(static_cast<char*>(p.q.t.data) + (b * s.T + t) * qr * es, dt, Device::CPU,
                       Shape{s.H, s.d});
        const Tensor o(static_cast<char*>(od.t.data) + (b * s.T + t) * qr * es, dt, Device::CPU,
                       Shape{s.H, s.d});
        softmax_attention_decode(ctx(), {o, q, kc, vc, t + 1, p.scale});
      }
    }
    EXPECT_LT(rel_err(od, p.o), dt == DType::F32 ? 1e-5 : 1e-13) << dtype_name(dt);
  }
}

TEST(SoftmaxAttention, BadArgumentsAreErrors) {
  Prob bad(DType::F32, {1, 5, 3, 2, 4});  // H % Hkv != 0
  EXPECT_THROW(bad.fwd(true), Error);
  Prob p(DType::F32, {1, 5, 4, 2, 4});
  p.fill(1);
  EXPECT_NO_THROW(p.fwd(true));
  Buf lse_bad(DType::F32, {1, 5, 2});
  EXPECT_THROW(softmax_attention_fwd(ctx(), {p.o, lse_bad, p.q, p.k, p.v, 0.5}), Error);
  Buf v64(DType::F64, p.v.t.shape);
  EXPECT_THROW(softmax_attention_fwd(ctx(), {p.o, p.lse, p.q, p.k, v64, 0.5}), Error);
  EXPECT_THROW(softmax_attention_fwd(ctx(), {p.o, p.lse, p.q, p.k, p.v, std::nan("")}), Error);
  Buf dq(DType::F32, p.q.t.shape), dk(DType::F32, p.k.t.shape), dvbad(DType::F32, {1, 5, 2, 3});
  EXPECT_THROW(softmax_attention_bwd(ctx(), {dq, dk, dvbad, p.o, p.o, p.lse, p.q, p.k, p.v, 0.5}), Error);
  Buf q1(DType::F32, {4, 4}), o1(DType::F32, {4, 4}), kc(DType::F32, {6, 2, 4}), vc(DType::F32, {6, 2, 4});
  EXPECT_NO_THROW(softmax_attention_decode(ctx(), {o1, q1, kc, vc, 6, 0.5}));
  EXPECT_THROW(softmax_attention_decode(ctx(), {o1, q1, kc, vc, 0, 0.5}), Error);
  EXPECT_THROW(softmax_attention_decode(ctx(), {o1, q1, kc, vc, 7, 0.5}), Error);
  Buf kc3(DType::F32, {6, 3, 4});
  EXPECT_THROW(softmax_attention_decode(ctx(), {o1, q1, kc3, kc3, 2, 0.5}), Error);
}

namespace {

// The reference over the first n_b keys of each sequence (j < n_b, and j <= t when causal).
void reference_padded(const Prob& p, bool causal, const std::vector<int32_t>& n, std::vector<double>& o,
                      std::vector<double>& lse) {
  const Sizes& s = p.s;
  o.assign(size_t(s.B * s.T * s.H * s.d), 0.0);
  lse.assign(size_t(s.B * s.T * s.H), 0.0);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.H; ++h) {
      const int64_t g = h / (s.H / s.Hkv);
      for (int64_t t = 0; t < s.T; ++t) {
        const int64_t keys = std::min<int64_t>(causal ? t + 1 : s.T, n[size_t(b)]);
        std::vector<double> sc(static_cast<size_t>(keys));
        for (int64_t j = 0; j < keys; ++j) {
          double acc = 0;
          for (int64_t e = 0; e < s.d; ++e)
            acc +=
                p.q.get(((b * s.T + t) * s.H + h) * s.d + e) * p.k.get(((b * s.T + j) * s.Hkv + g) * s.d + e);
          sc[size_t(j)] = p.scale * acc;
        }
        double z = 0;
        for (double x : sc) z += std::exp(x);
        lse[(b * s.T + t) * s.H + h] = std::log(z);
        for (int64_t j = 0; j < keys; ++j)
          for (int64_t e = 0; e < s.d; ++e)
            o[((b * s.T + t) * s.H + h) * s.d + e] +=
                std::exp(sc[size_t(j)]) / z * p.v.get(((b * s.T + j) * s.Hkv + g) * s.d + e);
      }
    }
}

Buf lengths_of(const std::vector<int32_t>& n) {
  Buf l(DType::I32, {int64_t(n.size())});
  for (size_t b = 0; b < n.size(); ++b) l.p<int32_t>()[b] = n[b];
  return l;
}

}  // namespace

TEST(SoftmaxAttention, LengthsMaskThePaddedKeysOutAndNeverReadThem) {
  const std::vector<int32_t> n = {11, 6, 3, 1};
  Buf len = lengths_of(n);
  for (bool causal : {true, false})
    for (DType dt : {DType::F64, DType::F32}) {
      SCOPED_TRACE(::testing::Message() << "causal=" << causal << " " << dtype_name(dt));
      Prob p(dt, {4, 11, 4, 2, 12});
      p.fill(61);
      std::vector<double> o, lse;
      reference_padded(p, causal, n, o, lse);
      for (int64_t i = 0; i < p.k.n(); ++i)  // padded keys and values NaN: a read would show
        if ((i / (2 * 12)) % 11 >= n[size_t(i / (11 * 2 * 12))])
          p.k.set(i, std::nan("")), p.v.set(i, std::nan(""));
      SoftmaxAttnFwd f{p.o, p.lse, p.q, p.k, p.v, p.scale, causal};
      f.lengths = len;
      softmax_attention_fwd(ctx(), f);
      const double tol = dt == DType::F64 ? 1e-12 : 1e-5;
      EXPECT_LT(max_rel(p.o, o), tol);
      EXPECT_LT(max_rel(p.lse, lse), tol);
      // The backward reads no padding either, and gives it no gradient.
      Buf dout(dt, p.o.t.shape), dq(dt, p.q.t.shape), dk(dt, p.k.t.shape), dv(dt, p.v.t.shape);
      dout.randn(62), dk.randn(63), dv.randn(64);  // dk, dv garbage: overwritten everywhere
      SoftmaxAttnBwd g{dq, dk, dv, dout, p.o, p.lse, p.q, p.k, p.v, p.scale, causal};
      g.lengths = len;
      softmax_attention_bwd(ctx(), g);
      for (int64_t i = 0; i < dq.n(); ++i) ASSERT_TRUE(std::isfinite(dq.get(i))) << i;
      for (int64_t i = 0; i < dk.n(); ++i) {
        const bool pad = (i / (2 * 12)) % 11 >= n[size_t(i / (11 * 2 * 12))];
        ASSERT_TRUE(std::isfinite(dk.get(i)) && std::isfinite(dv.get(i))) << i;
        if (pad) ASSERT_TRUE(dk.get(i) == 0.0 && dv.get(i) == 0.0) << i;
      }
    }
}

TEST(SoftmaxAttention, GradientsWithLengthsMatchFiniteDifferences) {
  Buf len = lengths_of({11, 6, 3});
  for (bool causal : {true, false}) {
    SCOPED_TRACE(::testing::Message() << "causal=" << causal);
    Prob p(DType::F64, {3, 11, 4, 2, 10});
    p.fill(71);
    Buf probe(DType::F64, p.o.t.shape), dq(DType::F64, p.q.t.shape), dk(DType::F64, p.k.t.shape),
        dv(DType::F64, p.v.t.shape);
    probe.randn(72);
    auto fwd = [&] {
      SoftmaxAttnFwd f{p.o, p.lse, p.q, p.k, p.v, p.scale, causal};
      f.lengths = len;
      softmax_attention_fwd(ctx(), f);
    };
    auto loss = [&] {
      fwd();
      return dot(p.o, probe);
    };
    auto backward = [&] {
      fwd();
      SoftmaxAttnBwd g{dq, dk, dv, probe, p.o, p.lse, p.q, p.k, p.v, p.scale, causal};
      g.lengths = len;
      softmax_attention_bwd(ctx(), g);
    };
    expect_grad_matches(loss, backward, {{&p.q, &dq, "q"}, {&p.k, &dk, "k"}, {&p.v, &dv, "v"}}, 1e-5, 1e-6,
                        600);
  }
}

TEST(SoftmaxAttention, BadLengthsAreErrors) {
  Prob p(DType::F32, {2, 5, 2, 2, 4});
  p.fill(81);
  Buf bad = lengths_of({5, 6});
  SoftmaxAttnFwd f{p.o, p.lse, p.q, p.k, p.v, p.scale, false};
  f.lengths = bad;
  expect_error_contains([&] { softmax_attention_fwd(ctx(), f); }, "sequence 1 has length 6");
  Buf three(DType::I32, {3});
  f.lengths = three;
  expect_error_contains([&] { softmax_attention_fwd(ctx(), f); }, "should have shape [2]");
}

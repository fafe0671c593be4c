// test_backend_ops cases: exact softmax attention (include/wersa/ops/softmax_attention.h).
//   softmax_attention_fwd   causal and bidirectional; T = 1, T around the kernels' tiles (7, 33, 63,
//                           65, 130); GQA (H / Hkv = 1, 2, 4); head widths 1 .. 256 (f32) and up to
//                           128 (f64), also odd ones; lengths random, all 1, all T; a KV cache
//                           (one position: decode; a chunk: prefill; routed by the op); T = 1024.
//   softmax_attention_bwd   the same shapes, o and lse from each device's own forward (and a few
//                           with o and lse drawn at random, the backward alone).
//   softmax_attention_decode  caches filled to 1 .. 1000 rows (one split and several).
//   softmax_attention_prefill chunks at pos0 = 0 and later, one split and several.
//   kv_cache_append         rows copied at pos0, and k, v already being the cache rows.
// Plain TESTs: lengths outside [1, T] on the device give NaN in that sequence's outputs only, and
// prefill in chunks and decode reproduce the rows of the causal forward.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "backend_ops.h"
#include "guarded_buffer.h"
#include "wersa/ops/softmax_attention.h"

namespace wersa::test {

namespace {

struct Dims {
  int64_t B, T, H, Hkv, d;
};

enum class Len { None, Random, One, Full };  // lengths: none, random in [1, T], all 1, all T

const char* dname(DType dt) { return dt == DType::F32 ? "f32" : "f64"; }
double tol(DType dt) { return dt == DType::F32 ? 1e-10 : 1e-24; }
double scale_of(int64_t d) { return 1.3 / std::sqrt(double(d)); }  // not 1 / sqrt(d): a wrong scale shows

std::string dims_name(DType dt, const Dims& s) {
  return std::string(dname(dt)) + " B" + std::to_string(s.B) + " T" + std::to_string(s.T) + " H" +
         std::to_string(s.H) + "/" + std::to_string(s.Hkv) + " d" + std::to_string(s.d);
}

std::string len_name(Len l) {
  switch (l) {
    case Len::Random:
      return " len_rand";
    case Len::One:
      return " len_1";
    case Len::Full:
      return " len_full";
    default:
      return "";
  }
}

void add_lengths(OpCase& c, Len l, int64_t B, int64_t T) {
  if (l == Len::Random) c.ids("lengths", {B}, 1, T + 1);
  if (l == Len::One) c.ids("lengths", {B}, 1, 2);
  if (l == Len::Full) c.ids("lengths", {B}, T, T + 1);
}

void add_fwd(std::vector<OpCase>& out, DType dt, Dims s, bool causal, Len len) {
  OpCase c("softmax_attention_fwd",
           "softmax_attention_fwd " + dims_name(dt, s) + (causal ? " causal" : " bidir") + len_name(len));
  c.in("q", {s.B, s.T, s.H, s.d}, dt).in("k", {s.B, s.T, s.Hkv, s.d}, dt).in("v", {s.B, s.T, s.Hkv, s.d}, dt);
  add_lengths(c, len, s.B, s.T);
  c.out("o", {s.B, s.T, s.H, s.d}, dt).out("lse", {s.B, s.T, s.H}, dt);
  c.max_err = tol(dt);
  const double scale = scale_of(s.d);
  c.run = [causal, len, scale](Ctx& ctx, const Bound& t) {
    SoftmaxAttnFwd a{t["o"], t["lse"], t["q"], t["k"], t["v"], scale, causal};
    if (len != Len::None) a.lengths = t["lengths"];
    softmax_attention_fwd(ctx, a);
  };
  out.push_back(c);
}

// from_fwd: o and lse from the device's own forward (compared too), else drawn at random.
void add_bwd(std::vector<OpCase>& out, DType dt, Dims s, bool causal, Len len, bool from_fwd = true) {
  OpCase c("softmax_attention_bwd", "softmax_attention_bwd " + dims_name(dt, s) +
                                        (causal ? " causal" : " bidir") + len_name(len) +
                                        (from_fwd ? "" : " random_o_lse"));
  const Shape qs{s.B, s.T, s.H, s.d}, ks{s.B, s.T, s.Hkv, s.d}, rs{s.B, s.T, s.H};
  c.in("q", qs, dt).in("k", ks, dt).in("v", ks, dt).in("dout", qs, dt);
  if (from_fwd)
    c.out("o", qs, dt).out("lse", rs, dt);
  else
    c.in("o", qs, dt).in("lse", rs, dt, Fill::Uniform, 1, 3);
  add_lengths(c, len, s.B, s.T);
  c.out("dq", qs, dt).out("dk", ks, dt).out("dv", ks, dt);
  c.max_err = tol(dt);
  const double scale = scale_of(s.d);
  c.run = [causal, len, scale, from_fwd](Ctx& ctx, const Bound& t) {
    const Tensor lengths = len != Len::None ? t["lengths"] : Tensor{};
    if (from_fwd) {
      SoftmaxAttnFwd f{t["o"], t["lse"], t["q"], t["k"], t["v"], scale, causal};
      f.lengths = lengths;
      softmax_attention_fwd(ctx, f);
    }
    SoftmaxAttnBwd a{t["dq"], t["dk"], t["dv"], t["dout"], t["o"], t["lse"],
                     t["q"],  t["k"],  t["v"],  scale,     causal};
    a.lengths = lengths;
    softmax_attention_bwd(ctx, a);
  };
  out.push_back(c);
}

void add_decode(std::vector<OpCase>& out, DType dt, int64_t H, int64_t Hkv, int64_t d, int64_t Tmax,
                int64_t len) {
  OpCase c("softmax_attention_decode", "softmax_attention_decode " + std::string(dname(dt)) + " H" +
                                           std::to_string(H) + "/" + std::to_string(Hkv) + " d" +
                                           std::to_string(d) + " Tmax" + std::to_string(Tmax) + " len" +
                                           std::to_string(len));
  c.in("q", {H, d}, dt)
      .in("kcache", {Tmax, Hkv, d}, dt)
      .in("vcache", {Tmax, Hkv, d}, dt)
      .out("o", {H, d}, dt);
  c.max_err = tol(dt);
  const double scale = scale_of(d);
  c.run = [len, scale](Ctx& ctx, const Bound& t) {
    softmax_attention_decode(ctx, SoftmaxAttnDecode{t["o"], t["q"], t["kcache"], t["vcache"], len, scale});
  };
  out.push_back(c);
}

void add_prefill(std::vector<OpCase>& out, DType dt, int64_t T, int64_t H, int64_t Hkv, int64_t d,
                 int64_t Tmax, int64_t pos0) {
  OpCase c("softmax_attention_prefill", "softmax_attention_prefill " + std::string(dname(dt)) + " T" +
                                            std::to_string(T) + " H" + std::to_string(H) + "/" +
                                            std::to_string(Hkv) + " d" + std::to_string(d) + " Tmax" +
                                            std::to_string(Tmax) + " pos0_" + std::to_string(pos0));
  c.in("q", {T, H, d}, dt).in("kcache", {Tmax, Hkv, d}, dt).in("vcache", {Tmax, Hkv, d}, dt);
  c.out("o", {T, H, d}, dt);
  c.max_err = tol(dt);
  const double scale = scale_of(d);
  c.run = [pos0, scale](Ctx& ctx, const Bound& t) {
    softmax_attention_prefill(ctx, SoftmaxAttnPrefill{t["o"], t["q"], t["kcache"], t["vcache"], pos0, scale});
  };
  out.push_back(c);
}

// alias: k and v are the cache rows themselves (nothing to copy).
void add_append(std::vector<OpCase>& out, DType dt, int64_t T, int64_t Hkv, int64_t d, int64_t Tmax,
                int64_t pos0, bool alias) {
  OpCase c("kv_cache_append", "kv_cache_append " + std::string(dname(dt)) + " T" + std::to_string(T) +
                                  " Hkv" + std::to_string(Hkv) + " d" + std::to_string(d) + " Tmax" +
                                  std::to_string(Tmax) + " pos0_" + std::to_string(pos0) +
                                  (alias ? " alias" : ""));
  if (!alias) c.in("k", {T, Hkv, d}, dt).in("v", {T, Hkv, d}, dt);
  c.acc("kcache", {Tmax, Hkv, d}, dt).acc("vcache", {Tmax, Hkv, d}, dt);
  c.max_err = 0;  // a copy
  c.run = [T, pos0, alias](Ctx& ctx, const Bound& t) {
    const Tensor kc = t["kcache"], vc = t["vcache"];
    const Tensor k = alias ? kc.rows(pos0, pos0 + T) : t["k"];
    const Tensor v = alias ? vc.rows(pos0, pos0 + T) : t["v"];
    kv_cache_append(ctx, KvCacheAppend{kc, vc, k, v, pos0});
  };
  out.push_back(c);
}

// softmax_attention_fwd continuing a sequence over a KV cache (the op routes it: append, then
// decode for T = 1 or prefill).
void add_fwd_cache(std::vector<OpCase>& out, DType dt, int64_t T, int64_t H, int64_t Hkv, int64_t d,
                   int64_t Tmax, int64_t pos0) {
  OpCase c("softmax_attention_fwd", "softmax_attention_fwd " + std::string(dname(dt)) + " cache T" +
                                        std::to_string(T) + " H" + std::to_string(H) + "/" +
                                        std::to_string(Hkv) + " d" + std::to_string(d) + " Tmax" +
                                        std::to_string(Tmax) + " pos0_" + std::to_string(pos0));
  c.in("q", {1, T, H, d}, dt).in("k", {1, T, Hkv, d}, dt).in("v", {1, T, Hkv, d}, dt);
  c.acc("kcache", {Tmax, Hkv, d}, dt).acc("vcache", {Tmax, Hkv, d}, dt).out("o", {1, T, H, d}, dt);
  c.max_err = tol(dt);
  const double scale = scale_of(d);
  c.run = [pos0, scale](Ctx& ctx, const Bound& t) {
    SoftmaxAttnFwd a{t["o"], Tensor{}, t["q"], t["k"], t["v"], scale, true};
    a.kcache = t["kcache"], a.vcache = t["vcache"], a.pos0 = pos0;
    softmax_attention_fwd(ctx, a);
  };
  out.push_back(c);
}

}  // namespace

void add_softmax_attention_cases(std::vector<OpCase>& out) {
  for (DType dt : {DType::F32, DType::F64}) {
    // Edge shapes, every mask: T = 1, T off the 32-key and 32/64-row tiles, GQA 1, 2, 4.
    const Dims shapes[] = {
        {1, 1, 1, 1, 16}, {2, 7, 4, 2, 16}, {1, 63, 2, 2, 32}, {2, 65, 4, 1, 32}, {1, 33, 4, 4, 64}};
    for (const Dims& s : shapes)
      for (bool causal : {true, false})
        for (Len len : {Len::None, Len::Random}) {
          add_fwd(out, dt, s, causal, len);
          add_bwd(out, dt, s, causal, len);
        }
    // Lengths all 1 and all T; several sequences of different lengths.
    for (bool causal : {true, false})
      for (Len len : {Len::One, Len::Full}) {
        add_fwd(out, dt, {3, 40, 4, 2, 16}, causal, len);
        add_bwd(out, dt, {3, 40, 4, 2, 16}, causal, len);
      }
    add_fwd(out, dt, {5, 70, 2, 1, 8}, true, Len::Random);
    add_bwd(out, dt, {5, 70, 2, 1, 8}, false, Len::Random);
    // Head widths: 1, odd, between the lanes' column blocks, the widest the kernels take.
    for (int64_t d : {1, 7, 40, 100, dt == DType::F32 ? 129 : 127, dt == DType::F32 ? 256 : 128}) {
      add_fwd(out, dt, {1, 37, 2, 1, d}, true, Len::None);
      add_bwd(out, dt, {1, 37, 2, 1, d}, true, Len::None);
      add_fwd(out, dt, {2, 20, 2, 2, d}, false, Len::Random);
      add_bwd(out, dt, {2, 20, 2, 2, d}, false, Len::Random);
    }
    // The backward alone (o, lse not from a forward).
    add_bwd(out, dt, {2, 33, 4, 2, 16}, true, Len::None, false);
    add_bwd(out, dt, {2, 33, 4, 2, 16}, false, Len::Random, false);
    // Larger: several key and row tiles a block, GQA 4 (not under the sanitizers).
    add_fwd(out, dt, {1, 130, 4, 2, 64}, true, Len::None);
    add_bwd(out, dt, {1, 130, 4, 2, 64}, true, Len::None);
    add_fwd(out, dt, {2, 200, 4, 1, 32}, false, Len::Random);
    add_bwd(out, dt, {2, 200, 4, 1, 32}, false, Len::Random);

    // Decode: caches filled to 1 .. 1000 rows (1000: several splits and a short last one).
    add_decode(out, dt, 1, 1, 16, 1, 1);
    add_decode(out, dt, 4, 2, 16, 8, 5);
    add_decode(out, dt, 4, 1, 32, 40, 33);
    add_decode(out, dt, 2, 2, 7, 50, 37);
    add_decode(out, dt, 4, 2, 64, 300, 300);
    add_decode(out, dt, 8, 8, 64, 1200, 1000);
    add_decode(out, dt, 8, 2, dt == DType::F32 ? 256 : 128, 600, 599);
    // Prefill: a chunk at the start and later; one split and several (pos0 + T > 256).
    add_prefill(out, dt, 1, 4, 2, 16, 10, 0);
    add_prefill(out, dt, 1, 4, 2, 16, 10, 9);
    add_prefill(out, dt, 7, 4, 2, 16, 20, 5);
    add_prefill(out, dt, 33, 2, 2, 64, 40, 0);
    add_prefill(out, dt, 65, 4, 1, 32, 600, 500);
    add_prefill(out, dt, 130, 4, 2, 32, 400, 270);
    // The KV-cache append, and the forward over a cache (the op routes it).
    add_append(out, dt, 1, 2, 16, 8, 7, false);
    add_append(out, dt, 5, 2, 16, 20, 3, false);
    add_append(out, dt, 7, 1, 33, 7, 0, false);
    add_append(out, dt, 5, 2, 16, 20, 3, true);
    add_fwd_cache(out, dt, 1, 4, 2, 16, 16, 9);
    add_fwd_cache(out, dt, 6, 4, 2, 16, 16, 3);
    add_fwd_cache(out, dt, 40, 4, 1, 32, 400, 300);
  }
  // Realistic: one sequence of 1024 tokens, 4 heads of 64 (the plain simulator build only).
  add_fwd(out, DType::F32, {1, 1024, 4, 4, 64}, true, Len::None);
  add_bwd(out, DType::F32, {1, 1024, 4, 4, 64}, true, Len::None);
  add_fwd(out, DType::F32, {1, 512, 8, 2, 64}, false, Len::None);
  add_decode(out, DType::F32, 32, 8, 128, 4096, 4000);
  add_prefill(out, DType::F32, 256, 8, 2, 64, 2048, 1500);
}

namespace {

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// Lengths 3 (good), 0 and 9 (bad, T = 5): the bad sequences get NaN in every output, the good one
// none; nothing is written outside the outputs.
TEST(SoftmaxAttentionBadLengths, NanForThatSequence) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t B = 3, T = 5, H = 2, Hkv = 1, d = 4;
  const Shape qs{B, T, H, d}, ks{B, T, Hkv, d}, rs{B, T, H};
  const size_t nq = size_t(qs.numel()), nk = size_t(ks.numel()), nr = size_t(rs.numel());
  GuardedBuffer q(Device::CUDA, DType::F32, qs, random_floats(nq, 1));
  GuardedBuffer k(Device::CUDA, DType::F32, ks, random_floats(nk, 2));
  GuardedBuffer v(Device::CUDA, DType::F32, ks, random_floats(nk, 3));
  GuardedBuffer dout(Device::CUDA, DType::F32, qs, random_floats(nq, 4));
  GuardedBuffer lengths(Device::CUDA, DType::I32, {B}, std::vector<int32_t>{3, 0, 9});
  GuardedBuffer o(Device::CUDA, DType::F32, qs, std::vector<float>(nq, -7.f));
  GuardedBuffer lse(Device::CUDA, DType::F32, rs, std::vector<float>(nr, -7.f));
  GuardedBuffer dq(Device::CUDA, DType::F32, qs, std::vector<float>(nq, -7.f));
  GuardedBuffer dk(Device::CUDA, DType::F32, ks, std::vector<float>(nk, -7.f));
  GuardedBuffer dv(Device::CUDA, DType::F32, ks, std::vector<float>(nk, -7.f));
  for (bool causal : {true, false}) {
    Ctx ctx(Device::CUDA, ScratchPolicy::Grow);
    SoftmaxAttnFwd f{o.t(), lse.t(), q.t(), k.t(), v.t(), 0.5, causal};
    f.lengths = lengths.t();
    softmax_attention_fwd(ctx, f);
    SoftmaxAttnBwd g{dq.t(), dk.t(), dv.t(), dout.t(), o.t(), lse.t(), q.t(), k.t(), v.t(), 0.5, causal};
    g.lengths = lengths.t();
    softmax_attention_bwd(ctx, g);
    ctx.sync();
    // Each tensor holds B sequences of `per` elements: sequence 0 finite, 1 and 2 NaN.
    auto check = [&](const GuardedBuffer& buf, size_t n, const char* name) {
      bool guards = false;
      const std::vector<float> x = buf.read<float>(&guards);
      EXPECT_TRUE(guards) << name << ": a write outside it";
      const size_t per = n / size_t(B);
      for (size_t i = 0; i < n; ++i) {
        if (i < per)
          EXPECT_TRUE(std::isfinite(x[i])) << name << " [" << i << "] = " << x[i] << " (good sequence)";
        else
          EXPECT_TRUE(std::isnan(x[i])) << name << " [" << i << "] = " << x[i] << " (bad length)";
      }
    };
    check(o, nq, "o");
    check(lse, nr, "lse");
    check(dq, nq, "dq");
    check(dk, nk, "dk");
    check(dv, nk, "dv");
  }
}

// A prompt processed in chunks by prefill, and a last position by decode, over a cache holding the
// sequence's k and v, give the rows of the causal forward over the whole sequence.
TEST(SoftmaxAttentionGeneration, PrefillAndDecodeMatchTheForward) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  const int64_t T = 300, H = 4, Hkv = 2, d = 32, split = 170;
  const size_t nq = size_t(T * H * d), nk = size_t(T * Hkv * d);
  GuardedBuffer q(Device::CUDA, DType::F32, {1, T, H, d}, random_floats(nq, 5));
  GuardedBuffer k(Device::CUDA, DType::F32, {1, T, Hkv, d}, random_floats(nk, 6));
  GuardedBuffer v(Device::CUDA, DType::F32, {1, T, Hkv, d}, random_floats(nk, 7));
  GuardedBuffer o(Device::CUDA, DType::F32, {1, T, H, d}, std::vector<float>(nq, -7.f));
  GuardedBuffer lse(Device::CUDA, DType::F32, {1, T, H}, std::vector<float>(size_t(T * H), -7.f));
  GuardedBuffer og(Device::CUDA, DType::F32, {T, H, d}, std::vector<float>(nq, -7.f));
  GuardedBuffer od(Device::CUDA, DType::F32, {H, d}, std::vector<float>(size_t(H * d), -7.f));
  const double scale = scale_of(d);
  Ctx ctx(Device::CUDA, ScratchPolicy::Grow);
  softmax_attention_fwd(ctx, SoftmaxAttnFwd{o.t(), lse.t(), q.t(), k.t(), v.t(), scale, true});
  const Tensor kc = k.t().view({T, Hkv, d}), vc = v.t().view({T, Hkv, d}), q3 = q.t().view({T, H, d});
  softmax_attention_prefill(ctx,
                            SoftmaxAttnPrefill{og.t().rows(0, split), q3.rows(0, split), kc, vc, 0, scale});
  softmax_attention_prefill(
      ctx, SoftmaxAttnPrefill{og.t().rows(split, T), q3.rows(split, T), kc, vc, split, scale});
  softmax_attention_decode(ctx, SoftmaxAttnDecode{od.t(), q3.rows(T - 1, T).view({H, d}), kc, vc, T, scale});
  ctx.sync();
  const std::vector<float> want = o.read<float>(), got = og.read<float>(), last = od.read<float>();
  EXPECT_TRUE(og.guards_intact() && od.guards_intact());
  double worst = 0;
  for (size_t i = 0; i < nq; ++i) worst = std::max(worst, double(std::fabs(got[i] - want[i])));
  for (size_t i = 0; i < size_t(H * d); ++i)
    worst = std::max(worst, double(std::fabs(last[i] - want[nq - size_t(H * d) + i])));
  EXPECT_LT(worst, 1e-5) << "largest difference from the forward";
}

}  // namespace
}  // namespace wersa::test

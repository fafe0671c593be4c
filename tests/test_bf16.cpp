// bf16 inference weights: rounding to nearest even against a brute-force search of the bf16
// values; the bf16 matmul (one row: the GEMV; more rows: widened tiles through BLAS) and
// embedding agree with f64 and with their f32 kernels on the widened weights; the GEMV is the
// same for any thread count; a bf16 inference copy of a model
// decodes and prefills like the f32 model whose weights were rounded the same way; what it must
// refuse.
#include <omp.h>

#include <cmath>
#include <limits>

#include "testutil.h"
#include "wersa/common/rng.h"
#include "wersa/model/generate.h"
#include "wersa/ops/embedding.h"
#include "wersa/ops/matmul.h"
#include "wersa/tensor/arena.h"

using namespace wersa;
using namespace wersa::test;

namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The nearest bf16 to f by search over every finite bf16 of f's sign and magnitude near it:
// candidates are the truncation and the next value up; ties go to the even bit pattern.
uint16_t nearest_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const uint16_t lo = uint16_t(u >> 16), hi = uint16_t(lo + 1);
  const double dlo = std::fabs(double(f) - double(from_bits(uint32_t(lo) << 16)));
  const double dhi = std::fabs(double(f) - double(from_bits(uint32_t(hi) << 16)));
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}

// A bf16 copy of an f32 buffer, and the f32 buffer of the widened values.
struct Rounded {
  Buf h, f;
  explicit Rounded(const Buf& src) : h(DType::BF16, src.t.shape), f(DType::F32, src.t.shape) {
    tensor_convert(h, src);
    tensor_convert(f, h);
  }
};

}  // namespace

TEST(Bf16, RoundsToNearestEven) {
  // Random bit patterns over the whole finite range, plus every pattern whose low half is a tie.
  int checked = 0;
  for (uint64_t i = 0; i < 200000; ++i) {
    uint32_t u = uint32_t(rng_bits(7, 1, i));
    if (i % 4 == 0) u = (u & 0xffff0000u) | 0x8000u;  // exactly halfway
    const float f = from_bits(u);
    if (!std::isfinite(f) || std::fabs(f) > 3.38e38f) continue;  // beyond the largest bf16 (checked below)
    EXPECT_EQ(float_to_bf16(f).bits, nearest_bf16(f)) << std::hex << u;
    ++checked;
  }
  EXPECT_GT(checked, 190000);
  // Widening is exact and rounding a bf16 value gives it back.
  for (uint32_t b = 0; b < 0x10000u; b += 7) {
    const float f = bf16_to_float(bf16{uint16_t(b)});
    if (std::isnan(f)) continue;
    EXPECT_EQ(float_to_bf16(f).bits, b);
  }
}

TEST(Bf16, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float_to_bf16(inf).bits, 0x7f80);
  EXPECT_EQ(float_to_bf16(-inf).bits, 0xff80);
  EXPECT_EQ(float_to_bf16(-0.0f).bits, 0x8000);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()).bits, 0x7f80);  // overflows, as IEEE rounding
  // A NaN whose payload sits in the low half only must not become infinity.
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(from_bits(0x7f800001u)))));
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(float_to_bf16(1.0f).bits, 0x3f80);
  EXPECT_EQ(float_to_bf16(from_bits(0x3f808000u)).bits, 0x3f80);  // tie, even stays
  EXPECT_EQ(float_to_bf16(from_bits(0x3f818000u)).bits, 0x3f82);  // tie, odd goes up
}

TEST(Bf16, MatmulEqualsTheF32KernelOnWidenedWeights) {
  // One row takes the bf16 GEMV, more rows the widened tiles through BLAS; both against f64 on the
  // widened weights and against the f32 kernels. I covers the 32-column blocks' tails and more than
  // one 8192-column chunk of the GEMV; O > 256 covers several tiles and the 4-row blocks' tail;
  // with and without bias and accumulation.
  for (int64_t I : {1, 31, 32, 33, 100, 8192 + 40}) {
    for (int64_t O : {1, 5, 300}) {
      for (int64_t N : {1, 3, 40}) {
        if (I > 1000 && (O > 5 || N > 3)) continue;  // the long rows once per shape class
        Buf x(DType::F32, {N, I}), w(DType::F32, {O, I}), b(DType::F32, {O}), y0(DType::F32, {N, O});
        x.randn(1), w.randn(2), b.randn(3), y0.randn(4);
        const Rounded wr(w);
        for (bool bias : {false, true}) {
          for (bool acc : {false, true}) {
            Buf yh(DType::F32, {N, O}), yf(DType::F32, {N, O});
            yh.copy_from(y0), yf.copy_from(y0);
            const Tensor bt = bias ? b.t : Tensor();
            matmul_fwd(ctx(), {yh, x, wr.h, bt, acc});
            matmul_fwd(ctx(), {yf, x, wr.f, bt, acc});
            // f64 reference on the widened weights.
            double worst = 0;
            for (int64_t n = 0; n < N; ++n)
              for (int64_t o = 0; o < O; ++o) {
                double s = acc ? y0.get(n * O + o) : 0.0;
                if (bias) s += b.get(o);
                for (int64_t i = 0; i < I; ++i) s += x.get(n * I + i) * wr.f.get(o * I + i);
                worst = std::max(worst, std::fabs(yh.get(n * O + o) - s) / (1.0 + std::fabs(s)));
              }
            EXPECT_LT(worst, 1e-5) << "N " << N << " I " << I << " O " << O;
            double vs_f32 = 0;
            for (int64_t k = 0; k < N * O; ++k)
              vs_f32 = std::max(vs_f32, std::fabs(yh.get(k) - yf.get(k)) / (1.0 + std::fabs(yf.get(k))));
            EXPECT_LT(vs_f32, 1e-5) << "N " << N << " I " << I << " O " << O;
          }
        }
      }
    }
  }
}

TEST(Bf16, GemvIsTheSameForAnyThreadCount) {
  const int64_t O = 1000, I = 600;  // large enough for the parallel path
  Buf x(DType::F32, {1, I}), w(DType::F32, {O, I}), y1(DType::F32, {1, O}), y2(DType::F32, {1, O});
  x.randn(11), w.randn(12);
  const Rounded wr(w);
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  matmul_fwd(ctx(), {y1, x, wr.h, {}});
  omp_set_num_threads(2);
  matmul_fwd(ctx(), {y2, x, wr.h, {}});
  omp_set_num_threads(before);
  for (int64_t o = 0; o < O; ++o) ASSERT_EQ(y1.get(o), y2.get(o)) << "row " << o;
}

TEST(Bf16, MatmulInDoubleAndEmbedding) {
  const int64_t N = 6, I = 9, O = 4, V = 11, D = 5;
  Buf x(DType::F64, {N, I}), w(DType::F32, {O, I}), y(DType::F64, {N, O});
  x.randn(5), w.randn(6);
  const Rounded wr(w);
  matmul_fwd(ctx(), {y, x, wr.h, {}});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) {
      double s = 0;
      for (int64_t i = 0; i < I; ++i) s += x.get(n * I + i) * wr.f.get(o * I + i);
      EXPECT_NEAR(y.get(n * O + o), s, 1e-12 * (1 + std::fabs(s)));
    }
  Buf table(DType::F32, {V, D}), tokens(DType::I32, {N}), e(DType::F32, {N, D});
  table.randn(7);
  for (int64_t n = 0; n < N; ++n) tokens.p<int32_t>()[n] = int32_t((n * 7 + 3) % V);
  const Rounded tr(table);
  embedding_fwd(ctx(), {e, tokens, tr.h});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < D; ++j) EXPECT_EQ(e.get(n * D + j), tr.f.get(tokens.p<int32_t>()[n] * D + j));
}

TEST(Bf16, WeightsAreForwardOnly) {
  Buf x(DType::F32, {2, 3}), w(DType::F32, {4, 3}), dy(DType::F32, {2, 4}), dx(DType::F32, {2, 3});
  x.randn(1), w.randn(2), dy.randn(3);
  const Rounded wr(w);
  expect_error_contains([&] { matmul_bwd(ctx(), {dx, {}, {}, dy, x, wr.h}); }, "bf16");
}

namespace {

ModelConfig bf16_model(const std::string& type, bool tied) {
  ModelConfig m;
  m.vocab_size = 300;
  m.dim = 48;
  m.layers = 2;
  m.heads = 4;
  m.kv_heads = 2;
  m.ffn_dim = 80;
  m.tie_embeddings = tied;
  m.init_std = 0.2;
  m.attention.type = attention_kind_from_name(type);
  m.attention.features = 16;
  m.attention.levels = 2;
  m.attention.conv_width = 5;
  m.attention.chunk = 16;
  return m;
}

}  // namespace

TEST(Bf16, InferenceCopyDecodesLikeTheRoundedF32Model) {
  for (const char* type : {"wersa", "softmax", "linear"}) {
    for (bool tied : {true, false}) {
      Model f32(bf16_model(type, tied), DType::F32, Device::CPU, false);
      f32.init(3);
      Model h(f32, DType::BF16);
      EXPECT_EQ(h.weight_dtype(), DType::BF16);
      EXPECT_FALSE(h.trainable());
      // The reference: the f32 model with exactly the bf16 copy's values.
      Model ref(f32.config(), DType::F32, Device::CPU, false);
      ref.init(3);
      for (size_t i = 0; i < ref.params_arena().tensors().size(); ++i) {
        const Tensor& t = ref.params_arena().tensors()[i];
        const Tensor& ht = h.params_arena().tensors()[i];
        EXPECT_EQ(ht.dtype, ref.param_decls()[i].bf16_ok ? DType::BF16 : DType::F32) << t.name;
        tensor_convert(t, ht);
      }
      // A decode step reads about half the bytes (norms, biases and buffers stay f32).
      EXPECT_LT(double(decode_weight_bytes(h)), 0.56 * double(decode_weight_bytes(ref))) << type;
      // Decoding token by token: the bf16 GEMV against the f32 one on the same values (their sums
      // run in different orders: fp32 rounding apart).
      const int64_t T = 40, V = f32.config().vocab_size;
      std::vector<int32_t> toks(static_cast<size_t>(T));
      for (int64_t i = 0; i < T; ++i) toks[size_t(i)] = int32_t(rng_bits(9, 2, uint64_t(i)) % uint64_t(V));
      DecodeState sh(h, {T, 16}), sr(ref, {T, 16}), sp(h, {T, 16}), sf(f32, {T, 16});
      double dec = 0, dscale = 1e-30;
      for (int64_t t = 0; t < T; ++t) {
        const Tensor& lh = decode_step(h, sh, toks[size_t(t)]);
        const Tensor& lr = decode_step(ref, sr, toks[size_t(t)]);
        decode_step(f32, sf, toks[size_t(t)]);
        for (int64_t v = 0; v < V; ++v) {
          dec = std::max(dec, double(std::fabs(lh.ptr<float>()[v] - lr.ptr<float>()[v])));
          dscale = std::max(dscale, double(std::fabs(lr.ptr<float>()[v])));
        }
      }
      EXPECT_LT(dec / dscale, 1e-5) << type << " tied " << tied;
      // Prefill in chunks of 16 (the widened-tile path) gives the decoded logits to fp32 rounding.
      Buf all(DType::F32, {T, V});
      prefill(h, sp, toks, all);
      DecodeState sd(h, {T, 16});
      double worst = 0, scale = 1e-30;
      for (int64_t t = 0; t < T; ++t) {
        const Tensor& l = decode_step(h, sd, toks[size_t(t)]);
        for (int64_t v = 0; v < V; ++v) {
          worst = std::max(worst, double(std::fabs(all.get(t * V + v) - l.ptr<float>()[v])));
          scale = std::max(scale, double(std::fabs(l.ptr<float>()[v])));
        }
      }
      EXPECT_LT(worst / scale, 1e-4) << type;
      // And the rounding moved the logits (bf16 is not silently f32), by a bf16-sized amount.
      double moved = 0;
      for (int64_t v = 0; v < V; ++v)
        moved = std::max(moved, double(std::fabs(sf.logits().ptr<float>()[v] - sh.logits().ptr<float>()[v])));
      EXPECT_GT(moved, 0.0) << type;
      EXPECT_LT(moved / scale, 0.1) << type;
    }
  }
}

TEST(Bf16, WhatAnInferenceCopyRefuses) {
  Model f64(bf16_model("wersa", true), DType::F64, Device::CPU, false);
  expect_error_contains([&] { Model h(f64, DType::BF16); }, "f32 CPU model");
  Model f32(bf16_model("wersa", true), DType::F32, Device::CPU, false);
  expect_error_contains([&] { Model h(f32, DType::F64); }, "f32 CPU model");
  Model h(f32, DType::BF16);
  expect_error_contains([&] { Model again(h, DType::BF16); }, "f32 CPU model");
  expect_error_contains([&] { Model moved(h, Device::CUDA); }, "stays on the CPU");
}

// test_backend_ops cases: mask_padding (f32, f64; rank 2 to 4, B = 1, T = 1, widths not a multiple
// of 32; NaN/Inf in x, padded rows included; in place). Plain TESTs: lengths outside [1, T] on
// the device give NaN in that sequence's rows of y and nothing outside y.
#include <gtest/gtest.h>

#include <cmath>

#include "backend_ops.h"
#include "guarded_buffer.h"
#include "wersa/ops/mask.h"

namespace wersa::test {

void add_mask_cases(std::vector<OpCase>& out) {
  const Shape shapes[] = {{1, 1}, {3, 5}, {1, 1, 17}, {2, 7, 33}, {4, 9, 3, 5}, {5, 64, 40}};
  for (DType dt : {DType::F32, DType::F64}) {
    const char* d = dt == DType::F32 ? "f32" : "f64";
    for (const Shape& s : shapes) {
      const int64_t B = s[0], T = s[1];
      OpCase c("mask_padding", std::string("mask_padding ") + d + " " + s.str());
      c.in("x", s, dt, Fill::Special).ids("lengths", {B}, 1, T + 1).out("y", s, dt);
      c.max_err = 0;
      c.run = [](Ctx& ctx, const Bound& t) { mask_padding(ctx, MaskPadding{t["y"], t["x"], t["lengths"]}); };
      out.push_back(c);

      OpCase ip("mask_padding", std::string("mask_padding ") + d + " " + s.str() + " inplace");
      ip.acc("x", s, dt).ids("lengths", {B}, 1, T + 1);
      ip.tensors[0].fill = Fill::Special;  // NaN in padded rows too: they become 0
      ip.max_err = 0;
      ip.run = [](Ctx& ctx, const Bound& t) { mask_padding(ctx, MaskPadding{t["x"], t["x"], t["lengths"]}); };
      out.push_back(ip);
    }
  }
}

namespace {

template <class T>
void check_bad_lengths(DType dt, bool in_place) {
  const int64_t B = 6, Tn = 4, W = 3;
  const std::vector<int32_t> len = {2, 0, 5, -3, 4, 1 << 30};  // 0, 5, -3 and 2^30 are bad
  std::vector<T> x(size_t(B * Tn * W));
  for (size_t i = 0; i < x.size(); ++i) x[i] = T(1 + i);
  GuardedBuffer gx(Device::CUDA, dt, {B, Tn, W}, x);
  GuardedBuffer gy(Device::CUDA, dt, {B, Tn, W}, std::vector<T>(x.size(), T(-7)));
  GuardedBuffer gl(Device::CUDA, DType::I32, {B}, len);
  Ctx ctx(Device::CUDA);
  const Tensor& y = in_place ? gx.t() : gy.t();
  mask_padding(ctx, MaskPadding{y, gx.t(), gl.t()});
  ctx.sync();
  bool guards = false, lguards = false, xguards = false;
  const std::vector<T> got = (in_place ? gx : gy).template read<T>(&guards);
  gl.read<int32_t>(&lguards);
  const std::vector<T> xs = gx.read<T>(&xguards);
  EXPECT_TRUE(guards && lguards && xguards) << "a write outside y";
  if (!in_place) {
    EXPECT_EQ(xs, x) << "x was modified";
  }
  for (int64_t b = 0; b < B; ++b) {
    const bool bad = len[size_t(b)] < 1 || len[size_t(b)] > Tn;
    for (int64_t t = 0; t < Tn; ++t)
      for (int64_t j = 0; j < W; ++j) {
        const size_t i = size_t((b * Tn + t) * W + j);
        if (bad)
          EXPECT_TRUE(std::isnan(got[i])) << "b " << b << " t " << t << " j " << j << ": " << got[i];
        else
          EXPECT_EQ(got[i], t < len[size_t(b)] ? x[i] : T(0)) << "b " << b << " t " << t << " j " << j;
      }
  }
}

TEST(MaskPaddingBadLengths, NanForThatSequenceF32) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  check_bad_lengths<float>(DType::F32, false);
}
TEST(MaskPaddingBadLengths, NanForThatSequenceF64InPlace) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
  check_bad_lengths<double>(DType::F64, true);
}

}  // namespace
}  // namespace wersa::test

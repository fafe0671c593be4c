// mask_padding (zeroes the padded rows of a batch; the masks of bidirectional attention over padded
// documents): forward against the definition, in place and out of place, FD gradients in f64,
// padding never read, length and aliasing errors.
#include <cmath>

#include "testutil.h"
#include "wersa/ops/mask.h"

using namespace wersa;
using namespace wersa::test;

namespace {

const int64_t kB = 3, kT = 7, kH = 2, kD = 5;

Buf lengths_of(std::vector<int32_t> n) {
  Buf l(DType::I32, {int64_t(n.size())});
  for (size_t b = 0; b < n.size(); ++b) l.p<int32_t>()[b] = n[b];
  return l;
}

int64_t row_of(int64_t i) { return (i / (kH * kD)) % kT; }
int64_t seq_of(int64_t i) { return i / (kT * kH * kD); }

}  // namespace

TEST(MaskPadding, ForwardMatchesTheDefinitionInAndOutOfPlace) {
  for (DType dt : {DType::F32, DType::F64}) {
    Buf x(dt, {kB, kT, kH, kD}), y(dt, {kB, kT, kH, kD}), z(dt, {kB, kT, kH, kD});
    x.randn(1), y.randn(2);  // y garbage: overwritten everywhere
    const std::vector<int32_t> n = {7, 3, 1};
    Buf len = lengths_of(n);
    mask_padding(ctx(), {y, x, len});
    z.copy_from(x);
    mask_padding(ctx(), {z, z, len});
    for (int64_t i = 0; i < x.n(); ++i) {
      const double want = row_of(i) < n[size_t(seq_of(i))] ? x.get(i) : 0.0;
      EXPECT_EQ(y.get(i), want) << i;
      EXPECT_EQ(z.get(i), want) << i;
    }
  }
}

TEST(MaskPadding, GradientsMatchFiniteDifferences) {
  Buf x(DType::F64, {kB, kT, kH, kD}), y(DType::F64, {kB, kT, kH, kD}), probe(DType::F64, {kB, kT, kH, kD});
  Buf dx(DType::F64, {kB, kT, kH, kD});
  x.randn(3), probe.randn(4);
  Buf len = lengths_of({4, 7, 2});
  auto loss = [&] {
    mask_padding(ctx(), {y, x, len});
    return dot(y, probe);
  };
  auto backward = [&] { mask_padding(ctx(), {dx, probe, len}); };  // the op is its own adjoint
  expect_grad_matches(loss, backward, {{&x, &dx, "x"}}, 1e-5, 1e-6, 1000);
}

TEST(MaskPadding, PaddingIsNeverRead) {
  Buf x(DType::F32, {kB, kT, kH * kD}), y1(DType::F32, {kB, kT, kH * kD}), y2(DType::F32, {kB, kT, kH * kD});
  x.randn(5);
  const std::vector<int32_t> n = {5, 2, 7};
  Buf len = lengths_of(n);
  mask_padding(ctx(), {y1, x, len});
  for (int64_t i = 0; i < x.n(); ++i)  // padding set to NaN: a read would show
    if (row_of(i) >= n[size_t(seq_of(i))]) x.set(i, std::nan(""));
  mask_padding(ctx(), {y2, x, len});
  EXPECT_EQ(rel_err(y2, y1), 0.0);
  mask_padding(ctx(), {x, x, len});  // in place too
  EXPECT_EQ(rel_err(x, y1), 0.0);
}

TEST(MaskPadding, LengthsOutsideTheSequenceAndOverlapsAreErrors) {
  Buf x(DType::F32, {kB, kT, kD}), y(DType::F32, {kB, kT, kD});
  x.randn(7);
  for (int32_t bad : {0, -1, int32_t(kT + 1)}) {
    Buf len = lengths_of({3, bad, 2});
    expect_error_contains(
        [&] {
          mask_padding(ctx(), {y, x, len});
        },
        "sequence 1 has length " + std::to_string(bad));
  }
  Buf wrong(DType::I32, {kB + 1});
  expect_error_contains([&] { mask_padding(ctx(), {y, x, wrong}); }, "should have shape [3]");
  Buf len = lengths_of({3, 2, 1});
  Buf big(DType::F32, {kB + 1, kT, kD});
  const Tensor shifted = big.t.rows(1, kB + 1), first = big.t.rows(0, kB);
  expect_error_contains([&] { mask_padding(ctx(), {shifted, first, len}); }, "not overlap");
}

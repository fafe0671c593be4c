// The vectorised exp of the CPU kernels (src/kernels/cpu/vexp.h) against std::exp in double:
// relative error over the whole float range it serves, the underflow cut, and the row sum.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../src/kernels/cpu/vexp.h"

namespace {

TEST(Vexp, RelativeErrorWithinTwoUlpOverTheRange) {
  double worst = 0;
  int64_t n = 0;
  for (float x = -87.25f; x <= 88.f; x += 0.000731f, ++n) {
    const double ref = std::exp(double(x));
    const double rel = std::fabs(double(wersa::cpu::vexp_one(x)) - ref) / ref;
    worst = std::max(worst, rel);
  }
  EXPECT_GT(n, 200000);
  EXPECT_LT(worst, 2.4e-7) << "2 ulp of float is 2.38e-7";
  EXPECT_EQ(wersa::cpu::vexp_one(0.f), 1.f);
  EXPECT_EQ(wersa::cpu::vexp_one(-87.5f), 0.f);
  EXPECT_EQ(wersa::cpu::vexp_one(-1e30f), 0.f);
}

TEST(Vexp, ShiftedRowAndItsSumMatchDouble) {
  for (int64_t len : {1, 15, 16, 17, 1000, 8192}) {
    std::vector<float> x(len), out(len);
    for (int64_t i = 0; i < len; ++i) x[i] = float(std::sin(0.37 * double(i)) * 30.0 - 10.0);
    const float shift = 3.5f;
    double ref = 0;
    for (int64_t i = 0; i < len; ++i) ref += std::exp(double(x[i]) - double(shift));
    const double s = wersa::cpu::vexp_shift_sum(len, x.data(), shift, out.data());
    const double s2 = wersa::cpu::vexp_shift_sum(len, x.data(), shift);
    EXPECT_NEAR(s, ref, 3e-7 * ref) << len;
    EXPECT_EQ(s, s2) << len;
    double back = 0;
    for (int64_t i = 0; i < len; ++i) {
      EXPECT_NEAR(out[i], std::exp(double(x[i] - shift)), 2.4e-7 * std::exp(double(x[i] - shift)));
      back += double(out[i]);
    }
    EXPECT_NEAR(back, s, 1e-12 * s);
  }
}

}  // namespace

namespace {

TEST(Vexp, SigmoidMatchesDoubleOnBothSidesAndSaturates) {
  double worst = 0;
  for (float x = -86.f; x <= 40.f; x += 0.000917f) {
    const double ref = 1.0 / (1.0 + std::exp(-double(x)));
    worst = std::max(worst, std::fabs(double(wersa::cpu::vsigmoid_one(x)) - ref) / ref);
  }
  EXPECT_LT(worst, 4.8e-7) << "4 ulp of float";
  EXPECT_EQ(wersa::cpu::vsigmoid_one(0.f), 0.5f);
  EXPECT_EQ(wersa::cpu::vsigmoid_one(100.f), 1.f);
  EXPECT_EQ(wersa::cpu::vsigmoid_one(-100.f), 0.f);
  EXPECT_EQ(wersa::cpu::vsigmoid_one(-1e30f), 0.f);
  EXPECT_TRUE(std::isnan(wersa::cpu::vsigmoid_one(std::nanf(""))));
}

}  // namespace

namespace {

// Phi(x) = erfc(-x / sqrt 2) / 2 and the density, against double libm.
TEST(Vexp, NormalCdfAndPdfMatchDoubleIncludingTheTails) {
  double worst_cdf = 0, worst_pdf = 0;
  int64_t n = 0;
  for (float x = -12.9f; x <= 12.9f; x += 0.000613f, ++n) {
    const double cdf = 0.5 * std::erfc(-double(x) / std::sqrt(2.0));
    const double pdf = std::exp(-0.5 * double(x) * double(x)) / std::sqrt(2.0 * M_PI);
    worst_cdf = std::max(worst_cdf, std::fabs(double(wersa::cpu::vnormal_cdf_one(x)) - cdf) / cdf);
    worst_pdf = std::max(worst_pdf, std::fabs(double(wersa::cpu::vnormal_pdf_one(x)) - pdf) / pdf);
  }
  EXPECT_GT(n, 40000);
  EXPECT_LT(worst_cdf, 6e-7) << "5 ulp of float";
  EXPECT_LT(worst_pdf, 6e-7);
  EXPECT_EQ(wersa::cpu::vnormal_cdf_one(-14.f), 0.f);
  EXPECT_EQ(wersa::cpu::vnormal_cdf_one(14.f), 1.f);
  EXPECT_EQ(wersa::cpu::vnormal_pdf_one(20.f), 0.f);
  EXPECT_EQ(wersa::cpu::vnormal_pdf_one(-std::numeric_limits<float>::infinity()), 0.f);
  EXPECT_TRUE(std::isnan(wersa::cpu::vnormal_cdf_one(std::nanf(""))));
  EXPECT_TRUE(std::isnan(wersa::cpu::vnormal_pdf_one(std::nanf(""))));
}

}  // namespace

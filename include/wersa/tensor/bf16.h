// bfloat16: the upper 16 bits of an IEEE float (8 exponent bits, 7 mantissa bits). The engine
// stores inference weights in it (Model's bf16 copy, wersa-generate --weights bf16) and always
// computes in fp32: a bf16 value widens to the float whose upper half it is, exactly.
// Rounding from float is to nearest, ties to even; a NaN stays a (quiet) NaN and infinities stay
// infinite; finite floats beyond the largest bf16 (about 3.39e38) round to infinity, as IEEE
// rounding does.
#pragma once
#include <cstdint>
#include <cstring>

namespace wersa {

struct bf16 {
  uint16_t bits = 0;
};

inline float bf16_to_float(bf16 h) {
  const uint32_t u = uint32_t(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline bf16 float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x0040u)};  // NaN: quiet
  u += 0x7fffu + ((u >> 16) & 1u);  // to nearest, ties to the even upper half
  return bf16{uint16_t(u >> 16)};
}

}  // namespace wersa

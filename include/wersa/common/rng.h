// Counter-based random numbers: value = f(seed, stream, index), no hidden state, so a tensor's
// initial values depend only on (seed, its stream id, element index) and are the same whatever
// the thread count or the backend that draws them.
#pragma once
#include <cmath>
#include <cstdint>

namespace wersa {

// splitmix64 finaliser: a bijective 64-bit mixer with good avalanche.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline uint64_t rng_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  return mix64(mix64(mix64(seed) ^ stream) ^ index);
}

// Uniform in (0, 1), 53 bits, never 0 or 1.
inline double rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return ((rng_bits(seed, stream, index) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// Standard normal via Box-Muller on two independent counters.
inline double rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  const double u1 = rng_uniform(seed, stream, 2 * index);
  const double u2 = rng_uniform(seed, stream, 2 * index + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

// Stable 64-bit hash of a string (FNV-1a), used to derive stream ids from parameter names.
inline uint64_t hash_name(const char* s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ull;
  return h;
}

// Sequential generator for sampling / data order, whose whole state is (seed, counter): it can
// be saved in a checkpoint and restored exactly.
struct Rng {
  uint64_t seed = 0, stream = 0, counter = 0;
  uint64_t next_u64() { return rng_bits(seed, stream, counter++); }
  double uniform() { return rng_uniform(seed, stream, counter++); }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next_u64() % n; }
};

}  // namespace wersa

// CPU cache sizes as the system reports them (sysconf, then sysfs, then a fallback), and the
// size from which a decode-step GEMV is split over the CPU threads (backend.h).
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>

#include "wersa/backend/backend.h"

namespace wersa {
namespace {

// sysfs's size of cpu0's cache of `level` (data or unified), e.g. "512K"; 0 when absent.
size_t sysfs_cache_bytes(int level) {
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream lv(dir + "level"), ty(dir + "type"), sz(dir + "size");
    int l = 0;
    std::string type, size;
    if (!(lv >> l) || !(ty >> type) || !(sz >> size)) continue;
    if (l != level || type == "Instruction") continue;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(size.c_str(), &end, 10);
    const std::string unit(end);
    if (unit == "K") return size_t(v) << 10;
    if (unit == "M") return size_t(v) << 20;
    if (unit.empty()) return size_t(v);
  }
  return 0;
}

size_t sysconf_cache_bytes(int level) {
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
  const long v = sysconf(level == 1 ? _SC_LEVEL1_DCACHE_SIZE : _SC_LEVEL2_CACHE_SIZE);
  return v > 0 ? size_t(v) : 0;
#else
  (void)level;
  return 0;
#endif
}

int64_t default_split_bytes() {
  if (const char* e = std::getenv("WERSA_GEMV_SPLIT_BYTES"); e != nullptr && *e != '\0') {
    char* end = nullptr;
    const long long v = std::strtoll(e, &end, 10);
    if (*end == '\0' && v >= 0) return v;  // a bad value: the cache-based default
  }
  return int64_t(cpu_cache_bytes(2));
}

std::atomic<int64_t> g_split{-1};  // -1: not chosen yet

}  // namespace

size_t cpu_cache_bytes(int level) {
  if (level != 1 && level != 2) return 0;
  size_t v = sysconf_cache_bytes(level);
  if (v == 0) v = sysfs_cache_bytes(level);
  if (v == 0) v = level == 1 ? kFallbackL1Bytes : kFallbackL2Bytes;
  return v;
}

int64_t gemv_split_bytes() {
  int64_t v = g_split.load(std::memory_order_relaxed);
  if (v < 0) {
    v = default_split_bytes();
    g_split.store(v, std::memory_order_relaxed);
  }
  return v;
}

void set_gemv_split_bytes(int64_t bytes) { g_split.store(bytes < 0 ? default_split_bytes() : bytes); }

}  // namespace wersa

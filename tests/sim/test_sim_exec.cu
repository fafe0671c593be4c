// The CUDA simulator's own tests (WERSA_CUDA=SIM builds): what it runs right (barriers, shared
// memory, warp collectives, atomics across blocks, launch limits) and what it reports (a missing
// barrier under the rev and rand schedules, barriers in divergent code, a warp mask without the
// calling lane, deadlock). The out-of-bounds store caught by AddressSanitizer is a death test that
// runs in sanitizer builds only.
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "../../src/kernels/cuda/launch.cuh"

namespace {

using wersa::sim::Schedule;

template <class T>
struct DevBuf {
  T* p = nullptr;
  size_t n;
  explicit DevBuf(size_t count) : n(count) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p), n * sizeof(T)), cudaSuccess);
  }
  ~DevBuf() { cudaFree(p); }
  void put(const std::vector<T>& h) {
    ASSERT_EQ(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<T> get() const {
    std::vector<T> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
};

struct ScheduleGuard {
  explicit ScheduleGuard(Schedule s, uint64_t seed = 1) : old(wersa::sim::schedule()) {
    wersa::sim::set_schedule(s, seed);
  }
  ~ScheduleGuard() { wersa::sim::set_schedule(old); }
  Schedule old;
};

// Sum of x: per-thread grid-stride sums, warp shuffles, one shared slot per warp, a second warp
// reduction, then one atomicAdd per block.
__global__ void block_sum(const float* x, float* out, int n) {
  __shared__ float warp_sums[32];
  float v = 0;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) v += x[i];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x / 32) ? warp_sums[lane] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) atomicAdd(out, v);
  }
}

TEST(SimExec, BlockReductionWithSharedMemoryShufflesAndAtomics) {
  for (Schedule s : {Schedule::Seq, Schedule::Rev, Schedule::Rand}) {
    ScheduleGuard g(s, 3);
    const int n = 50021;
    std::vector<float> h(n);
    double ref = 0;
    for (int i = 0; i < n; ++i) ref += h[i] = float(i % 13) - 6.0f;
    DevBuf<float> x(n), out(1);
    x.put(h);
    out.put({0.0f});
    WERSA_LAUNCH(block_sum, dim3(37), dim3(256), 0, nullptr, x.p, out.p, n);
    EXPECT_EQ(out.get()[0], float(ref)) << wersa::sim::schedule_name(s);  // integers: exact in any order
  }
}

__global__ void count_blocks(int* counter, unsigned* maxid) {
  atomicAdd(counter, 1);
  atomicMax(maxid, blockIdx.x * blockDim.x + threadIdx.x);
}

TEST(SimExec, AtomicsAreAtomicAcrossBlocks) {
  DevBuf<int> c(1);
  DevBuf<unsigned> m(1);
  c.put({0});
  m.put({0u});
  WERSA_LAUNCH(count_blocks, dim3(512), dim3(64), 0, nullptr, c.p, m.p);
  EXPECT_EQ(c.get()[0], 512 * 64);
  EXPECT_EQ(m.get()[0], 512u * 64u - 1u);
}

// Every shuffle mode with a sub-warp width, the votes and __syncthreads_count / _and / _or.
__global__ void collectives(int* out) {
  const int t = threadIdx.x, lane = t % 32;
  int* o = out + t * 8;
  o[0] = __shfl_sync(0xffffffffu, t * 10, 3, 8);  // lane 3 of each group of 8
  o[1] = __shfl_up_sync(0xffffffffu, t, 2, 16);
  o[2] = __shfl_down_sync(0xffffffffu, t, 5, 32);
  o[3] = __shfl_xor_sync(0xffffffffu, t, 1);
  o[4] = int(__ballot_sync(0xffffffffu, lane % 3 == 0));
  o[5] = __any_sync(0xffffffffu, t == 40) * 10 + __all_sync(0xffffffffu, lane < 32);
  o[6] = __syncthreads_count(t % 5 == 0);
  o[7] = __syncthreads_and(t < 1000) * 10 + __syncthreads_or(t == 63);
}

TEST(SimExec, ShufflesVotesAndBarrierReductionsFollowCudaSemantics) {
  const int n = 64;
  DevBuf<int> out(n * 8);
  WERSA_LAUNCH(collectives, dim3(1), dim3(n), 0, nullptr, out.p);
  const std::vector<int> o = out.get();
  unsigned ballot = 0;
  for (int l = 0; l < 32; ++l) ballot |= unsigned(l % 3 == 0) << l;
  for (int t = 0; t < n; ++t) {
    const int lane = t % 32, warp0 = t - lane;
    EXPECT_EQ(o[t * 8 + 0], (warp0 + (lane & ~7) + 3) * 10) << t;
    EXPECT_EQ(o[t * 8 + 1], (lane % 16) >= 2 ? t - 2 : t) << t;
    EXPECT_EQ(o[t * 8 + 2], lane + 5 < 32 ? t + 5 : t) << t;
    EXPECT_EQ(o[t * 8 + 3], t ^ 1) << t;
    EXPECT_EQ(unsigned(o[t * 8 + 4]), ballot) << t;
    EXPECT_EQ(o[t * 8 + 5], (t >= 32 ? 10 : 0) + 1) << t;
    EXPECT_EQ(o[t * 8 + 6], 13) << t;  // 0, 5, ..., 60
    EXPECT_EQ(o[t * 8 + 7], 11) << t;
  }
}

// Each thread reads its right neighbour's shared slot without a barrier between the write and the
// read: a race that the order of the threads decides.
__global__ void missing_barrier(const float* x, float* out) {
  __shared__ float s[128];
  s[threadIdx.x] = x[blockIdx.x * 128 + threadIdx.x];
  // __syncthreads() belongs here
  out[blockIdx.x * 128 + threadIdx.x] = s[(threadIdx.x + 1) % 128];
}
__global__ void with_barrier(const float* x, float* out) {
  __shared__ float s[128];
  s[threadIdx.x] = x[blockIdx.x * 128 + threadIdx.x];
  __syncthreads();
  out[blockIdx.x * 128 + threadIdx.x] = s[(threadIdx.x + 1) % 128];
}

int wrong_outputs(void (*k)(const float*, float*), uint64_t data_seed) {
  const int blocks = 4, n = blocks * 128;
  std::vector<float> h(n);
  for (int i = 0; i < n; ++i) h[i] = float((i * 7919 + data_seed * 104729) % 100003);
  DevBuf<float> x(n), out(n);
  x.put(h);
  wersa::cuda::launch("k", k, dim3(blocks), dim3(128), 0, nullptr, static_cast<const float*>(x.p), out.p);
  const std::vector<float> o = out.get();
  int bad = 0;
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < 128; ++t) bad += o[b * 128 + t] != h[b * 128 + (t + 1) % 128];
  return bad;
}

TEST(SimExec, MissingBarrierGivesWrongResultsUnderRevAndRand) {
  uint64_t data = 1;  // new data for every launch: stale shared memory of an earlier one cannot help
  for (Schedule s : {Schedule::Seq, Schedule::Rev, Schedule::Rand}) {
    ScheduleGuard g(s, 11);
    EXPECT_EQ(wrong_outputs(&with_barrier, data++), 0) << wersa::sim::schedule_name(s);
  }
  {
    ScheduleGuard g(
        Schedule::Rev);  // threads run last to first: thread t reads before t+1 writes only at t=127
    EXPECT_GT(wrong_outputs(&missing_barrier, data++), 0);
  }
  {
    ScheduleGuard g(Schedule::Rand, 5);
    EXPECT_GT(wrong_outputs(&missing_barrier, data++), 100);  // about half of 512
  }
  {
    ScheduleGuard g(Schedule::Seq);
    EXPECT_GT(wrong_outputs(&missing_barrier, data++), 100);  // thread t reads before t+1 writes
  }
}

__global__ void divergent_barriers(float* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
    out[threadIdx.x] = 1;
  } else {
    out[threadIdx.x] = 2;
    __syncthreads();
  }
}
__global__ void barrier_after_exit(float* out) {
  if (threadIdx.x >= 40) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}
__global__ void lane_outside_mask(int* out) {
  out[threadIdx.x] = __shfl_sync(0x0000ffffu, int(threadIdx.x), 0);
}
__global__ void warp_deadlock(int* out) {
  if (threadIdx.x % 32 < 16) __syncwarp();  // waits for lanes 16-31, which wait at the block barrier
  __syncthreads();
  out[threadIdx.x] = 1;
}

std::string launch_error(void (*k)(float*), dim3 block) {
  DevBuf<float> out(2048);
  try {
    wersa::cuda::launch("k", k, dim3(2), block, 0, nullptr, out.p);
  } catch (const wersa::Error& e) {
    return e.what();
  }
  return "";
}
std::string launch_error(void (*k)(int*), dim3 block) {
  DevBuf<int> out(2048);
  try {
    wersa::cuda::launch("k", k, dim3(2), block, 0, nullptr, out.p);
  } catch (const wersa::Error& e) {
    return e.what();
  }
  return "";
}

TEST(SimExec, ReportsBarriersInDivergentCode) {
  const std::string a = launch_error(&divergent_barriers, dim3(64));
  EXPECT_NE(a.find("different barriers"), std::string::npos) << a;
  EXPECT_NE(a.find("block (0,0,0)"), std::string::npos) << a;
  const std::string b = launch_error(&barrier_after_exit, dim3(64));
  EXPECT_NE(b.find("reached by 40 of 64 threads"), std::string::npos) << b;
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // the error was taken by the launch check
}

TEST(SimExec, ReportsAWarpMaskWithoutTheCallingLaneAndDeadlock) {
  const std::string a = launch_error(&lane_outside_mask, dim3(32));
  const std::string lane = "leaves out the calling lane ";  // lanes 16-31: the first one the schedule ran
  const size_t at = a.find(lane);
  ASSERT_NE(at, std::string::npos) << a;
  const int l = std::stoi(a.substr(at + lane.size()));
  EXPECT_TRUE(l >= 16 && l < 32) << a;
  const std::string b = launch_error(&warp_deadlock, dim3(64));
  EXPECT_NE(b.find("deadlock"), std::string::npos) << b;
}

__global__ void big_smem(float* out) {
  WERSA_DYNAMIC_SHARED(float, s);
  s[threadIdx.x] = float(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = s[blockDim.x - 1 - threadIdx.x];
}

TEST(SimExec, RefusesWhatAGpuRefuses) {
  DevBuf<float> out(1024);
  EXPECT_THROW(WERSA_LAUNCH(big_smem, dim3(1), dim3(1025), 4096, nullptr, out.p), wersa::Error);
  EXPECT_THROW(WERSA_LAUNCH(big_smem, dim3(1), dim3(8, 8, 65), 4096, nullptr, out.p), wersa::Error);
  EXPECT_THROW(WERSA_LAUNCH(big_smem, dim3(0), dim3(32), 4096, nullptr, out.p), wersa::Error);
  // Dynamic shared memory beyond 48 KiB needs the kernel's opt-in, up to 227 KiB.
  EXPECT_THROW(WERSA_LAUNCH(big_smem, dim3(1), dim3(256), 64 << 10, nullptr, out.p), wersa::Error);
  ASSERT_EQ(cudaFuncSetAttribute(reinterpret_cast<const void*>(&big_smem),
                                 cudaFuncAttributeMaxDynamicSharedMemorySize, 64 << 10),
            cudaSuccess);
  WERSA_LAUNCH(big_smem, dim3(1), dim3(256), 64 << 10, nullptr, out.p);
  const std::vector<float> o = out.get();
  for (int t = 0; t < 256; ++t) EXPECT_EQ(o[t], float(255 - t));
  EXPECT_NE(cudaFuncSetAttribute(reinterpret_cast<const void*>(&big_smem),
                                 cudaFuncAttributeMaxDynamicSharedMemorySize, 228 << 10),
            cudaSuccess);
  cudaGetLastError();
}

TEST(SimExec, CopiesCheckWhichSideIsDevice) {
  DevBuf<float> d(16);
  std::vector<float> h(16, 1.0f), h2(16);
  EXPECT_EQ(cudaMemcpy(d.p, h.data(), 64, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_NE(cudaMemcpy(h2.data(), h.data(), 64, cudaMemcpyDeviceToHost), cudaSuccess);  // host as device
  EXPECT_NE(cudaMemcpy(d.p, h.data(), 68, cudaMemcpyHostToDevice), cudaSuccess);        // past the block
  cudaGetLastError();
  EXPECT_NE(cudaFree(h.data()), cudaSuccess);
}

[[maybe_unused]] __global__ void store_one_past(float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = 1.0f;  // off by one: i == n is outside
}

#if defined(__SANITIZE_ADDRESS__)
#define WERSA_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WERSA_TEST_ASAN 1
#endif
#endif

TEST(SimExec, OutOfBoundsStoreIsCaughtByAddressSanitizer) {
#ifndef WERSA_TEST_ASAN
  GTEST_SKIP() << "needs an AddressSanitizer build (scripts/sanitize.sh)";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        DevBuf<float> out(100);
        WERSA_LAUNCH(store_one_past, dim3(2), dim3(64), 0, nullptr, out.p, 100);
      },
      "heap-buffer-overflow(.|\n)*kernel store_one_past, block \\(1,0,0\\), thread \\(36,0,0\\)");
#endif
}

}  // namespace

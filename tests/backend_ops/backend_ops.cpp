#include "backend_ops.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <set>

#include "../../src/kernels/cuda/kernels.h"
#include "wersa/backend/backend.h"
#include "wersa/common/rng.h"

#if defined(WERSA_CUDA_SIM)
namespace wersa::sim {
enum class Schedule { Seq, Rev, Rand };
Schedule schedule();
const char* schedule_name(Schedule s);
}  // namespace wersa::sim
#endif

namespace wersa::test {

const Tensor& Bound::operator[](const std::string& name) const {
  auto it = t.find(name);
  WERSA_ASSERT(it != t.end(), "a case asks for tensor '", name, "', which it did not declare");
  return it->second;
}

OpCase& OpCase::in(const std::string& n, Shape s, DType dt, Fill f, double a, double b) {
  tensors.push_back(TensorSpec{n, dt, s, Role::In, f, a, b, false});
  return *this;
}
OpCase& OpCase::ids(const std::string& n, Shape s, int64_t lo, int64_t hi) {
  return in(n, s, DType::I32, Fill::Ids, double(lo), double(hi));
}
OpCase& OpCase::out(const std::string& n, Shape s, DType dt, bool compare) {
  tensors.push_back(TensorSpec{n, dt, s, Role::Out, Fill::Zero, 0, 1, compare});
  return *this;
}
OpCase& OpCase::acc(const std::string& n, Shape s, DType dt) {
  tensors.push_back(TensorSpec{n, dt, s, Role::Acc, Fill::Normal, 0, 1, true});
  return *this;
}

std::vector<OpCase> all_cases() {
  std::vector<OpCase> v;
  add_elementwise_cases(v);
  add_mask_cases(v);
  add_pool_cases(v);
  add_rope_cases(v);
  add_adamw_cases(v);
  add_rmsnorm_cases(v);
  add_layernorm_cases(v);
  add_activation_cases(v);
  add_swiglu_cases(v);
  add_matmul_cases(v);
  add_embedding_cases(v);
  add_cross_entropy_cases(v);
  add_conv_cases(v);
  add_gate_cases(v);
  add_feature_map_cases(v);
  add_haar_cases(v);
  add_linear_attention_cases(v);
  add_softmax_attention_cases(v);
  return v;
}

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif
constexpr int64_t kSanitizedMaxElems = int64_t(1) << 17;

constexpr int64_t kGuard = 256;  // bytes of guard band on each side of every tensor
constexpr unsigned char kGuardByte = 0xA5;

// A tensor with guard bands, on one device.
struct Slot {
  Device dev = Device::CPU;
  void* base = nullptr;
  size_t bytes = 0;
  Tensor t;
  Slot(Device d, const TensorSpec& s) : dev(d) {
    bytes = size_t(s.shape.numel()) * dtype_size(s.dtype);
    base = device_alloc(d, bytes + 2 * kGuard);
    std::vector<unsigned char> guard(bytes + 2 * kGuard, kGuardByte);
    device_copy(d, base, Device::CPU, guard.data(), guard.size());
    t = Tensor(static_cast<char*>(base) + kGuard, s.dtype, d, s.shape, s.name);
  }
  ~Slot() { device_free(dev, base); }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  std::vector<unsigned char> read_all() const {
    std::vector<unsigned char> h(bytes + 2 * kGuard);
    device_copy(Device::CPU, h.data(), dev, base, h.size());
    return h;
  }
  void write(const std::vector<unsigned char>& data) {
    device_copy(dev, t.data, Device::CPU, data.data(), bytes);
  }
};

// The host bytes of a tensor's initial contents: random (inputs, accumulated outputs) or poison
// (outputs: NaN for floats, all ones for integers).
std::vector<unsigned char> initial(const TensorSpec& s, uint64_t seed) {
  const int64_t n = s.shape.numel();
  std::vector<unsigned char> h(size_t(n) * dtype_size(s.dtype));
  Rng rng{seed, 0, 0};
  auto normal = [&] { return rng_normal(seed, 1, uint64_t(rng.counter++)); };
  auto value = [&](int64_t i) -> double {
    switch (s.fill) {
      case Fill::Normal:
        return s.a + s.b * normal();
      case Fill::Uniform:
        return s.a + (s.b - s.a) * rng.uniform();
      case Fill::Ids:
        return std::floor(s.a + (s.b - s.a) * rng.uniform());
      case Fill::Zero:
        return 0;
      case Fill::Special: {  // mostly normal values, with NaN and infinities among them
        const double u = rng.uniform();
        if (i % 7 == 3 || u < 0.02) return std::nan("");
        if (u < 0.04) return INFINITY;
        if (u < 0.06) return -INFINITY;
        return s.a + s.b * normal();
      }
    }
    return 0;
  };
  for (int64_t i = 0; i < n; ++i) {
    const bool poison = s.role == Role::Out;
    const double v = poison ? std::nan("") : value(i);
    switch (s.dtype) {
      case DType::F32:
        reinterpret_cast<float*>(h.data())[i] = float(v);
        break;
      case DType::F64:
        reinterpret_cast<double*>(h.data())[i] = v;
        break;
      case DType::BF16:
        reinterpret_cast<bf16*>(h.data())[i] = float_to_bf16(float(v));
        break;
      case DType::I32:
        reinterpret_cast<int32_t*>(h.data())[i] = poison ? -1 : int32_t(v);
        break;
      case DType::U32:
        reinterpret_cast<uint32_t*>(h.data())[i] = poison ? ~0u : uint32_t(v);
        break;
      case DType::U16:
        reinterpret_cast<uint16_t*>(h.data())[i] = poison ? 0xffff : uint16_t(v);
        break;
    }
  }
  return h;
}

double element(const std::vector<unsigned char>& h, DType dt, int64_t i) {
  switch (dt) {
    case DType::F32:
      return reinterpret_cast<const float*>(h.data())[i];
    case DType::F64:
      return reinterpret_cast<const double*>(h.data())[i];
    case DType::BF16:
      return bf16_to_float(reinterpret_cast<const bf16*>(h.data())[i]);
    case DType::I32:
      return reinterpret_cast<const int32_t*>(h.data())[i];
    case DType::U32:
      return reinterpret_cast<const uint32_t*>(h.data())[i];
    case DType::U16:
      return reinterpret_cast<const uint16_t*>(h.data())[i];
  }
  return 0;
}

struct Run {
  std::vector<std::unique_ptr<Slot>> slots;
  Bound bound;
};

// Makes the case's tensors on `dev`, runs the op, and returns every tensor's bytes with guards.
std::vector<std::vector<unsigned char>> run_on(Device dev, const OpCase& c, uint64_t seed,
                                               std::string& error) {
  Ctx ctx(dev, ScratchPolicy::Grow);
  Run r;
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const TensorSpec& s = c.tensors[i];
    r.slots.push_back(std::make_unique<Slot>(dev, s));
    r.slots.back()->write(initial(s, seed * 1000 + i));
    r.bound.t[s.name] = r.slots.back()->t;
  }
  try {
    c.run(ctx, r.bound);
    ctx.sync();
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::vector<std::vector<unsigned char>> out;
  for (auto& s : r.slots) out.push_back(s->read_all());
  return out;
}

std::string safe_name(const std::string& s) {
  std::string o;
  for (char ch : s) o += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
  return o;
}

class BackendOps : public ::testing::TestWithParam<OpCase> {};

TEST_P(BackendOps, CudaMatchesCpu) {
  const OpCase& c = GetParam();
  if (!cuda_available()) {
    GTEST_SKIP() << "no CUDA device in this process (a GPU build without a GPU)";
  }
  const auto& pending = cuda::pending_ops();
  if (std::find(pending.begin(), pending.end(), c.op) != pending.end()) {
    GTEST_SKIP() << c.op << ": pending (no CUDA kernel yet)";
  }
  if (kSanitized) {  // small shapes only under the sanitizers: the large ones run in the plain build
    int64_t elems = 0;
    for (const TensorSpec& t : c.tensors) elems += t.shape.numel();
    if (elems > kSanitizedMaxElems) {
      GTEST_SKIP() << c.name << ": " << elems << " elements, more than a sanitizer build runs";
    }
  }
  const uint64_t seed = std::hash<std::string>()(c.name) % 100000 + 1;
  std::string cpu_error, cuda_error, again_error;
  const auto cpu = run_on(Device::CPU, c, seed, cpu_error);
  ASSERT_EQ(cpu_error, "") << "the CPU kernel failed on this case";
  const auto gpu = run_on(Device::CUDA, c, seed, cuda_error);
  ASSERT_EQ(cuda_error, "") << "the CUDA kernel failed";
  const auto again = run_on(Device::CUDA, c, seed, again_error);
  ASSERT_EQ(again_error, "");
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const TensorSpec& s = c.tensors[i];
    const size_t bytes = size_t(s.shape.numel()) * dtype_size(s.dtype);
    // Guard bands: nothing was written outside the tensor (inputs included).
    for (size_t k = 0; k < size_t(kGuard); ++k) {
      ASSERT_EQ(gpu[i][k], kGuardByte)
          << s.name << ": CUDA wrote " << (kGuard - k) << " bytes before the tensor";
      ASSERT_EQ(gpu[i][kGuard + bytes + k], kGuardByte) << s.name << ": CUDA wrote past the end, byte " << k;
    }
    // Bitwise reproducible.
    EXPECT_EQ(std::memcmp(gpu[i].data(), again[i].data(), gpu[i].size()), 0)
        << s.name << ": two CUDA runs of the same case differ";
    if (s.role == Role::In) {
      EXPECT_TRUE(bytes == 0 ||
                  std::memcmp(gpu[i].data() + kGuard, initial(s, seed * 1000 + i).data(), bytes) == 0)
          << s.name << ": an input was modified";
      continue;
    }
    if (!s.compare) continue;
    std::vector<unsigned char> a(gpu[i].begin() + kGuard, gpu[i].begin() + kGuard + bytes);
    std::vector<unsigned char> b(cpu[i].begin() + kGuard, cpu[i].begin() + kGuard + bytes);
    double num = 0, den = 0;
    int64_t mismatched_special = 0, first_bad = -1;
    for (int64_t k = 0; k < s.shape.numel(); ++k) {
      const double x = element(a, s.dtype, k), y = element(b, s.dtype, k);
      if (!std::isfinite(y) || !std::isfinite(x)) {
        const bool same = (std::isnan(x) && std::isnan(y)) || x == y;
        if (!same && first_bad < 0) first_bad = k;
        mismatched_special += !same;
        continue;
      }
      num += (x - y) * (x - y);
      den += y * y;
    }
    EXPECT_EQ(mismatched_special, 0) << s.name
                                     << ": NaN/Inf where the CPU has none, or the reverse; first at "
                                     << first_bad << ": cuda " << element(a, s.dtype, first_bad) << ", cpu "
                                     << element(b, s.dtype, first_bad);
    const double err = den > 0 ? num / den : num;
    EXPECT_LE(err, c.max_err) << s.name << ": normalised error " << err << " (threshold " << c.max_err << ")";
    if (s.dtype == DType::I32 || s.dtype == DType::U32 || s.dtype == DType::U16) {
      EXPECT_EQ(a, b) << s.name;
    }
  }
}

std::vector<OpCase> cases() {
  static const std::vector<OpCase> v = all_cases();
  return v;
}

INSTANTIATE_TEST_SUITE_P(Ops, BackendOps, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<OpCase>& i) { return safe_name(i.param.name); });

// Every op of ops.inc has a case, or is still pending (and then reported by name as skipped).
class Coverage : public ::testing::TestWithParam<std::string> {};

TEST_P(Coverage, OpHasACaseOrIsPending) {
  const std::string op = GetParam();
  const auto& pending = cuda::pending_ops();
  const bool is_pending = std::find(pending.begin(), pending.end(), op) != pending.end();
  int n = 0;
  for (const OpCase& c : cases()) n += c.op == op;
  if (is_pending) {
    EXPECT_EQ(n, 0) << op << " is pending but has cases (delete its line from pending.cpp with the kernel)";
    GTEST_SKIP() << op << ": pending, no CUDA kernel yet";
  }
  EXPECT_GT(n, 0) << op << " has a CUDA kernel but no case in test_backend_ops";
}

std::vector<std::string> op_names() {
  return {
#define WERSA_OP(NAME, ARGS, CPU_SCRATCH, CUDA_SCRATCH) #NAME,
#include "../../src/kernels/ops.inc"
#undef WERSA_OP
  };
}

INSTANTIATE_TEST_SUITE_P(Ops, Coverage, ::testing::ValuesIn(op_names()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

TEST(BackendOpsRun, Schedule) {
#if defined(WERSA_CUDA_SIM)
  std::printf("CUDA simulator, schedule %s\n", sim::schedule_name(sim::schedule()));
#else
  std::printf("CUDA on a GPU (%s)\n", cuda_available() ? "present" : "absent");
#endif
}

TEST(BackendOpsRun, CaseNamesAreUnique) {
  std::set<std::string> names;
  for (const OpCase& c : cases()) EXPECT_TRUE(names.insert(safe_name(c.name)).second) << c.name;
}

}  // namespace
}  // namespace wersa::test

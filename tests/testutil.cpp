#include "testutil.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "wersa/ops/elementwise.h"

namespace wersa::test {

Ctx& ctx() {
  static Ctx c(Device::CPU, ScratchPolicy::Grow);
  return c;
}

double sum_squares(const Tensor& x) {
  Buf out(DType::F64, {1});
  wersa::sum_squares(ctx(), {out, x});
  return out.get(0);
}

Buf::Buf(DType dt, Shape s, std::string_view name) : name_(std::make_unique<std::string>(name)) {
  const size_t bytes = size_t(s.numel()) * dtype_size(dt);
  storage.assign((bytes + 7) / 8 + 1, 0.0);
  t = Tensor(storage.data(), dt, Device::CPU, s, *name_);
}

double Buf::get(int64_t i) const {
  switch (t.dtype) {
    case DType::F32:
      return t.ptr<float>()[i];
    case DType::F64:
      return t.ptr<double>()[i];
    case DType::I32:
      return t.ptr<int32_t>()[i];
    case DType::U16:
      return t.ptr<uint16_t>()[i];
    case DType::U32:
      return t.ptr<uint32_t>()[i];
  }
  return 0;
}

void Buf::set(int64_t i, double v) {
  switch (t.dtype) {
    case DType::F32:
      t.ptr<float>()[i] = float(v);
      break;
    case DType::F64:
      t.ptr<double>()[i] = v;
      break;
    case DType::I32:
      t.ptr<int32_t>()[i] = int32_t(v);
      break;
    // Unsigned dtypes wrap (via int64: a negative double converted straight to an unsigned type
    // is undefined behaviour, which UBSan reports).
    case DType::U16:
      t.ptr<uint16_t>()[i] = uint16_t(int64_t(v));
      break;
    case DType::U32:
      t.ptr<uint32_t>()[i] = uint32_t(int64_t(v));
      break;
  }
}

void Buf::zero() { std::fill(storage.begin(), storage.end(), 0.0); }

void Buf::randn(uint64_t seed, double scale, double shift) {
  for (int64_t i = 0; i < n(); ++i) set(i, shift + scale * rng_normal(seed, 77, uint64_t(i)));
}

void Buf::uniform(uint64_t seed, double lo, double hi) {
  for (int64_t i = 0; i < n(); ++i) set(i, lo + (hi - lo) * rng_uniform(seed, 78, uint64_t(i)));
}

void Buf::copy_from(const Buf& o) {
  EXPECT_EQ(n(), o.n());
  for (int64_t i = 0; i < n(); ++i) set(i, o.get(i));
}

void expect_grad_matches(const std::function<double()>& loss, const std::function<void()>& backward,
                         const std::vector<GradInput>& inputs, double h, double tol, int max_checks) {
  for (const GradInput& in : inputs) in.grad->zero();
  backward();
  for (const GradInput& in : inputs) {
    ASSERT_EQ(in.x->t.dtype, DType::F64) << in.name << ": gradient checks run in double";
    const int64_t n = in.x->n();
    const int64_t stride = std::max<int64_t>(1, n / max_checks);
    double worst = 0;
    int64_t worst_i = -1;
    double nonzero = 0;
    for (int64_t i = 0; i < n; i += stride) {
      const double x0 = in.x->get(i);
      in.x->set(i, x0 + h);
      const double lp = loss();
      in.x->set(i, x0 - h);
      const double lm = loss();
      in.x->set(i, x0);
      const double numeric = (lp - lm) / (2 * h);
      const double analytic = in.grad->get(i);
      nonzero += std::fabs(numeric);
      const double err = std::fabs(analytic - numeric) / std::max(1.0, std::fabs(numeric));
      if (err > worst) worst = err, worst_i = i;
      EXPECT_LE(err, tol) << in.name << "[" << i << "]: analytic " << analytic << " numeric " << numeric;
    }
    // A check whose numeric gradient is identically zero proves nothing.
    EXPECT_GT(nonzero, 0.0) << in.name << ": all finite differences are zero";
    (void)worst_i;
  }
}

double dot(const Buf& a, const Buf& b) {
  double s = 0;
  for (int64_t i = 0; i < a.n(); ++i) s += a.get(i) * b.get(i);
  return s;
}

double rel_err(const Buf& a, const Buf& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.n(); ++i) {
    num = std::max(num, std::fabs(a.get(i) - b.get(i)));
    den = std::max(den, std::fabs(b.get(i)));
  }
  return num / std::max(den, 1e-12);
}

TempDir::TempDir(const std::string& tag) {
  std::string t = (std::filesystem::temp_directory_path() / ("wersa_" + tag + "_XXXXXX")).string();
  const char* p = ::mkdtemp(t.data());
  EXPECT_NE(p, nullptr) << "mkdtemp failed";
  path = t;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ofstream f(path, std::ios::binary);
  f << bytes;
  EXPECT_TRUE(f.good()) << "cannot write " << path;
}

ToolRun run_tool(const std::string& args, const std::string& stdin_text) {
  static int counter = 0;
  static const TempDir dir("tool_io");
  const std::string id = std::to_string(counter++);
  const std::string o = dir / ("out" + id), e = dir / ("err" + id), in = dir / ("in" + id);
  write_file(in, stdin_text);
  // `exec`: the shell becomes the tool, so a tool killed by a signal is reported as such, not
  // as the shell's exit status 128 + signal.
  const std::string cmd =
      "exec " + std::string(WERSA_BIN_DIR) + "/" + args + " <" + in + " >" + o + " 2>" + e;
  ToolRun r;
  const int s = std::system(cmd.c_str());
  EXPECT_NE(s, -1) << "cannot run: " << cmd;
  if (WIFEXITED(s)) r.status = WEXITSTATUS(s);
  if (WIFSIGNALED(s)) r.signal = WTERMSIG(s);
  r.out = read_file(o);
  r.err = read_file(e);
  return r;
}

pid_t start_tool(const std::string& tool, const std::vector<std::string>& args, const std::string& out,
                 const std::string& err, const std::function<void()>& in_child) {
  const std::string bin = std::string(WERSA_BIN_DIR) + "/" + tool;
  std::vector<char*> argv{const_cast<char*>(bin.c_str())};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || o < 0 || e < 0) ::_exit(126);
    ::dup2(in, 0), ::dup2(o, 1), ::dup2(e, 2);
    if (in_child) in_child();
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  EXPECT_GT(pid, 0) << "fork failed";
  return pid;
}

ToolRun wait_tool(pid_t pid, const std::string& out, const std::string& err, size_t* max_rss) {
  int st = 0;
  struct rusage ru {};
  pid_t w;
  do w = ::wait4(pid, &st, 0, &ru);
  while (w < 0 && errno == EINTR);
  ToolRun r;
  EXPECT_EQ(w, pid) << "wait4 failed";
  if (WIFEXITED(st)) r.status = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) r.signal = WTERMSIG(st);
  EXPECT_NE(r.status, 127) << WERSA_BIN_DIR << ": cannot run the tool";
  if (max_rss) *max_rss = size_t(ru.ru_maxrss) * 1024;  // Linux: kilobytes
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

size_t resident_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return size_t(std::stoull(line.substr(6))) * 1024;
  return 0;
}

void expect_one_line_error(const ToolRun& r, const std::string& needle, int exit_status) {
  EXPECT_EQ(r.signal, 0) << "the tool was killed by signal " << r.signal << " (" << strsignal(r.signal)
                         << "); stderr: " << r.err;
  EXPECT_EQ(r.status, exit_status) << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(!r.err.empty() && r.err.back() == '\n') << "stderr does not end its line: " << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.err;
}

double max_rel(const Buf& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.n(); ++i) {
    num = std::max(num, std::fabs(a.get(i) - ref[size_t(i)]));
    den = std::max(den, std::fabs(ref[size_t(i)]));
  }
  return num / std::max(den, 1e-300);
}

std::string source_dir() { return WERSA_SOURCE_DIR; }

std::string shared_data(const std::string& file) {
  const std::string p = std::string(WERSA_SHARED_DIR) + "/data/" + file;
  std::ifstream f(p);
  return f.good() ? p : std::string();
}

std::string real_text(size_t bytes) {
  static std::string cache;
  if (cache.size() >= bytes) return cache.substr(0, bytes);
  std::string out;
  const std::string novels = shared_data("novels98.jsonl.xz");
  if (!novels.empty()) {
    // The first novel is long enough (hundreds of KB) for any test.
    std::unique_ptr<FILE, int (*)(FILE*)> p(popen(("xz -dc '" + novels + "' | head -n 1").c_str(), "r"),
                                            pclose);
    std::string line;
    char buf[1 << 16];
    size_t k;
    while (p && (k = fread(buf, 1, sizeof buf, p.get())) > 0) line.append(buf, k);
    if (!line.empty()) out = nlohmann::json::parse(line).at("text").get<std::string>();
  }
  if (out.empty()) {
    // Outside this team's machines: a real English text that Debian ships with every system.
    for (const char* f : {"/usr/share/common-licenses/GPL-3", "/usr/share/common-licenses/GPL-2"}) {
      std::ifstream in(f);
      std::stringstream ss;
      ss << in.rdbuf();
      out += ss.str();
    }
  }
  EXPECT_FALSE(out.empty()) << "no real text found";
  while (!out.empty() && out.size() < bytes) out += out;
  cache = out;
  return cache.substr(0, std::min(bytes, cache.size()));
}

std::string expect_error_contains(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg << "\nwanted: " << needle;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
    return msg;
  }
  ADD_FAILURE() << "no error; wanted one containing: " << needle;
  return {};
}

}  // namespace wersa::test

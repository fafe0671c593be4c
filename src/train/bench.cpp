// Training throughput cases, the sgemm limit and peak resident memory (see wersa/train/bench.h).
#include "wersa/train/bench.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "wersa/backend/backend.h"
#include "wersa/common/rng.h"
#include "wersa/common/timer.h"
#include "wersa/model/flops.h"
#include "wersa/model/model.h"
#include "wersa/ops/matmul.h"
#include "wersa/optim/optimizer.h"
#include "wersa/tensor/arena.h"
#include "wersa/tensor/bf16.h"
#include "wersa/train/experiment.h"

namespace wersa {

SgemmProbe::SgemmProbe(int64_t M, int64_t N, int64_t K, Device device, bool bf16)
    : M_(M),
      N_(N),
      K_(K),
      dev_(device),
      bf16_(bf16),
      x_(size_t(M * K)),
      w_(size_t(N * K)),
      y_(size_t(M * N)) {
  WERSA_ASSERT(M >= 1 && N >= 1 && K >= 1);
  for (size_t i = 0; i < x_.size(); ++i) x_[i] = float(rng_normal(1, 0, i));
  for (size_t i = 0; i < w_.size(); ++i) w_[i] = float(rng_normal(2, 0, i));
  if (bf16_) {
    w16_.resize(w_.size());
    for (size_t i = 0; i < w_.size(); ++i) w16_[i] = float_to_bf16(w_[i]).bits;
    std::vector<float>().swap(w_);
  }
  const void* w = bf16_ ? static_cast<const void*>(w16_.data()) : w_.data();
  const size_t wbytes = bf16_ ? w16_.size() * 2 : w_.size() * 4;
  if (dev_ == Device::CUDA) {
    dx_ = device_alloc(dev_, x_.size() * 4), dw_ = device_alloc(dev_, wbytes);
    dy_ = device_alloc(dev_, y_.size() * 4);
    device_copy(dev_, dx_, Device::CPU, x_.data(), x_.size() * 4);
    device_copy(dev_, dw_, Device::CPU, w, wbytes);
  }
  ctx_ = std::make_unique<Ctx>(dev_);
}

SgemmProbe::~SgemmProbe() {
  ctx_.reset();
  for (void* p : {dx_, dw_, dy_}) device_free(dev_, p);
}

double SgemmProbe::gflops(int reps) {
  WERSA_ASSERT(reps >= 1);
  const bool dev = dev_ == Device::CUDA;
  const Tensor tx(dev ? dx_ : x_.data(), DType::F32, dev_, Shape{M_, K_}, "sgemm.x");
  void* w = dev ? dw_ : bf16_ ? static_cast<void*>(w16_.data()) : w_.data();
  const Tensor tw(w, bf16_ ? DType::BF16 : DType::F32, dev_, Shape{N_, K_}, "sgemm.w");
  const Tensor ty(dev ? dy_ : y_.data(), DType::F32, dev_, Shape{M_, N_}, "sgemm.y");
  Ctx& ctx = *ctx_;
  const MatmulFwd args{ty, tx, tw, {}, false, bf16_};
  ctx.plan([&] { matmul_fwd(ctx, args); });
  double best = 0;
  for (int r = -1; r < reps; ++r) {
    const Timer t;
    matmul_fwd(ctx, args);
    device_sync(dev_);
    const double s = t.ms() / 1e3;
    if (r >= 0 && s > 0) best = std::max(best, 2.0 * double(M_) * double(N_) * double(K_) / s / 1e9);
  }
  return best;
}

double measure_sgemm_gflops(int64_t M, int64_t N, int64_t K, int reps, Device device, bool bf16) {
  return SgemmProbe(M, N, K, device, bf16).gflops(reps);
}

namespace {
// A "Key:   N kB" line of /proc/self/status in bytes (0 where it is missing).
size_t status_bytes(const std::string& key) {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key, 0) == 0) {
      std::istringstream in(line.substr(key.size()));
      size_t kb = 0;
      in >> kb;
      return kb * 1024;
    }
  return 0;
}
}  // namespace

size_t peak_rss_bytes() { return status_bytes("VmHWM:"); }
size_t rss_bytes() { return status_bytes("VmRSS:"); }

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return bool(f);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

TrainBenchRow bench_train_case(const std::string& name, const Config& cfg, const TrainBenchOptions& opt) {
  const TrainConfig& tc = cfg.train;
  TrainBenchRow r;
  r.model = name;
  r.attention = attention_kind_name(cfg.model.attention.type);
  r.T = tc.seq_len, r.batch = tc.batch_size, r.recompute = tc.recompute;
  r.precision = tc.precision;
  r.estimate = estimate_train_memory(cfg);
  r.forward_flops_per_token = model_flops(cfg.model, r.T).total();
  r.train_flops_per_token = train_flops(cfg.model, r.T, 1.0);
  if (opt.max_memory > 0 && r.estimate.total > opt.max_memory) {
    r.status = "oom";
    return r;
  }
  r.peak_rss_reset = reset_peak_rss();
  r.device = device_name(opt.device);
  const int64_t V = cfg.model.vocab_size, N = r.T * r.batch;
  ModelConfig mc = cfg.model;
  if (mc.task.classify() && mc.task.num_classes == 0) mc.task.num_classes = 2;
  const bool classify = mc.task.classify();
  // Drawn on the CPU (as a training run's), then copied where the case runs.
  std::unique_ptr<Model> model_ptr = std::make_unique<Model>(mc, DType::F32);
  model_ptr->init(opt.seed);
  if (opt.device != Device::CPU) {
    if (opt.device == Device::CUDA) reset_cuda_memory_peak();
    model_ptr = std::make_unique<Model>(*model_ptr, opt.device, true);
  }
  Model& model = *model_ptr;
  if (tc.precision == "bf16") model.use_bf16_gemms();  // as the estimate above
  AdamW adam(model);
  // The probe's operands exist before the model state is read: they are the benchmark's, not
  // memory a training step needs (12 MiB at 1024^3, which would add 3 KiB to act/token at T=4096).
  std::unique_ptr<SgemmProbe> probe;
  if (opt.probe_size > 0)
    probe = std::make_unique<SgemmProbe>(opt.probe_size, opt.probe_size, opt.probe_size, opt.device,
                                         tc.precision == "bf16");
  r.state_rss = rss_bytes();
  if (opt.device == Device::CUDA) r.state_device = cuda_memory_in_use();
  uint64_t draw = 0;
  auto fill = [&](Workspace& ws) {
    int32_t* ids = ws.host_ids.host<int32_t>();
    for (int64_t i = 0; i < 2 * N; ++i) ids[i] = int32_t(rng_bits(opt.seed, 17, draw++) % uint64_t(V));
    if (classify)
      for (int64_t b = 0; b < r.batch; ++b) {
        ws.host_docs.host<int32_t>()[b] = int32_t(r.T);  // full-length documents
        ws.host_docs.host<int32_t>()[r.batch + b] = int32_t(b % mc.task.num_classes);
      }
    ws.upload_ids();
  };
  {
    Workspace ws(model, RunSpec{r.batch, r.T, true, true, tc.recompute, opt.head_rows});
    adam.plan(ws.ctx(), tc);
    model.refresh_bf16(ws.ctx());
    OpTimes times;
    for (int s = 0; s < opt.warmup + opt.reps; ++s) {
      fill(ws);
      if (opt.ops && s == opt.warmup) ws.ctx().set_op_times(&times);
      const Timer t;
      model.zero_grads();
      if (classify) {
        classify_forward_device(model, ws, r.batch, r.T);
        classify_backward(model, ws, r.batch, r.T, 1.0 / double(r.batch));
      } else {
        model_forward_device(model, ws);
        model_backward(model, ws, 1.0 / double(N));
      }
      adam.grad_norm(ws.ctx());  // reads back, as the trainer's step does once
      adam.clip(ws.ctx(), tc.grad_clip);
      adam.step(ws.ctx(), tc, lr_at(tc, s), s + 1);
      device_sync(model.device());
      const double ms = t.ms();
      if (s >= opt.warmup) {
        r.train_tps.push_back(double(N) / (ms / 1e3));
        r.train_seconds += ms / 1e3;
        if (probe) r.train_sgemm.push_back(probe->gflops(opt.probe_reps));
      }
    }
    ws.ctx().set_op_times(nullptr);
    r.train_ops = times.entries;
    std::stable_sort(r.train_ops.begin(), r.train_ops.end(),
                     [](const OpTimes::Entry& a, const OpTimes::Entry& b) { return a.seconds > b.seconds; });
    r.train_gemms = times.gemms;
    std::stable_sort(r.train_gemms.begin(), r.train_gemms.end(),
                     [](const OpTimes::Gemm& a, const OpTimes::Gemm& b) { return a.seconds > b.seconds; });
  }
  if (opt.forward) {
    Workspace ws(model, RunSpec{r.batch, r.T, false, true});
    for (int s = 0; s < opt.warmup + opt.reps; ++s) {
      fill(ws);
      const Timer t;
      if (classify)
        classify_forward(model, ws, r.batch, r.T);  // one read-back of the loss
      else
        model_forward(model, ws);
      device_sync(model.device());
      const double ms = t.ms();
      if (s >= opt.warmup) {
        r.forward_tps.push_back(double(N) / (ms / 1e3));
        if (probe) r.forward_sgemm.push_back(probe->gflops(opt.probe_reps));
      }
    }
  }
  r.peak_rss = peak_rss_bytes();
  if (opt.device == Device::CUDA) r.peak_device = cuda_memory_peak();
  return r;
}

double share_of_sgemm(const std::vector<double>& tps, double flops_per_token,
                      const std::vector<double>& beside, double sgemm) {
  if (tps.empty()) return 0;
  if (beside.size() == tps.size()) {
    std::vector<double> s(tps.size());
    for (size_t i = 0; i < tps.size(); ++i)
      s[i] = beside[i] > 0 ? tps[i] * flops_per_token / 1e9 / beside[i] : 0.0;
    return median(s);
  }
  return sgemm > 0 ? median(tps) * flops_per_token / 1e9 / sgemm : 0.0;
}

StepMeter::StepMeter(const ModelConfig& m, int64_t T, int64_t total_steps, bool measure)
    : model_(m), T_(T), sgemm_(measure ? measure_sgemm_gflops() : 0.0), total_(total_steps) {}

void StepMeter::step(double ms) {
  if (seen_++ > 0) sum_ms_ += ms, ++timed_;  // the first step of a process sets things up
}

std::string StepMeter::line(int64_t done, double tokens, double ms, int64_t T) const {
  const double per_token = train_flops(model_, T > 0 ? T : T_, 1.0);
  const double gflops = ms > 0 ? per_token * tokens / (ms / 1e3) / 1e9 : 0.0;
  char buf[96];
  if (sgemm_ > 0)
    std::snprintf(buf, sizeof buf, "| %.1f GFLOP/s (%.0f%% of sgemm)", gflops, 100 * gflops / sgemm_);
  else
    std::snprintf(buf, sizeof buf, "| %.1f GFLOP/s", gflops);
  const double per = timed_ > 0 ? sum_ms_ / double(timed_) : ms;
  return std::string(buf) + " | ETA " +
         format_seconds(per * double(std::max<int64_t>(0, total_ - done)) / 1e3);
}

namespace {

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

// "12,345 (11,900-12,600)": median and range.
std::string spread(const std::vector<double>& v) {
  if (v.empty()) return "-";
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return fmt("%.0f", median(v)) + " (" + fmt("%.0f", *lo) + "-" + fmt("%.0f", *hi) + ")";
}

double per_step(const TrainBenchRow& r, double x) {
  return x / double(std::max<size_t>(1, r.train_tps.size()));
}

// The step's matmul calls by shape, each one's GFLOP/s against the sgemm probe (the median of the
// probes beside the steps, else the start's figure).
std::string gemms_markdown(const TrainBenchRow& r, double sgemm) {
  if (!r.train_sgemm.empty()) sgemm = median(r.train_sgemm);
  std::ostringstream o;
  o << "\nmatmul calls by shape (x [n, i], w [o, i]; y = x w^T forward, dx = dy w and dW += dy^T x backward; "
       "+=: added to the output), GFLOP/s of each against the sgemm of "
    << fmt("%.1f", sgemm)
    << ":\n\n| op | products | n x i -> o | calls/step | ms/step | GFLOP/s | of sgemm |\n"
       "| --- | --- | --- | ---: | ---: | ---: | ---: |\n";
  for (const OpTimes::Gemm& g : r.train_gemms) {
    const double gf = g.seconds > 0 ? g.flops / g.seconds / 1e9 : 0.0;
    o << "| " << g.op << " | " << g.products << " | " << g.n << " x " << g.i << " -> " << g.o << " | "
      << fmt("%.0f", per_step(r, double(g.calls))) << " | " << fmt("%.2f", 1e3 * per_step(r, g.seconds))
      << " | " << fmt("%.1f", gf) << " | " << (sgemm > 0 ? fmt("%.0f%%", 100 * gf / sgemm) : std::string("-"))
      << " |\n";
  }
  return o.str();
}

std::string ops_markdown(const TrainBenchRow& r) {
  std::ostringstream o;
  o << "Op times of the timed training steps, " << r.model << " T=" << r.T << " batch " << r.batch
    << (r.recompute ? " recompute" : "") << " (wall time of each outermost op call, summed over "
    << r.train_tps.size()
    << " steps):\n\n| op | calls/step | ms/step | of step |\n| --- | ---: | ---: | ---: |\n";
  double in_ops = 0;
  for (const OpTimes::Entry& e : r.train_ops) {
    in_ops += e.seconds;
    o << "| " << e.op << " | " << fmt("%.0f", per_step(r, double(e.calls))) << " | "
      << fmt("%.2f", 1e3 * per_step(r, e.seconds)) << " | "
      << fmt("%.1f%%", 100 * e.seconds / r.train_seconds) << " |\n";
  }
  const double rest = std::max(0.0, r.train_seconds - in_ops);
  o << "| (outside ops) | - | " << fmt("%.2f", 1e3 * per_step(r, rest)) << " | "
    << fmt("%.1f%%", 100 * rest / r.train_seconds) << " |\n";
  return o.str();
}

}  // namespace

std::string train_bench_markdown(const std::vector<TrainBenchRow>& rows, double sgemm, int threads) {
  std::ostringstream o;
  o << "| model | attention | T | batch | recompute | train tok/s | GFLOP/s | of sgemm | sgemm beside | "
       "forward tok/s | GFLOP/s | of sgemm | peak RSS | RSS/token | model state | act/token | estimate |\n";
  o << "| --- | --- | ---: | ---: | --- |";
  for (int c = 0; c < 12; ++c) o << " ---: |";
  o << "\n";
  auto share = [&](const std::vector<double>& tps, double fpt, const std::vector<double>& beside) {
    const double f = share_of_sgemm(tps, fpt, beside, sgemm);
    return f > 0 ? fmt("%.0f%%", 100 * f) : std::string("-");
  };
  for (const TrainBenchRow& r : rows) {
    o << "| " << r.model << " | " << r.attention << (r.precision == "bf16" ? " (bf16)" : "") << " | " << r.T
      << " | " << r.batch << " | " << (r.recompute ? "yes" : "no") << " | ";
    if (r.status != "ok") {
      o << "OOM | - | - | - | - | - | - | - | - | - | - | " << format_bytes(r.estimate.total) << " |\n";
      continue;
    }
    const size_t tokens = size_t(std::max<int64_t>(1, r.T * r.batch));
    const double tg = median(r.train_tps) * r.train_flops_per_token / 1e9;
    const double fg = median(r.forward_tps) * r.forward_flops_per_token / 1e9;
    // CUDA rows: the memory columns are the device's (the arenas on the GPU).
    const bool dev = r.device != "cpu";
    const size_t peak = dev ? r.peak_device : r.peak_rss, state = dev ? r.state_device : r.state_rss;
    o << spread(r.train_tps) << " | " << fmt("%.1f", tg) << " | "
      << share(r.train_tps, r.train_flops_per_token, r.train_sgemm) << " | " << spread(r.train_sgemm) << " | "
      << spread(r.forward_tps) << " | " << (r.forward_tps.empty() ? "-" : fmt("%.1f", fg)) << " | "
      << share(r.forward_tps, r.forward_flops_per_token, r.forward_sgemm) << " | " << format_bytes(peak)
      << (dev                ? " (" + r.device + ")"
          : r.peak_rss_reset ? ""
                             : " (process)")
      << " | " << format_bytes(peak / tokens) << " | " << format_bytes(state) << " | "
      << (peak > state && state > 0 ? format_bytes((peak - state) / tokens) : "-") << " | "
      << format_bytes(r.estimate.total) << " |\n";
  }
  bool on_cuda = false;
  for (const TrainBenchRow& r : rows) on_cuda = on_cuda || r.device == "cuda";
  o << "\nsgemm (f32 GEMM through the engine's matmul op, "
    << (on_cuda ? std::string("on the CUDA device (cuBLAS)") : std::to_string(threads) + " threads")
    << ", best of 5) at the start: " << fmt("%.1f", sgemm) << " GFLOP/s; CPU BLAS kernels "
    << blas_kernel_name()
    << ". sgemm beside: the same GEMM (best of 3) measured right after each timed step, median (range); "
       "of sgemm: the median over steps of the step's GFLOP/s over the sgemm right after it (the start's "
       "figure where there are no such probes). Model FLOPs per token from the config (wersa/model/flops.h; "
       "training = 3 x forward); tok/s: median (range) of the timed steps. model state: resident memory once "
       "the weights, gradients and AdamW moments exist; act/token: (peak RSS - model state) / tokens of a "
       "step. On CUDA the memory columns are the device memory of the case's arenas (CUDA context and "
       "cuBLAS workspace not counted). A (bf16) row is a train.precision bf16 run: its probes time the "
       "mixed-precision GEMM of such a run (bf16 weights, x rounded to bf16, f32 accumulation) instead of "
       "sgemm, and its \"of sgemm\" is of that rate.\n";
  for (const TrainBenchRow& r : rows)
    if (!r.train_ops.empty()) o << "\n" << ops_markdown(r) << gemms_markdown(r, sgemm);
  return o.str();
}

nlohmann::json train_bench_json(const std::vector<TrainBenchRow>& rows, double sgemm, int threads) {
  nlohmann::json out = nlohmann::json::array();
  for (const TrainBenchRow& r : rows)
    out.push_back(
        {{"model", r.model},
         {"attention", r.attention},
         {"T", r.T},
         {"batch", r.batch},
         {"recompute", r.recompute},
         {"precision", r.precision},
         {"status", r.status},
         {"estimate_bytes", r.estimate.total},
         {"train_tok_per_s", r.train_tps},
         {"train_tok_per_s_median", median(r.train_tps)},
         {"forward_tok_per_s", r.forward_tps},
         {"forward_tok_per_s_median", median(r.forward_tps)},
         {"train_flops_per_token", r.train_flops_per_token},
         {"forward_flops_per_token", r.forward_flops_per_token},
         {"train_gflops", median(r.train_tps) * r.train_flops_per_token / 1e9},
         {"forward_gflops", median(r.forward_tps) * r.forward_flops_per_token / 1e9},
         {"train_sgemm_beside_gflops", r.train_sgemm},
         {"forward_sgemm_beside_gflops", r.forward_sgemm},
         {"train_share_of_sgemm", share_of_sgemm(r.train_tps, r.train_flops_per_token, r.train_sgemm, sgemm)},
         {"forward_share_of_sgemm",
          share_of_sgemm(r.forward_tps, r.forward_flops_per_token, r.forward_sgemm, sgemm)},
         {"peak_rss_bytes", r.peak_rss},
         {"peak_rss_reset", r.peak_rss_reset},
         {"state_rss_bytes", r.state_rss},
         {"device", r.device},
         {"peak_device_bytes", r.peak_device},
         {"state_device_bytes", r.state_device}});
  for (size_t i = 0; i < rows.size(); ++i) {
    const TrainBenchRow& r = rows[i];
    if (r.train_ops.empty()) continue;
    nlohmann::json ops = nlohmann::json::array();
    for (const OpTimes::Entry& e : r.train_ops)
      ops.push_back({{"op", e.op},
                     {"calls_per_step", per_step(r, double(e.calls))},
                     {"seconds_per_step", per_step(r, e.seconds)}});
    out[i]["train_ops"] = ops;
    nlohmann::json gemms = nlohmann::json::array();
    for (const OpTimes::Gemm& g : r.train_gemms)
      gemms.push_back({{"op", g.op},
                       {"products", g.products},
                       {"n", g.n},
                       {"i", g.i},
                       {"o", g.o},
                       {"calls_per_step", per_step(r, double(g.calls))},
                       {"seconds_per_step", per_step(r, g.seconds)},
                       {"gflops", g.seconds > 0 ? g.flops / g.seconds / 1e9 : 0.0}});
    out[i]["train_gemms"] = gemms;
    out[i]["train_seconds_per_step"] = per_step(r, r.train_seconds);
  }
  return {{"threads", threads}, {"blas_kernels", blas_kernel_name()}, {"sgemm_gflops", sgemm}, {"rows", out}};
}

}  // namespace wersa

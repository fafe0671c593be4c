// Training throughput (wersa-bench train): timed training steps (forward, backward, gradient
// norm, clipping, AdamW) and forward-only passes of a config at a sequence length, after warm-up,
// with the model FLOPs per token counted from the config (wersa/model/flops.h), the achieved
// GFLOP/s, and the peak resident memory of the case; and the machine's sgemm rate measured through
// the engine's own matmul op (the BLAS every model GEMM goes through), so that each figure can be
// read as a share of that limit. Also used by the trainer's log line (utilisation and ETA).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wersa/backend/backend.h"
#include "wersa/model/config.h"
#include "wersa/tensor/context.h"
#include "wersa/train/memory.h"

namespace wersa {

// Best of `reps` (after one warm-up) f32 GEMMs y[M, N] = x[M, K] w[N, K]^T on `device` through
// matmul_fwd (BLAS on the CPU, cuBLAS on CUDA, each timed to the device's completion), in GFLOP/s
// (2 M N K per GEMM). The probe keeps its operands, so that it can be measured again and again
// (beside every timed step) without drawing them anew. With bf16 it times the mixed-precision
// GEMM of train.precision bf16 instead (matmul_fwd with bf16: w bf16, x rounded to bf16 into
// planned scratch, f32 accumulation): the rate a bf16 run's GEMMs can reach on this device.
class SgemmProbe {
 public:
  SgemmProbe(int64_t M, int64_t N, int64_t K, Device device = Device::CPU, bool bf16 = false);
  ~SgemmProbe();
  SgemmProbe(const SgemmProbe&) = delete;
  SgemmProbe& operator=(const SgemmProbe&) = delete;
  double gflops(int reps);

 private:
  int64_t M_, N_, K_;
  Device dev_;
  bool bf16_;
  std::vector<float> x_, w_, y_;
  std::vector<uint16_t> w16_;                           // bf16: the weights' bits
  void *dx_ = nullptr, *dw_ = nullptr, *dy_ = nullptr;  // CUDA: the operands on the device
  std::unique_ptr<Ctx> ctx_;
};
double measure_sgemm_gflops(int64_t M = 1024, int64_t N = 1024, int64_t K = 1024, int reps = 5,
                            Device device = Device::CPU, bool bf16 = false);

// Peak resident memory of this process (VmHWM, bytes; 0 where /proc is missing), and its reset
// (Linux clear_refs; returns false where the kernel refuses it: the peak then stays the process's).
size_t peak_rss_bytes();
bool reset_peak_rss();
// Resident memory now (VmRSS, bytes; 0 where /proc is missing).
size_t rss_bytes();

struct TrainBenchOptions {
  int warmup = 1;         // untimed steps first (OpenMP, BLAS and caches set themselves up)
  int reps = 5;           // timed steps (and forward passes)
  bool forward = true;    // also time forward-only passes (evaluation / prefill shape)
  uint64_t seed = 1234;   // weights and tokens
  size_t max_memory = 0;  // a case whose estimate exceeds it is not run (status "oom"); 0 = none
  // After every timed step and pass, the sgemm rate (square GEMMs of this size, best of
  // probe_reps) is measured again, so that each step's share of the limit is taken against the
  // machine's speed of that moment (shared VMs drift within minutes). 0 = no probes.
  int64_t probe_size = 1024;
  int probe_reps = 3;
  int64_t head_rows = 0;  // rows per LM head tile of the training steps (RunSpec::head_rows; 0 = automatic)
  bool ops = false;       // time every op call of the timed training steps (Ctx::set_op_times)
  // Where the model, optimizer and workspace live (CUDA: parameters drawn on the CPU and copied,
  // steps timed to the device's completion, the probes on the device, device memory measured).
  Device device = Device::CPU;
};

struct TrainBenchRow {
  std::string model, attention;
  int64_t T = 0, batch = 0;
  bool recompute = false;
  std::string precision = "fp32";  // train.precision: bf16 rows are probed with the bf16 GEMM
  std::string status = "ok";       // ok | oom
  MemoryEstimate estimate;
  std::vector<double> train_tps, forward_tps;  // tokens/s of each timed step / pass
  // sgemm GFLOP/s measured right after each timed step / pass (empty without probes)
  std::vector<double> train_sgemm, forward_sgemm;
  double train_flops_per_token = 0;  // 3 x forward (wersa/model/flops.h)
  double forward_flops_per_token = 0;
  size_t peak_rss = 0;          // bytes, this case (see reset_peak_rss)
  bool peak_rss_reset = false;  // false: the figure is the process's peak so far
  // Resident memory once the model (weights, gradients) and AdamW's moments exist, before the
  // case's workspace: what does not grow with T. (peak_rss - state_rss) / tokens is the memory each
  // token of a step costs, the "act/token" column.
  size_t state_rss = 0;
  // CUDA: the device memory of the case's arenas (backend's cuda_memory_peak) at its peak, and
  // once the model and optimizer exist; 0 on the CPU.
  size_t peak_device = 0, state_device = 0;
  std::string device = "cpu";
  // With TrainBenchOptions::ops: the op times summed over the timed training steps, and those
  // steps' total wall time (what no op accounts for is the model's glue, waits and read-backs).
  std::vector<OpTimes::Entry> train_ops;
  std::vector<OpTimes::Gemm> train_gemms;  // the matmul calls among them by shape, slowest first
  double train_seconds = 0;
};

// Runs one case: cfg.model at cfg.train.seq_len x cfg.train.batch_size (and train.recompute), the
// optimizer settings of cfg.train, random weights and tokens, on opt.device (the CPU with the
// threads set, or CUDA).
TrainBenchRow bench_train_case(const std::string& name, const Config& cfg, const TrainBenchOptions& opt);

double median(std::vector<double> v);

// The share of the sgemm limit reached at `tps` tokens/s of `flops_per_token`: with one probe per
// step (beside.size() == tps.size()), the median over steps of each step's GFLOP/s over the sgemm
// rate measured right after it; otherwise the median step's GFLOP/s over `sgemm` (0 where sgemm
// is not positive and there are no probes).
double share_of_sgemm(const std::vector<double>& tps, double flops_per_token,
                      const std::vector<double>& beside, double sgemm);

// The utilisation and ETA of a training log line: "| 45.1 GFLOP/s (23% of sgemm) | ETA 12:03".
// Model FLOPs per token for sequences of T (training: 3 x forward); the sgemm rate is measured
// once at construction when `measure` (CPU runs), else the share is left out. The ETA is the mean
// step time (every step given to step(), less the first one this process ran) times the steps left.
class StepMeter {
 public:
  StepMeter(const ModelConfig& m, int64_t T, int64_t total_steps, bool measure);
  void step(double ms);  // every step's time, logged or not
  // `tokens` rows of sequences of T computed in `ms` (T = 0: the T of the constructor).
  std::string line(int64_t done, double tokens, double ms, int64_t T = 0) const;
  double sgemm_gflops() const { return sgemm_; }

 private:
  ModelConfig model_;
  int64_t T_ = 0;
  double sgemm_ = 0, sum_ms_ = 0;
  int64_t total_ = 0, timed_ = 0, seen_ = 0;
};

// The table (markdown) and JSON of the rows, with the sgemm rate (GFLOP/s) as the limit; rows with
// op times get a table of them each (ops by time, per step and as a share of the step).
std::string train_bench_markdown(const std::vector<TrainBenchRow>& rows, double sgemm_gflops, int threads);
nlohmann::json train_bench_json(const std::vector<TrainBenchRow>& rows, double sgemm_gflops, int threads);

}  // namespace wersa

#include "wersa/train/trainer.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "run.h"
#include "wersa/backend/backend.h"
#include "wersa/common/file.h"
#include "wersa/common/json.h"
#include "wersa/common/log.h"
#include "wersa/common/timer.h"
#include "wersa/common/version.h"
#include "wersa/io/checkpoint.h"
#include "wersa/optim/optimizer.h"
#include "wersa/train/bench.h"
#include "wersa/train/interrupt.h"
#include "wersa/train/memory.h"

namespace fs = std::filesystem;

namespace wersa {

Batcher::Batcher(const data::TokenDataset& ds, int64_t pos) : ds_(ds), pos_(pos) {
  WERSA_CHECK(pos >= 0 && pos < ds.size(), ds.describe(), ": data position ", pos, " lies outside its ",
              ds.size(), " tokens");
}

int64_t Batcher::next(Workspace& ws) {
  const int64_t B = ws.batch(), T = ws.seq();
  WERSA_CHECK(ds_.size() >= T + 1, ds_.describe(), ": has ", ds_.size(),
              " tokens, fewer than one sequence of ", T + 1, " (lower train.seq_len or use more data)");
  buf_.resize(size_t(T + 1));
  int32_t* tok = ws.host_ids.host<int32_t>();
  int32_t* tgt = tok + B * T;
  for (int64_t b = 0; b < B; ++b) {
    if (pos_ + T + 1 > ds_.size()) pos_ = 0;
    ds_.read(pos_, T + 1, buf_.data());
    for (int64_t t = 0; t < T; ++t) {
      tok[b * T + t] = buf_[t];
      tgt[b * T + t] = buf_[t + 1];
    }
    pos_ += T;
  }
  ws.upload_ids();
  return B * T;  // every target counts
}

EvalResult evaluate(Model& m, const data::TokenDataset& ds, int64_t seq, int64_t batch, int64_t max_tokens,
                    const std::function<void(int64_t, int32_t, double)>& per_token) {
  EvalResult r;
  Timer timer;
  const int64_t total = ds.size();
  int64_t limit = total - 1;  // number of predicted positions available
  if (max_tokens >= 0) limit = std::min(limit, max_tokens);
  WERSA_CHECK(limit >= 1, ds.describe(), ": needs at least 2 tokens to evaluate");
  std::unique_ptr<Workspace> ws;
  std::vector<int32_t> buf;
  std::vector<double> losses;
  double sum = 0;
  int64_t pos = 0;
  while (pos < limit) {
    const int64_t remaining = limit - pos;
    // Full windows go through the batched workspace; the tail gets a workspace of its own length.
    int64_t T = seq, B = std::min(batch, remaining / seq);
    if (B == 0) T = remaining, B = 1;
    if (!ws || ws->seq() != T || ws->batch() != B) ws = std::make_unique<Workspace>(m, B, T, false);
    buf.resize(size_t(T + 1));
    int32_t* tok = ws->host_ids.host<int32_t>();
    int32_t* tgt = tok + B * T;
    for (int64_t b = 0; b < B; ++b) {
      ds.read(pos + b * T, T + 1, buf.data());
      for (int64_t t = 0; t < T; ++t) {
        tok[b * T + t] = buf[t];
        tgt[b * T + t] = buf[t + 1];
      }
    }
    ws->upload_ids();
    int64_t n = 0;
    sum += model_forward(m, *ws, &n);
    if (per_token) {
      losses.resize(size_t(B * T));
      if (m.dtype() == DType::F64) {
        tensor_copy(ws->ctx(), Tensor(losses.data(), DType::F64, Device::CPU, Shape{B * T}), ws->losses);
      } else {
        std::vector<float> lf(size_t(B * T));
        tensor_copy(ws->ctx(), Tensor(lf.data(), DType::F32, Device::CPU, Shape{B * T}), ws->losses);
        std::copy(lf.begin(), lf.end(), losses.begin());
      }
      for (int64_t i = 0; i < B * T; ++i) per_token(pos + i + 1, tgt[i], losses[size_t(i)]);
    }
    r.tokens += n;
    pos += B * T;
  }
  r.mean_loss = sum / double(r.tokens);
  WERSA_CHECK(std::isfinite(r.mean_loss), ds.describe(), ": the mean loss is ", r.mean_loss,
              " (the model's outputs overflow; its weights are damaged or diverged)");
  r.seconds = timer.ms() / 1000.0;
  return r;
}

TrainResult train(const Config& cfg, const TrainOptions& opt) {
  if (cfg.model.task.classify()) return train_classifier(cfg, opt);
  if (!opt.quiet) spdlog::info("{}", version_line());  // first: what is training
  require_training_data(cfg, "config");
  const TrainConfig& tc = cfg.train;
  detail::train_device(tc);  // a missing device is an error before anything else
  TrainResult res;

  // The memory of the whole run, before anything is allocated or written (a refused run leaves
  // no run directory behind).
  res.memory = estimate_train_memory(cfg);
  const size_t limit = memory_limit(opt.max_memory, detail::train_device(tc));
  if (!opt.quiet)
    spdlog::info("memory: estimated {}; limit {}", res.memory.str(),
                 limit ? format_bytes(limit) : std::string("unknown"));
  check_memory(res.memory, limit, "this run");

  const detail::RunDir run = detail::open_run_dir(opt);
  const fs::path& out = run.out;

  const int threads = set_cpu_threads(tc.threads);
  const std::string tok_spec = detail::tokenizer_spec(cfg);
  auto tok = data::load_tokenizer(tok_spec);
  WERSA_CHECK(tok->vocab_size() <= cfg.model.vocab_size, "model.vocab_size: ", cfg.model.vocab_size,
              " is smaller than the vocabulary of tokenizer '", tok_spec, "' (", tok->vocab_size(),
              "); set model.vocab_size to at least ", tok->vocab_size());
  auto train_ds = data::open_dataset(cfg.data.train, *tok, cfg.model.vocab_size);
  std::unique_ptr<data::TokenDataset> val_ds;
  if (!cfg.data.val.empty()) val_ds = data::open_dataset(cfg.data.val, *tok, cfg.model.vocab_size);

  const std::unique_ptr<Model> model_ptr = detail::make_train_model(cfg, opt.quiet);
  Model& model = *model_ptr;
  AdamW adam(model);
  Workspace ws(model, RunSpec{tc.batch_size, tc.seq_len, true, true, tc.recompute});
  Ctx& ctx = ws.ctx();
  adam.plan(ctx, tc);  // the workspace planned the forward and backward; this the optimizer step
  // Per micro-batch [sum of losses, count], read back once per step.
  Arena stats_arena("loss statistics", model.device());
  const Tensor stats = stats_arena.build([&](Arena& a) {
    return a.add("loss_stats", DType::F64, {tc.grad_accum + 1, 2});
  });
  // Row micro: that micro-batch's loss sum and count; the last row's first value: the squared
  // gradient norm. The step reads them back in one copy, after its update is enqueued.
  const Tensor norm2 = stats.rows(tc.grad_accum, tc.grad_accum + 1).view({2}).rows(0, 1);
  std::vector<double> host_stats(size_t(2 * (tc.grad_accum + 1)));
  int64_t step = 0, pos = 0;

  if (opt.resume) {
    const std::string ck = detail::resume_checkpoint(out);
    if (!ck.empty()) {
      const Config saved = io::load_checkpoint_config(ck);
      WERSA_CHECK(model_identity(saved.model) == model_identity(cfg.model), ck,
                  ": the checkpoint's model or task section differs from the config given; resume with the "
                  "same model");
      const io::CheckpointState st = io::load_checkpoint_state(ck);
      const std::string where = (fs::path(ck) / "state.json").string();
      WERSA_CHECK(st.step <= tc.steps, where, ": step ", st.step, " is beyond train.steps = ", tc.steps,
                  " (raise train.steps to train further)");
      WERSA_CHECK(st.train_pos < train_ds->size(), where, ": train_pos ", st.train_pos,
                  " lies outside the training data (", train_ds->describe(), ", ", train_ds->size(),
                  " tokens)");
      io::load_model_weights(ck, model);
      io::load_optimizer_state(ck, adam.m_arena(), adam.v_arena());
      step = st.step;
      pos = st.train_pos;
      spdlog::info("resumed from {} (step {})", ck, step);
    }
  }
  model.refresh_bf16(ctx);  // mixed precision: the shadow of the initial or loaded weights
  LineWriter metrics;
  if (!out.empty()) {
    write_file((out / "config.json").string(), detail::saved_config(cfg).dump(2) + "\n");
    if (opt.resume) detail::truncate_metrics(out / "metrics.jsonl", step);
    metrics.open((out / "metrics.jsonl").string(), opt.resume);
  }
  if (!opt.quiet)
    spdlog::info(
        "model: {} parameters, attention {}, {} threads ({}), BLAS kernels {}; tokenizer {}; data: {}; "
        "workspace {} (+ {} scratch)",
        model.num_params(), attention_kind_name(cfg.model.attention.type), threads, omp_wait_setting(),
        blas_kernel_name(), tok_spec, train_ds->describe(), format_bytes(ws.bytes()),
        format_bytes(ws.scratch_bytes()));

  Batcher batcher(*train_ds, pos);
  const int64_t tokens_per_step = int64_t(tc.batch_size) * tc.seq_len * tc.grad_accum;
  StepMeter meter(cfg.model, tc.seq_len, tc.steps, !opt.quiet && model.device() == Device::CPU);
  int64_t ran = 0;
  auto save = [&](int64_t done) {
    if (out.empty()) return;
    io::CheckpointContents c;
    c.model = &model;
    c.adam_m = &adam.m_arena();
    c.adam_v = &adam.v_arena();
    c.config = config_to_json(cfg);
    c.state.step = done;
    c.state.train_pos = batcher.pos();
    c.state.seed = tc.seed;
    c.state.tokens_seen = done * tokens_per_step;
    if (tok->kind() != "byte") c.tokenizer_path = tok_spec;
    res.last_checkpoint = io::save_checkpoint(out.string(), done, c);
    if (tc.keep_last > 0) io::prune_checkpoints(out.string(), tc.keep_last);
    if (!opt.quiet) spdlog::info("checkpoint {}", res.last_checkpoint);
  };
  for (; step < tc.steps; ++step) {
    if (opt.stop_after >= 0 && ran >= opt.stop_after) break;
    Timer timer;
    model.zero_grads();
    for (int micro = 0; micro < tc.grad_accum; ++micro) {
      const int64_t n = batcher.next(ws);  // the count of targets is known on the host
      model_forward_device(model, ws, stats.rows(micro, micro + 1).view({2}));
      model_backward(model, ws, 1.0 / (double(n) * tc.grad_accum));
    }
    adam.grad_norm2(ctx, norm2);
    adam.clip(ctx, norm2, tc.grad_clip);
    const double lr = lr_at(tc, step);
    adam.step(ctx, tc, lr, step + 1);
    // The step's one synchronisation: its losses and gradient norm, for the log and metrics lines.
    tensor_copy(ctx, Tensor(host_stats.data(), DType::F64, Device::CPU, stats.shape), stats);
    double loss = 0;
    for (int micro = 0; micro < tc.grad_accum; ++micro)
      loss += host_stats[size_t(2 * micro)] / host_stats[size_t(2 * micro + 1)] / tc.grad_accum;
    WERSA_CHECK(std::isfinite(loss), "training diverged at step ", step + 1, " (loss ", loss,
                "); lower train.lr or enable train.grad_clip");
    const double norm = std::sqrt(host_stats[size_t(2 * tc.grad_accum)]);
    const double ms = timer.ms();
    meter.step(ms);
    const double tps = tokens_per_step / (ms / 1000.0);
    res.losses.push_back(loss);
    ++ran;
    const int64_t done = step + 1;
    if (!opt.quiet && (done % tc.log_every == 0 || done == tc.steps))
      spdlog::info("step {:5d}/{} | loss {:.4f} | norm {:.4f} | lr {:.2e} | {:.1f} ms | {:.0f} tok/s {}",
                   done, tc.steps, loss, norm, lr, ms, tps, meter.line(done, double(tokens_per_step), ms));
    if (metrics.is_open()) {
      nlohmann::json j = {{"step", done}, {"loss", loss}, {"grad_norm", norm},
                          {"lr", lr},     {"ms", ms},     {"tok_per_s", tps}};
      metrics.write(j.dump() + "\n");
    }
    if (val_ds && tc.eval_every > 0 && (done % tc.eval_every == 0 || done == tc.steps)) {
      const EvalResult ev = evaluate(model, *val_ds, tc.seq_len, tc.batch_size,
                                     int64_t(tc.eval_batches) * tc.batch_size * tc.seq_len);
      res.val_losses.emplace_back(done, ev.mean_loss);
      if (!opt.quiet)
        spdlog::info("step {:5d} | val_loss {:.4f} | val_ppl {:.2f} | {} tokens", done, ev.mean_loss,
                     std::exp(ev.mean_loss), ev.tokens);
      if (metrics.is_open())
        metrics.write(nlohmann::json{{"step", done}, {"val_loss", ev.mean_loss}}.dump() + "\n");
    }
    // Periodic checkpoints when checkpoint_every > 0; the final model is always saved to --out,
    // and so is the model of an interrupted run.
    res.interrupted = interrupt_requested();
    if ((tc.checkpoint_every > 0 && done % tc.checkpoint_every == 0) || done == tc.steps || res.interrupted)
      save(done);
    if (res.interrupted) {
      ++step;
      break;
    }
  }
  if (metrics.is_open()) metrics.close();
  res.final_step = step;
  return res;
}

}  // namespace wersa

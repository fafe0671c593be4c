// The classifier's data, training loop and evaluation (contract in include/wersa/train/classify.h).
#include "wersa/train/classify.h"

#include <algorithm>
#include <cmath>

#include "run.h"
#include "wersa/backend/backend.h"
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

ClassifyData load_classify_data(Config& cfg, const std::string& tokenizer_spec, const std::string& path,
                                bool quiet) {
  const std::string file = path.empty() ? cfg.data.train : path;
  WERSA_CHECK(!file.empty(),
              "data.train: is empty (expected a JSON Lines file of documents with text and label)");
  ClassifyData d;
  d.tokenizer = data::load_tokenizer(tokenizer_spec);
  d.tokenizer_spec = tokenizer_spec;
  WERSA_CHECK(d.tokenizer->vocab_size() <= cfg.model.vocab_size, "model.vocab_size: ", cfg.model.vocab_size,
              " is smaller than the vocabulary of tokenizer '", tokenizer_spec, "' (",
              d.tokenizer->vocab_size(), "); set model.vocab_size to at least ", d.tokenizer->vocab_size());
  data::LabeledDataset recs = data::read_labeled_jsonl(file);
  WERSA_CHECK(!recs.records.empty(), file, ": holds no documents");
  TaskConfig& k = cfg.model.task;
  if (!k.labels.empty()) {
    d.labels = data::LabelMap::from_names(k.labels);
  } else {
    d.labels = data::LabelMap::from_records(recs);
    // Integer labels may leave classes unseen: task.num_classes can name more.
    if (k.num_classes > d.labels.num_classes() && recs.records.front().label_is_int())
      d.labels = data::LabelMap::from_records(recs, k.num_classes);
  }
  WERSA_CHECK(d.labels.num_classes() >= 2, file, ": its documents have ", d.labels.num_classes(),
              " class (expected at least 2)");
  WERSA_CHECK(k.num_classes == 0 || k.num_classes == d.labels.num_classes(),
              "task.num_classes: ", k.num_classes, " but ", file, " has ", d.labels.num_classes(),
              " classes");
  k.labels = d.labels.names();
  k.num_classes = int(d.labels.num_classes());
  config_validate(cfg, file);
  if (!recs.has_split)
    data::assign_splits(recs, d.labels, {cfg.data.val_fraction, cfg.data.test_fraction, cfg.train.seed});
  Timer timer;
  d.docs = data::encode_documents(recs, d.labels, *d.tokenizer, cfg.train.seq_len,
                                  data::parse_truncation(cfg.data.truncate, "data.truncate"));
  if (!quiet)
    spdlog::info("documents: {} ({}; {}; tokenized in {:.1f} s)", file,
                 data::describe(data::document_stats(d.docs), d.labels),
                 recs.has_split ? "split from the file" : "seeded stratified split", timer.ms() / 1000.0);
  return d;
}

namespace {

// Host ids of one batch: documents padded to the longest (token 0: never read by a real row);
// lengths and labels in host_docs. Returns the padded length.
int64_t fill_batch(Workspace& ws, const data::DocumentSet& set, const std::vector<int64_t>& batch) {
  int64_t T = 1;
  for (int64_t i : batch) T = std::max<int64_t>(T, set.length[size_t(i)]);
  WERSA_ASSERT(int64_t(batch.size()) <= ws.batch() && T <= ws.seq(), "a batch of ", batch.size(), " x ", T,
               " in a workspace of ", ws.batch(), " x ", ws.seq());
  int32_t* tok = ws.host_ids.host<int32_t>();
  int32_t* docs = ws.host_docs.host<int32_t>();
  for (size_t b = 0; b < batch.size(); ++b) {
    const int64_t n = set.length[size_t(batch[b])];
    std::copy_n(set.doc(batch[b]), n, tok + int64_t(b) * T);
    std::fill(tok + int64_t(b) * T + n, tok + int64_t(b + 1) * T, 0);
    docs[b] = int32_t(n);
    docs[ws.batch() + int64_t(b)] = set.label[size_t(batch[b])];
  }
  ws.upload_ids();
  return T;
}

int64_t longest(const data::DocumentSet& set, const std::vector<int64_t>& docs) {
  int64_t T = 1;
  for (int64_t i : docs) T = std::max<int64_t>(T, set.length[size_t(i)]);
  return T;
}

}  // namespace

ClassifyEval evaluate_classifier(Model& m, const data::DocumentSet& set, const std::vector<int64_t>& docs,
                                 int64_t batch) {
  WERSA_CHECK(!docs.empty(), "evaluation: no documents to evaluate");
  ClassifyEval r;
  Timer timer;
  const int64_t C = m.config().task.num_classes;
  WERSA_CHECK(set.num_classes <= C, "the documents have ", set.num_classes, " classes, the model ", C);
  Workspace ws(m, RunSpec{std::min<int64_t>(batch, int64_t(docs.size())), longest(set, docs), false, true});
  std::vector<double> logits;
  std::vector<int32_t> labels;
  double sum = 0;
  for (const std::vector<int64_t>& b : data::eval_batches(set, docs, ws.batch())) {
    const int64_t B = int64_t(b.size()), T = fill_batch(ws, set, b);
    sum += classify_forward(m, ws, B, T);
    logits.resize(size_t(B * C));
    if (m.dtype() == DType::F64) {
      tensor_copy(ws.ctx(), Tensor(logits.data(), DType::F64, Device::CPU, Shape{B, C}),
                  ws.logits.rows(0, B));
    } else {
      std::vector<float> f(size_t(B * C));
      tensor_copy(ws.ctx(), Tensor(f.data(), DType::F32, Device::CPU, Shape{B, C}), ws.logits.rows(0, B));
      std::copy(f.begin(), f.end(), logits.begin());
    }
    for (int64_t i = 0; i < B; ++i) {
      const double* z = logits.data() + i * C;
      const double mx = *std::max_element(z, z + C);
      double s = 0;
      for (int64_t c = 0; c < C; ++c) s += std::exp(z[c] - mx);
      for (int64_t c = 0; c < C; ++c) r.probs.push_back(float(std::exp(z[c] - mx) / s));
      r.docs.push_back(b[size_t(i)]);
      labels.push_back(set.label[size_t(b[size_t(i)])]);
      r.tokens += set.length[size_t(b[size_t(i)])];
    }
  }
  r.loss = sum / double(docs.size());
  WERSA_CHECK(std::isfinite(r.loss), "evaluation: the mean loss is ", r.loss,
              " (the model's outputs overflow; its weights are damaged or diverged)");
  r.metrics = classification_metrics(r.probs, labels, int(C));
  r.seconds = timer.ms() / 1000.0;
  return r;
}

namespace {

nlohmann::json eval_json(int64_t step, const std::string& split, const ClassifyEval& e) {
  const auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {{"step", step},
          {split + "_loss", e.loss},
          {split + "_accuracy", e.metrics.accuracy},
          {split + "_macro_f1", e.metrics.macro_f1},
          {split + "_macro_auc", num(e.metrics.macro_auc)},
          {split + "_docs", e.metrics.n}};
}

void log_eval(int64_t step, const std::string& split, const ClassifyEval& e) {
  spdlog::info(
      "step {:5d} | {}_loss {:.4f} | accuracy {:.4f} | macro_f1 {:.4f} | macro_auc {:.4f} | {} docs, "
      "{:.1f} s",
      step, split, e.loss, e.metrics.accuracy, e.metrics.macro_f1, e.metrics.macro_auc, e.metrics.n,
      e.seconds);
}

}  // namespace

TrainResult train_classifier(const Config& cfg_in, const TrainOptions& opt) {
  Config cfg = cfg_in;
  if (!opt.quiet) spdlog::info("{}", version_line());  // first: what is training
  const TrainConfig& tc = cfg.train;
  require_training_data(cfg, "config");
  detail::train_device(tc);  // a missing device is an error before anything else
  WERSA_CHECK(cfg.data.val.empty(), "data.val: '", cfg.data.val,
              "': a classifier takes its validation documents from data.train (its split field, or the "
              "seeded split); set data.val to \"\"");
  TrainResult res;
  const detail::RunDir run = detail::open_run_dir(opt);
  const fs::path& out = run.out;
  const int threads = set_cpu_threads(tc.threads);
  const std::string tok_spec = !cfg.data.tokenizer.empty() ? cfg.data.tokenizer
                               : !tc.init_from.empty()     ? io::checkpoint_tokenizer(tc.init_from)
                                                           : std::string("byte");
  ClassifyData d = load_classify_data(cfg, tok_spec, "", opt.quiet);
  const std::vector<int64_t> train_docs = d.docs.indices(data::Split::Train),
                             val_docs = d.docs.indices(data::Split::Validation),
                             test_docs = d.docs.indices(data::Split::Test);
  WERSA_CHECK(!train_docs.empty(), cfg.data.train, ": no document in the train split");

  // The memory of the run (its workspace as wide as the longest document), before allocating.
  Config planned = cfg;
  planned.train.seq_len = int(longest(d.docs, train_docs));
  res.memory = estimate_train_memory(planned);
  const size_t limit = memory_limit(opt.max_memory, detail::train_device(tc));
  if (!opt.quiet)
    spdlog::info("memory: estimated {}; limit {}", res.memory.str(),
                 limit ? format_bytes(limit) : std::string("unknown"));
  check_memory(res.memory, limit, "this run");

  const std::unique_ptr<Model> model_ptr = detail::make_train_model(cfg, opt.quiet);
  Model& model = *model_ptr;
  AdamW adam(model);
  Workspace ws(model, RunSpec{tc.batch_size, planned.train.seq_len, true, true, tc.recompute});
  Ctx& ctx = ws.ctx();
  adam.plan(ctx, tc);
  Arena stats_arena("loss statistics", model.device());
  const Tensor stats = stats_arena.build([&](Arena& a) {
    return a.add("loss_stats", DType::F64, {tc.grad_accum + 1, 2});
  });
  // Row micro: that micro-batch's loss sum and count; the last row's first value: the squared
  // gradient norm. The step reads them back in one copy, after its update is enqueued.
  const Tensor norm2 = stats.rows(tc.grad_accum, tc.grad_accum + 1).view({2}).rows(0, 1);
  std::vector<double> host_stats(size_t(2 * (tc.grad_accum + 1)));
  // Balanced class weights: w_c = n / (C n_c) over the training split (0 for a class it lacks).
  const int64_t C = cfg.model.task.num_classes;
  std::vector<float> weights(size_t(C), 1.0f);
  Arena weight_arena("class weights", model.device());
  if (tc.class_weights == "balanced") {
    std::vector<int64_t> count(size_t(C), 0);
    for (int64_t i : train_docs) ++count[size_t(d.docs.label[size_t(i)])];
    for (int64_t c = 0; c < C; ++c)
      weights[size_t(c)] =
          count[size_t(c)] ? float(double(train_docs.size()) / (double(C) * double(count[size_t(c)]))) : 0.0f;
    ws.class_weights = weight_arena.build([&](Arena& a) { return a.add("class_weights", DType::F32, {C}); });
    tensor_copy(ws.class_weights, Tensor(weights.data(), DType::F32, Device::CPU, Shape{C}));
  }
  data::DocBatcher batcher(d.docs, train_docs, {tc.batch_size, 32, tc.seed, false});
  const int64_t per_epoch = batcher.batches_per_epoch();
  int64_t step = 0, tokens_seen = 0;
  if (opt.resume) {
    const std::string ck = detail::resume_checkpoint(out);
    if (!ck.empty()) {
      const Config saved = io::load_checkpoint_config(ck);
      WERSA_CHECK(
          model_identity(saved.model) == model_identity(cfg.model), ck,
          ": the checkpoint's model or task section (classes included) differs from the config and data "
          "given; resume with the same model and data");
      const io::CheckpointState st = io::load_checkpoint_state(ck);
      const std::string where = (fs::path(ck) / "state.json").string();
      WERSA_CHECK(st.step <= tc.steps, where, ": step ", st.step, " is beyond train.steps = ", tc.steps,
                  " (raise train.steps to train further)");
      io::load_model_weights(ck, model);
      io::load_optimizer_state(ck, adam.m_arena(), adam.v_arena());
      batcher.seek({st.train_pos / per_epoch, st.train_pos % per_epoch});
      step = st.step, tokens_seen = st.tokens_seen;
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
        "model: {} parameters, classifier over {} classes ({} pooling), attention {} ({}), {} threads ({}), "
        "BLAS kernels {}; {} train / {} validation / {} test documents, {} batches per epoch; workspace {} "
        "(+ {} "
        "scratch)",
        model.num_params(), cfg.model.task.num_classes, cfg.model.task.pooling,
        attention_kind_name(cfg.model.attention.type),
        cfg.model.attention.causal ? "causal" : "bidirectional", threads, omp_wait_setting(),
        blas_kernel_name(), train_docs.size(), val_docs.size(), test_docs.size(), per_epoch,
        format_bytes(ws.bytes()), format_bytes(ws.scratch_bytes()));
  auto save = [&](int64_t done) {
    if (out.empty()) return;
    io::CheckpointContents c;
    c.model = &model;
    c.adam_m = &adam.m_arena();
    c.adam_v = &adam.v_arena();
    c.config = config_to_json(cfg);
    const data::BatchPosition p = batcher.position();
    c.state.step = done;
    c.state.train_pos = p.epoch * per_epoch + p.batch;
    c.state.seed = tc.seed;
    c.state.tokens_seen = tokens_seen;
    if (d.tokenizer->kind() != "byte") c.tokenizer_path = tok_spec;
    res.last_checkpoint = io::save_checkpoint(out.string(), done, c);
    if (tc.keep_last > 0) io::prune_checkpoints(out.string(), tc.keep_last);
    if (!opt.quiet) spdlog::info("checkpoint {}", res.last_checkpoint);
  };
  auto evaluate_split = [&](int64_t done, const std::string& name, const std::vector<int64_t>& docs) {
    const ClassifyEval e = evaluate_classifier(model, d.docs, docs, tc.batch_size);
    if (!opt.quiet) log_eval(done, name, e);
    if (metrics.is_open()) metrics.write(eval_json(done, name, e).dump() + "\n");
    return e;
  };
  int64_t ran = 0;
  StepMeter meter(model.config(), planned.train.seq_len, tc.steps,
                  !opt.quiet && model.device() == Device::CPU);
  for (; step < tc.steps; ++step) {
    if (opt.stop_after >= 0 && ran >= opt.stop_after) break;
    Timer timer;
    model.zero_grads();
    const bool frozen = step < tc.freeze_trunk_steps;
    int64_t real = 0, padded = 0, ndocs = 0;
    for (int micro = 0; micro < tc.grad_accum; ++micro) {
      const std::vector<int64_t> batch = batcher.next();
      const int64_t B = int64_t(batch.size()), T = fill_batch(ws, d.docs, batch);
      classify_forward_device(model, ws, B, T, stats.rows(micro, micro + 1).view({2}));
      double wsum = 0;  // the micro-batch's loss is its weighted mean
      for (int64_t i : batch) wsum += weights[size_t(d.docs.label[size_t(i)])];
      WERSA_ASSERT(wsum > 0, "a training batch whose classes all have weight 0");
      classify_backward(model, ws, B, T, 1.0 / (wsum * tc.grad_accum), !frozen);
      real += data::batch_tokens(d.docs, batch), padded += B * T, ndocs += B;
    }
    adam.grad_norm2(ctx, norm2);
    adam.clip(ctx, norm2, tc.grad_clip);
    const double lr = lr_at(tc, step);
    adam.step(ctx, tc, lr, step + 1, frozen);
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
    tokens_seen += real;
    res.losses.push_back(loss);
    ++ran;
    const int64_t done = step + 1;
    const double tps = double(real) / (ms / 1000.0), pad = 1.0 - double(real) / double(padded);
    if (!opt.quiet && (done % tc.log_every == 0 || done == tc.steps))
      spdlog::info(
          "step {:5d}/{} | loss {:.4f} | norm {:.4f} | lr {:.2e} | {:.1f} ms | {:.1f} docs/s | {:.0f} tok/s "
          "| padding {:.1f}% {}{}",
          done, tc.steps, loss, norm, lr, ms, double(ndocs) / (ms / 1000.0), tps, 100 * pad,
          meter.line(done, double(padded), ms, padded / std::max<int64_t>(1, ndocs)),
          frozen ? " | trunk frozen" : "");
    if (metrics.is_open())
      metrics.write(nlohmann::json{{"step", done},
                                   {"loss", loss},
                                   {"grad_norm", norm},
                                   {"lr", lr},
                                   {"ms", ms},
                                   {"tok_per_s", tps},
                                   {"padding", pad},
                                   {"docs", ndocs}}
                        .dump() +
                    "\n");
    if (!val_docs.empty() && tc.eval_every > 0 && (done % tc.eval_every == 0 || done == tc.steps)) {
      const ClassifyEval e = evaluate_split(done, "val", val_docs);
      res.val_losses.emplace_back(done, e.loss);
      res.val_metrics.push_back({double(done), e.metrics.accuracy, e.metrics.macro_auc});
    }
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

// The classifier (task.type classify, spec "Classification") at model level: every parameter
// gradient against central finite differences in double (causal and bidirectional, both
// poolings, padded batches: bidirectional ones run the attention's padding masks), padding
// invariance (a document's logits alone and in any padded batch, causal and bidirectional, every
// attention kind), the frozen-trunk backward, unlabelled documents, and config rules.
#include <cmath>

#include "testutil.h"
#include "wersa/model/model.h"

using namespace wersa;
using namespace wersa::test;

namespace {

ModelConfig classifier(const std::string& type, const std::string& pooling, bool causal, int classes = 5) {
  ModelConfig m;
  m.vocab_size = 23;
  m.dim = 16;
  m.layers = 2;
  m.heads = 4;
  m.kv_heads = 2;
  m.ffn_dim = 24;
  m.rope_theta = 10000;
  m.init_std = 0.3;  // large weights so every path carries signal into the gradients
  m.attention.type = attention_kind_from_name(type);
  m.attention.features = 8;
  m.attention.levels = 2;
  m.attention.conv_width = 5;
  m.attention.chunk = 4;
  m.attention.causal = causal;
  m.task.type = "classify";
  m.task.num_classes = classes;
  m.task.pooling = pooling;
  return m;
}

int32_t token(uint64_t doc, int64_t t, int64_t V) {
  return int32_t(rng_bits(77, doc, uint64_t(t)) % uint64_t(V));
}

// Documents `docs` (ids into a fixed pool of random documents) with their lengths, padded to T.
void fill(Workspace& ws, const std::vector<int>& docs, const std::vector<int32_t>& lens,
          const std::vector<int32_t>& labels, int64_t T, int64_t V) {
  int32_t* tok = ws.host_ids.host<int32_t>();
  int32_t* len = ws.host_docs.host<int32_t>();
  const int64_t Bmax = ws.batch();
  for (size_t b = 0; b < docs.size(); ++b) {
    for (int64_t t = 0; t < T; ++t)  // padding holds arbitrary tokens: they must not matter
      tok[int64_t(b) * T + t] = t < lens[b] ? token(uint64_t(docs[b]), t, V) : token(999 + b, t, V);
    len[b] = lens[b];
    len[Bmax + int64_t(b)] = labels[b];
  }
  ws.upload_ids();
}

void perturb_non_matrix(Model& m) {
  for (size_t i = 0; i < m.param_decls().size(); ++i) {
    const ParamDecl& decl = m.param_decls()[i];
    if (decl.kind == ParamKind::Matrix) continue;
    const Tensor& t = m.params_arena().tensors()[i];
    for (int64_t j = 0; j < t.numel(); ++j)
      t.ptr<double>()[j] += 0.2 * rng_normal(5, hash_name(decl.name.c_str()), j);
  }
}

void check_gradients(const ModelConfig& cfg, const std::vector<int32_t>& lens, bool weighted = false) {
  Model m(cfg, DType::F64);
  m.init(42);
  perturb_non_matrix(m);
  const int64_t B = int64_t(lens.size()), T = 11;
  Workspace ws(m, RunSpec{B, 13, true, true});  // planned wider than the pass: a batch's own T
  std::vector<int> docs;
  std::vector<int32_t> labels;
  for (int64_t b = 0; b < B; ++b) docs.push_back(int(b)), labels.push_back(int32_t(b % cfg.task.num_classes));
  fill(ws, docs, lens, labels, T, cfg.vocab_size);
  Buf w(DType::F64, {cfg.task.num_classes});
  double wsum = double(B);
  if (weighted) {  // loss = sum_b w[y_b] l_b / sum_b w[y_b]
    for (int64_t c = 0; c < w.n(); ++c) w.set(c, 0.3 + 0.4 * double(c));
    ws.class_weights = w;
    wsum = 0;
    for (int32_t y : labels) wsum += w.get(y);
  }
  m.zero_grads();
  int64_t n = 0;
  const double sum = classify_forward(m, ws, B, T, &n);
  // The reduction: the sum of the documents' losses (weighted by their classes' weights) over
  // B documents (the sum of those weights), against the per-document losses.
  double stats[2];
  std::vector<double> losses(static_cast<size_t>(B));
  tensor_copy(Tensor(stats, DType::F64, Device::CPU, Shape{2}), ws.loss_stats);
  tensor_copy(Tensor(losses.data(), DType::F64, Device::CPU, Shape{B}), ws.losses.rows(0, B));
  double want = 0;
  for (int64_t b = 0; b < B; ++b) want += (weighted ? w.get(labels[size_t(b)]) : 1.0) * losses[size_t(b)];
  EXPECT_EQ(stats[0], sum);
  EXPECT_NEAR(sum, want, 1e-12 * std::fabs(want));
  EXPECT_NEAR(stats[1], wsum, 1e-12 * wsum);
  if (!weighted) EXPECT_EQ(n, B);  // *count: the documents with a label
  classify_backward(m, ws, B, T, 1.0 / wsum);
  auto& P = m.params_arena().tensors();
  auto& G = m.grads_arena().tensors();
  std::vector<std::vector<double>> dir(P.size());
  for (size_t i = 0; i < P.size(); ++i) {
    dir[i].resize(size_t(P[i].numel()));
    for (size_t j = 0; j < dir[i].size(); ++j) dir[i][j] = rng_normal(3, i, j);
  }
  auto loss = [&] {
    const double s = classify_forward(m, ws, B, T);
    double stats[2];
    tensor_copy(Tensor(stats, DType::F64, Device::CPU, Shape{2}), ws.loss_stats);
    EXPECT_NEAR(stats[1], wsum, 1e-12);
    return s / wsum;
  };
  auto move = [&](double h, int only) {
    for (size_t i = 0; i < P.size(); ++i)
      if (only < 0 || int(i) == only)
        for (int64_t j = 0; j < P[i].numel(); ++j) P[i].ptr<double>()[j] += h * dir[i][size_t(j)];
  };
  for (int only = -1; only < int(P.size()); ++only) {
    double analytic = 0, norm2 = 0;
    for (size_t i = 0; i < P.size(); ++i)
      if (only < 0 || int(i) == only)
        for (int64_t j = 0; j < P[i].numel(); ++j)
          analytic += G[i].ptr<double>()[j] * dir[i][size_t(j)],
              norm2 += dir[i][size_t(j)] * dir[i][size_t(j)];
    const double h = 1e-5 / std::sqrt(norm2);
    move(h, only);
    const double lp = loss();
    move(-2 * h, only);
    const double lm = loss();
    move(h, only);
    const double numeric = (lp - lm) / (2 * h);
    const std::string what = only < 0 ? std::string("all parameters") : std::string(P[size_t(only)].name);
    EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::fabs(numeric))) << what;
    EXPECT_GT(std::fabs(numeric), 1e-9) << what << ": no signal; the check would prove nothing";
  }
}

// Logits [C] of each document, run alone (B = 1, T = its length) and in one padded batch.
void check_padding_invariance(const ModelConfig& cfg, DType dt, double tol) {
  Model m(cfg, dt);
  m.init(7);
  const int64_t C = cfg.task.num_classes;
  const std::vector<int32_t> lens = {9, 3, 17, 1, 12};
  const int64_t B = int64_t(lens.size()), T = 17;
  auto logits = [&](Workspace& ws, int64_t b) {
    std::vector<double> out(static_cast<size_t>(C), 0.0);
    Buf host(dt, {ws.batch(), C});
    tensor_copy(host.t.rows(0, ws.batch()), ws.logits);
    for (int64_t c = 0; c < C; ++c) out[size_t(c)] = host.get(b * C + c);
    return out;
  };
  std::vector<std::vector<double>> alone;
  for (int64_t b = 0; b < B; ++b) {
    Workspace ws(m, RunSpec{1, lens[size_t(b)], false, true});
    fill(ws, {int(b)}, {lens[size_t(b)]}, {0}, lens[size_t(b)], cfg.vocab_size);
    classify_forward(m, ws, 1, lens[size_t(b)]);
    alone.push_back(logits(ws, 0));
  }
  // In a batch (documents in another order, padded to 17 and then to 21 in a wider workspace).
  for (int64_t Tpad : {T, T + 4}) {
    Workspace ws(m, RunSpec{B + 1, Tpad + 3, false, true});
    std::vector<int> order = {3, 0, 4, 2, 1};
    std::vector<int32_t> l, lab(size_t(B), 1);
    for (int d : order) l.push_back(lens[size_t(d)]);
    fill(ws, order, l, lab, Tpad, cfg.vocab_size);
    classify_forward(m, ws, B, Tpad);
    for (int64_t i = 0; i < B; ++i) {
      const std::vector<double> got = logits(ws, i), want = alone[size_t(order[size_t(i)])];
      for (int64_t c = 0; c < C; ++c)
        EXPECT_NEAR(got[size_t(c)], want[size_t(c)], tol * (1 + std::fabs(want[size_t(c)])))
            << "document " << order[size_t(i)] << " class " << c << " padded to " << Tpad;
    }
  }
}

}  // namespace

TEST(ClassifierGradients, WersaCausalMeanPaddedBatch) {
  check_gradients(classifier("wersa", "mean", true), {11, 6, 3});
}
TEST(ClassifierGradients, WersaCausalLast) { check_gradients(classifier("wersa", "last", true), {7, 11}); }
TEST(ClassifierGradients, SoftmaxCausalMean) {
  check_gradients(classifier("softmax", "mean", true), {11, 4});
}
TEST(ClassifierGradients, WersaWeightedClasses) {
  check_gradients(classifier("wersa", "mean", true), {11, 6, 3}, true);
}
TEST(ClassifierGradients, LinearBidirectionalMean) {
  check_gradients(classifier("linear", "mean", false, 3), {11, 11});
}
// Bidirectional padded batches: the gate convolution, the linear-attention sums and the softmax
// keys mask the padding, forward and backward.
TEST(ClassifierGradients, WersaBidirectionalMeanPaddedBatch) {
  check_gradients(classifier("wersa", "mean", false), {11, 6, 3});
}
TEST(ClassifierGradients, WersaBidirectionalLastPaddedBatch) {
  check_gradients(classifier("wersa", "last", false), {6, 11, 3});
}
TEST(ClassifierGradients, WersaBidirectionalExpFeaturesPaddedBatch) {
  ModelConfig cfg = classifier("wersa", "mean", false);
  cfg.attention.feature_map = "exp";
  check_gradients(cfg, {11, 6, 3});
}
TEST(ClassifierGradients, LinearBidirectionalMeanPaddedBatch) {
  check_gradients(classifier("linear", "mean", false), {11, 6, 3});
}
TEST(ClassifierGradients, LinearBidirectionalLastPaddedBatch) {
  check_gradients(classifier("linear", "last", false), {3, 11, 6});
}
TEST(ClassifierGradients, SoftmaxBidirectionalMeanPaddedBatch) {
  check_gradients(classifier("softmax", "mean", false), {11, 6, 3});
}
TEST(ClassifierGradients, SoftmaxBidirectionalLastPaddedBatch) {
  check_gradients(classifier("softmax", "last", false), {6, 3, 11});
}

TEST(ClassifierPadding, LogitsAreTheSameAloneAndInAnyPaddedBatch) {
  for (const char* type : {"wersa", "softmax", "linear"})
    for (const char* pool : {"mean", "last"}) {
      SCOPED_TRACE(std::string(type) + " " + pool);
      check_padding_invariance(classifier(type, pool, true), DType::F64, 1e-12);
      check_padding_invariance(classifier(type, pool, true), DType::F32, 2e-5);
    }
}

TEST(ClassifierPadding, BidirectionalLogitsAreTheSameAloneAndInAnyPaddedBatch) {
  for (const char* type : {"wersa", "softmax", "linear"})
    for (const char* pool : {"mean", "last"}) {
      SCOPED_TRACE(std::string(type) + " " + pool + " bidirectional");
      check_padding_invariance(classifier(type, pool, false), DType::F64, 1e-12);
      check_padding_invariance(classifier(type, pool, false), DType::F32, 2e-5);
    }
  ModelConfig exp = classifier("wersa", "mean", false);
  exp.attention.feature_map = "exp";
  SCOPED_TRACE("wersa mean bidirectional, exp features");
  check_padding_invariance(exp, DType::F64, 1e-12);
  check_padding_invariance(exp, DType::F32, 2e-5);
}

// Padded rows contribute exact zeros or nothing at all: whatever the padding tokens, the logits
// are bitwise the same (while a real token does change them).
TEST(ClassifierPadding, BidirectionalPaddingTokensNeverChangeTheLogits) {
  for (const char* type : {"wersa", "softmax", "linear"}) {
    SCOPED_TRACE(type);
    const ModelConfig cfg = classifier(type, "last", false);
    Model m(cfg, DType::F64);
    m.init(9);
    Workspace ws(m, RunSpec{1, 12, false, true});
    auto run = [&](int32_t pad, int64_t change_at) {
      int32_t* tok = ws.host_ids.host<int32_t>();
      for (int64_t t = 0; t < 12; ++t) tok[t] = t < 7 ? token(1, t, cfg.vocab_size) : pad;
      if (change_at >= 0) tok[change_at] = (tok[change_at] + 1) % int32_t(cfg.vocab_size);
      ws.host_docs.host<int32_t>()[0] = 7, ws.host_docs.host<int32_t>()[1] = 0;
      ws.upload_ids();
      classify_forward(m, ws, 1, 12);
      return std::vector<double>(ws.logits.ptr<double>(), ws.logits.ptr<double>() + cfg.task.num_classes);
    };
    const std::vector<double> base = run(0, -1);
    EXPECT_EQ(run(5, -1), base);  // other padding tokens: bitwise the same logits
    EXPECT_EQ(run(0, 9), base);   // a changed padding token: the same
    EXPECT_NE(run(0, 3), base);   // a real token
  }
}

TEST(ClassifierBackward, AFrozenTrunkGetsNoGradientAndTheHeadTheSame) {
  const ModelConfig cfg = classifier("wersa", "mean", true);
  Model m(cfg, DType::F64);
  m.init(3);
  Workspace ws(m, RunSpec{2, 9, true, true});
  fill(ws, {0, 1}, {9, 5}, {2, 4}, 9, cfg.vocab_size);
  m.zero_grads();
  classify_forward(m, ws, 2, 9);
  classify_backward(m, ws, 2, 9, 0.5);
  std::vector<std::vector<double>> full;
  for (const Tensor& g : m.grads_arena().tensors())
    full.emplace_back(g.ptr<double>(), g.ptr<double>() + g.numel());
  m.zero_grads();
  classify_forward(m, ws, 2, 9);
  classify_backward(m, ws, 2, 9, 0.5, false);
  const auto& G = m.grads_arena().tensors();
  int head = 0;
  for (size_t i = 0; i < G.size(); ++i) {
    const bool is_head = m.param_decls()[i].name.rfind(kClassifierPrefix, 0) == 0;
    head += is_head;
    double diff = 0, mag = 0;
    for (int64_t j = 0; j < G[i].numel(); ++j)
      diff = std::max(diff, std::fabs(G[i].ptr<double>()[j] - (is_head ? full[i][size_t(j)] : 0.0))),
      mag = std::max(mag, std::fabs(full[i][size_t(j)]));
    EXPECT_EQ(diff, 0.0) << m.param_decls()[i].name;
    EXPECT_GT(mag, 0.0) << m.param_decls()[i].name << ": the full backward gave it no gradient";
  }
  EXPECT_EQ(head, 2);
}

TEST(ClassifierLoss, UnlabelledDocumentsCountNoLoss) {
  const ModelConfig cfg = classifier("linear", "mean", true);
  Model m(cfg, DType::F64);
  m.init(5);
  Workspace ws(m, RunSpec{3, 6, false, true});
  fill(ws, {0, 1, 2}, {6, 4, 2}, {1, -1, 3}, 6, cfg.vocab_size);
  int64_t n = 0;
  const double sum = classify_forward(m, ws, 3, 6, &n);
  EXPECT_EQ(n, 2);
  const double* l = ws.losses.ptr<double>();
  EXPECT_NEAR(sum, l[0] + l[2], 1e-14);
  // Each loss is the cross-entropy of that document's logits.
  const double* z = ws.logits.ptr<double>();
  const int64_t C = cfg.task.num_classes;
  double mx = -1e300, s = 0;
  for (int64_t c = 0; c < C; ++c) mx = std::max(mx, z[c]);
  for (int64_t c = 0; c < C; ++c) s += std::exp(z[c] - mx);
  EXPECT_NEAR(l[0], mx + std::log(s) - z[1], 1e-12);
}

TEST(ClassifierModel, TheHeadIsPartOfTheModel) {
  ModelConfig cfg = classifier("wersa", "mean", true, 11);
  cfg.tie_embeddings = false;  // a classifier has no LM head, tied or not
  Model m(cfg, DType::F32);
  bool weight = false, bias = false, lm = false;
  for (const ParamDecl& d : m.param_decls()) {
    weight |= d.name == "classifier.weight" && d.shape == Shape{11, 16};
    bias |= d.name == "classifier.bias" && d.shape == Shape{11};
    lm |= d.name == "lm_head.weight";
  }
  EXPECT_TRUE(weight && bias);
  EXPECT_FALSE(lm);
  cfg.task.num_classes = 0;
  expect_error_contains([&] { Model unresolved(cfg, DType::F32); }, "task.num_classes");
}

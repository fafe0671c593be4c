// Whole-model tests: a directional-derivative check of every parameter gradient (double
// precision), causality of the logits, and the spec's invariants at model level.
#include <cmath>

#include "testutil.h"
#include "wersa/model/model.h"

using namespace wersa;
using namespace wersa::test;

namespace {

ModelConfig small_model(const std::string& type, bool tie, double rope) {
  ModelConfig m;
  m.vocab_size = 23;
  m.dim = 16;
  m.layers = 2;
  m.heads = 4;
  m.kv_heads = 2;
  m.ffn_dim = 24;
  m.tie_embeddings = tie;
  m.rope_theta = rope;
  m.init_std = 0.3;  // large weights so every path carries signal into the gradients
  m.attention.type = attention_kind_from_name(type);
  m.attention.features = 8;
  m.attention.levels = 2;
  m.attention.conv_width = 5;
  m.attention.chunk = 4;
  return m;
}

void fill_tokens(Workspace& ws, int64_t V, uint64_t seed) {
  for (int64_t i = 0; i < ws.rows(); ++i) {
    ws.tokens.ptr<int32_t>()[i] = int32_t(rng_bits(seed, 1, uint64_t(i)) % uint64_t(V));
    ws.targets.ptr<int32_t>()[i] = int32_t(rng_bits(seed, 2, uint64_t(i)) % uint64_t(V));
  }
}

// Perturbs all parameters by h * direction (direction restricted to tensor `only` if >= 0).
void perturb(Model& m, const std::vector<std::vector<double>>& dir, double h, int only) {
  auto& P = m.params_arena().tensors();
  for (size_t i = 0; i < P.size(); ++i) {
    if (only >= 0 && int(i) != only) continue;
    double* p = P[i].ptr<double>();
    for (int64_t j = 0; j < P[i].numel(); ++j) p[j] += h * dir[i][j];
  }
}

void check_directional_derivatives(const ModelConfig& cfg, int64_t B = 2, int64_t T = 11,
                                   int64_t head_rows = 0) {
  Model m(cfg, DType::F64);
  m.init(42);
  // Perturb scale weights and norm weights away from their (symmetric) init values.
  for (size_t i = 0; i < m.param_decls().size(); ++i) {
    const ParamDecl& decl = m.param_decls()[i];
    if (decl.kind == ParamKind::Matrix) continue;
    const Tensor& t = m.params_arena().tensors()[i];
    for (int64_t j = 0; j < t.numel(); ++j)
      t.ptr<double>()[j] += 0.2 * rng_normal(5, hash_name(decl.name.c_str()), j);
  }
  // T = 11: not a multiple of the chunk (4) nor of 2^levels
  Workspace ws(m, RunSpec{B, T, true, true, false, head_rows});
  fill_tokens(ws, cfg.vocab_size, 9);
  m.zero_grads();
  int64_t n = 0;
  model_forward(m, ws, &n);
  model_backward(m, ws, 1.0 / double(n));
  auto& P = m.params_arena().tensors();
  auto& G = m.grads_arena().tensors();
  std::vector<std::vector<double>> dir(P.size());
  for (size_t i = 0; i < P.size(); ++i) {
    dir[i].resize(size_t(P[i].numel()));
    for (size_t j = 0; j < dir[i].size(); ++j) dir[i][j] = rng_normal(3, i, j);
  }
  auto loss = [&] {
    int64_t c = 0;
    const double s = model_forward(m, ws, &c);
    return s / double(c);
  };
  for (int only = -1; only < int(P.size()); ++only) {
    double analytic = 0, norm2 = 0;
    for (size_t i = 0; i < P.size(); ++i) {
      if (only >= 0 && int(i) != only) continue;
      for (int64_t j = 0; j < P[i].numel(); ++j) {
        analytic += G[i].ptr<double>()[j] * dir[i][j];
        norm2 += dir[i][j] * dir[i][j];
      }
    }
    // A step of 1e-5 in parameter space whatever the direction's length: the truncation error
    // (~ step^2) and the rounding error (~ 1e-16 / step) both stay far below the tolerance.
    const double h = 1e-5 / std::sqrt(norm2);
    perturb(m, dir, h, only);
    const double lp = loss();
    perturb(m, dir, -2 * h, only);
    const double lm = loss();
    perturb(m, dir, h, only);
    const double numeric = (lp - lm) / (2 * h);
    const std::string what = only < 0 ? std::string("all parameters") : std::string(P[only].name);
    EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::fabs(numeric))) << what;
    EXPECT_GT(std::fabs(numeric), 1e-9) << what << ": no signal; the check would prove nothing";
  }
}

}  // namespace

TEST(ModelGradients, WersaTiedRope) { check_directional_derivatives(small_model("wersa", true, 10000)); }
TEST(ModelGradients, WersaUntiedNoRopeSeparateFeatures) {
  ModelConfig c = small_model("wersa", false, 0);
  c.attention.shared_qk_features = false;
  c.attention.qkv_bias = false;
  check_directional_derivatives(c);
}
// An FFN whose weight matrices end off a 64-byte boundary (9 x 12 doubles): w_up must still follow
// w_gate directly (ParamDecl::follows) for the one GEMM over both, and both get their gradients.
TEST(ModelGradients, WersaOddFfnWidth) {
  ModelConfig c = small_model("wersa", true, 10000);
  c.dim = 12, c.heads = 2, c.kv_heads = 1, c.ffn_dim = 9;
  check_directional_derivatives(c);
}
TEST(ModelGradients, WersaBidirectional) {
  ModelConfig c = small_model("wersa", true, 10000);
  c.attention.causal = false;
  check_directional_derivatives(c);
}
TEST(ModelGradients, Softmax) { check_directional_derivatives(small_model("softmax", true, 10000)); }
TEST(ModelGradients, LinearTiedRope) { check_directional_derivatives(small_model("linear", true, 10000)); }
TEST(ModelGradients, LinearUntiedNoRopeSeparateFeatures) {
  ModelConfig c = small_model("linear", false, 0);
  c.attention.shared_qk_features = false;
  c.attention.qkv_bias = false;
  check_directional_derivatives(c);
}
TEST(ModelGradients, WersaExpFeatureMap) {
  ModelConfig c = small_model("wersa", true, 10000);
  c.attention.feature_map = "exp";
  check_directional_derivatives(c);
}
TEST(ModelGradients, LinearExpFeatureMapSeparateFeatures) {
  ModelConfig c = small_model("linear", false, 0);
  c.attention.feature_map = "exp";
  c.attention.shared_qk_features = false;
  check_directional_derivatives(c);
}
TEST(ModelGradients, LinearBidirectional) {
  ModelConfig c = small_model("linear", true, 10000);
  c.attention.causal = false;
  check_directional_derivatives(c);
}

// The LM head of a backward workspace in tiles of 5 rows (22 rows: 4 full tiles and one of 2,
// crossing the boundary between the sequences), tied and untied.
TEST(ModelGradients, HeadInRowTilesTied) {
  check_directional_derivatives(small_model("wersa", true, 10000), 2, 11, 5);
}
TEST(ModelGradients, HeadInRowTilesUntied) {
  check_directional_derivatives(small_model("linear", false, 10000), 2, 11, 5);
}

// Tiled head against one tile: the same losses and the same gradients to rounding; over two
// micro-batches accumulated with different scales, the sum of each one's own gradients (each
// forward starts its head gradient afresh). The backward workspace keeps one tile of logits.
TEST(ModelBackward, HeadTilesGiveTheGradientsOfOneTile) {
  for (const bool tie : {true, false}) {
    const ModelConfig cfg = small_model("wersa", tie, 10000);
    Model m(cfg, DType::F64);
    m.init(5);
    const int64_t B = 3, T = 13, N = B * T;
    const double scales[2] = {0.25, 0.5};
    // Gradients of the micro-batches first..last-1 accumulated in one workspace; their losses.
    auto run = [&](int64_t head_rows, int first, int last, std::vector<double>& losses) {
      Workspace ws(m, RunSpec{B, T, true, true, false, head_rows});
      EXPECT_EQ(ws.logits.dim(0), head_rows > 0 ? head_rows : N);
      m.zero_grads();
      losses.clear();
      for (int micro = first; micro < last; ++micro) {
        fill_tokens(ws, cfg.vocab_size, 11 + uint64_t(micro));
        ws.targets.ptr<int32_t>()[3 + micro] = -1;  // an ignored position
        model_forward(m, ws);
        for (int64_t i = 0; i < N; ++i) losses.push_back(ws.losses.ptr<double>()[i]);
        model_backward(m, ws, scales[micro]);
      }
      std::vector<double> g;
      for (const Tensor& t : m.grads_arena().tensors())
        for (int64_t j = 0; j < t.numel(); ++j) g.push_back(t.ptr<double>()[j]);
      return g;
    };
    std::vector<double> l1, l7, unused;
    const std::vector<double> one = run(0, 0, 2, l1), tiled = run(7, 0, 2, l7);
    const std::vector<double> a = run(7, 0, 1, unused), b = run(7, 1, 2, unused);
    ASSERT_EQ(one.size(), tiled.size());
    for (size_t i = 0; i < l1.size(); ++i) ASSERT_NEAR(l7[i], l1[i], 1e-13 * std::max(1.0, l1[i])) << i;
    // Forward only: tiles of 5 rows against every row's logits kept, on the second micro-batch.
    Workspace kept(m, RunSpec{B, T, false, true, false, 0, true}),
        tiles(m, RunSpec{B, T, false, true, false, 5});
    EXPECT_EQ(kept.logits.dim(0), N);
    EXPECT_EQ(tiles.logits.dim(0), 5);
    for (Workspace* w : {&kept, &tiles}) {
      fill_tokens(*w, cfg.vocab_size, 12);
      w->targets.ptr<int32_t>()[4] = -1;
    }
    int64_t ck = 0, ct = 0;
    const double sk = model_forward(m, kept, &ck), st = model_forward(m, tiles, &ct);
    EXPECT_EQ(ck, N - 1);
    EXPECT_EQ(ct, N - 1);
    EXPECT_NEAR(st, sk, 1e-13 * std::fabs(sk));
    for (int64_t i = 0; i < N; ++i) {
      ASSERT_NEAR(tiles.losses.ptr<double>()[i], kept.losses.ptr<double>()[i],
                  1e-13 * std::max(1.0, l1[size_t(i)]))
          << i;
      ASSERT_NEAR(tiles.losses.ptr<double>()[i], l1[size_t(N + i)], 1e-13 * std::max(1.0, l1[size_t(N + i)]))
          << i;
    }
    double scale = 0;
    for (const double x : one) scale = std::max(scale, std::fabs(x));
    ASSERT_GT(scale, 1e-3);
    for (size_t i = 0; i < one.size(); ++i) {
      ASSERT_NEAR(tiled[i], one[i], 1e-12 * scale) << "tie " << tie << " " << i;
      ASSERT_NEAR(tiled[i], a[i] + b[i], 1e-12 * scale) << "tie " << tie << " " << i;
    }
  }
}

// The loss scale of model_backward (lm_head_bwd: scale_inplace of dL/dxf, axpy of the head
// weight's gradient) reaches every parameter's gradient: a scale of -0.37 gives -0.37 times the
// gradients of a scale of 1, and the directional derivative of -0.37 x the loss sum.
TEST(ModelBackward, TheLossScaleScalesEveryGradient) {
  for (const bool tie : {true, false}) {
    Model m(small_model("wersa", tie, 10000), DType::F64);
    m.init(8);
    Workspace ws(m, RunSpec{2, 9, true, true});
    fill_tokens(ws, m.config().vocab_size, 4);
    auto grads = [&](double scale) {
      m.zero_grads();
      model_forward(m, ws);
      model_backward(m, ws, scale);
      std::vector<double> g;
      for (const Tensor& t : m.grads_arena().tensors())
        for (int64_t j = 0; j < t.numel(); ++j) g.push_back(t.ptr<double>()[j]);
      return g;
    };
    const std::vector<double> one = grads(1.0), scaled = grads(-0.37);
    double top = 0;
    for (double v : one) top = std::max(top, std::fabs(v));
    ASSERT_GT(top, 1e-3);
    for (size_t i = 0; i < one.size(); ++i)
      ASSERT_NEAR(scaled[i], -0.37 * one[i], 1e-13 * top) << "tie " << tie << " " << i;
    // Along a random direction: -0.37 d(sum of losses) by central differences.
    auto& P = m.params_arena().tensors();
    std::vector<std::vector<double>> dir(P.size());
    double analytic = 0, norm2 = 0;
    size_t k = 0;
    for (size_t i = 0; i < P.size(); ++i)
      for (int64_t j = 0; j < P[i].numel(); ++j, ++k) {
        dir[i].push_back(rng_normal(6, i, uint64_t(j)));
        analytic += scaled[k] * dir[i].back(), norm2 += dir[i].back() * dir[i].back();
      }
    const double h = 1e-5 / std::sqrt(norm2);
    perturb(m, dir, h, -1);
    const double lp = model_forward(m, ws);
    perturb(m, dir, -2 * h, -1);
    const double lm = model_forward(m, ws);
    perturb(m, dir, h, -1);
    const double numeric = -0.37 * (lp - lm) / (2 * h);
    EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::fabs(numeric))) << "tie " << tie;
  }
}

// From 4096 rows on, a block runs its FFN half in tiles of 2048 rows (block.cpp): 2 x 2100 rows
// make two full tiles and a partial one, and every gradient must still match the loss. With the
// exp feature map, the central differences of check_directional_derivatives.
TEST(ModelGradients, LongPassFfnInRowTiles) {
  ModelConfig c = small_model("wersa", true, 10000);
  c.attention.feature_map = "exp";
  check_directional_derivatives(c, 2, 2100);
}

// The same pass with ReLU features. There, central differences with a step of 1e-5 disagree with
// the gradients by up to 3e-3 (with steps of 1e-8 too, where rounding dominates): among the ~2.7e5
// pre-activations z Omega some lie within a step of their kink, and a query whose features are
// nearly all zero has den = phiq . z + eps near eps, so the loss bends sharply there. So each
// direction is first shown to be kink-free within its step: the difference quotients at steps
// 2e-6 and 1e-6 must agree (a kink or a sharp bend inside the step makes them differ); a
// direction that fails is replaced by another (seeded), and no more than a few may fail. Then the
// gradient must match the quotient at 1e-6.
TEST(ModelGradients, LongPassFfnInRowTilesReluFeatures) {
  const ModelConfig cfg = small_model("wersa", true, 10000);
  ASSERT_EQ(cfg.attention.feature_map, "relu");
  Model m(cfg, DType::F64);
  m.init(42);
  for (size_t i = 0; i < m.param_decls().size(); ++i) {
    const ParamDecl& decl = m.param_decls()[i];
    if (decl.kind == ParamKind::Matrix) continue;
    const Tensor& t = m.params_arena().tensors()[i];
    for (int64_t j = 0; j < t.numel(); ++j)
      t.ptr<double>()[j] += 0.2 * rng_normal(5, hash_name(decl.name.c_str()), j);
  }
  Workspace ws(m, RunSpec{2, 2100, true, true});
  fill_tokens(ws, cfg.vocab_size, 9);
  m.zero_grads();
  int64_t n = 0;
  model_forward(m, ws, &n);
  model_backward(m, ws, 1.0 / double(n));
  auto& P = m.params_arena().tensors();
  auto& G = m.grads_arena().tensors();
  auto loss = [&] {
    int64_t c = 0;
    const double s = model_forward(m, ws, &c);
    return s / double(c);
  };
  int replaced = 0;
  for (int only = -1; only < int(P.size()); ++only) {
    const std::string what = only < 0 ? std::string("all parameters") : std::string(P[size_t(only)].name);
    bool checked = false;
    for (uint64_t seed = 3; seed < 8 && !checked; ++seed) {
      std::vector<std::vector<double>> dir(P.size());
      double analytic = 0, norm2 = 0;
      for (size_t i = 0; i < P.size(); ++i) {
        dir[i].resize(size_t(P[i].numel()));
        if (only >= 0 && int(i) != only) continue;
        for (size_t j = 0; j < dir[i].size(); ++j) {
          dir[i][j] = rng_normal(seed, i, j);
          analytic += G[i].ptr<double>()[j] * dir[i][j];
          norm2 += dir[i][j] * dir[i][j];
        }
      }
      auto quotient = [&](double step) {
        const double h = step / std::sqrt(norm2);
        perturb(m, dir, h, only);
        const double lp = loss();
        perturb(m, dir, -2 * h, only);
        const double lm = loss();
        perturb(m, dir, h, only);
        return (lp - lm) / (2 * h);
      };
      const double wide = quotient(2e-6), numeric = quotient(1e-6);
      const double tol = 1e-6 * std::max(1.0, std::fabs(numeric));
      if (std::fabs(wide - numeric) > tol) {  // a kink or a sharp bend within the step
        ++replaced;
        std::printf("%s, direction %d: quotients %.10g (2e-6) and %.10g (1e-6) differ; another direction\n",
                    what.c_str(), int(seed), wide, numeric);
        continue;
      }
      checked = true;
      EXPECT_NEAR(analytic, numeric, tol) << what << ", direction " << seed;
      EXPECT_GT(std::fabs(numeric), 1e-9) << what << ": no signal; the check would prove nothing";
    }
    EXPECT_TRUE(checked) << what << ": every direction has a kink within its step";
  }
  EXPECT_LE(replaced, int(P.size()) / 4) << "too many directions with kinks within the step";
}

// The tiled pass computes each row's logits as the untiled one does: the 2 x 2100-row pass
// against each sequence alone (2100 rows, one tile).
TEST(ModelForward, RowTilesGiveTheLogitsOfOnePass) {
  const ModelConfig cfg = small_model("wersa", true, 10000);
  Model m(cfg, DType::F64, Device::CPU, false);
  m.init(3);
  const int64_t T = 2100, V = cfg.vocab_size;
  Workspace both(m, RunSpec{2, T, false, true, false, 0, true}),
      one(m, RunSpec{1, T, false, true, false, 0, true});
  fill_tokens(both, V, 4);
  model_forward(m, both);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      one.tokens.ptr<int32_t>()[t] = both.tokens.ptr<int32_t>()[b * T + t];
      one.targets.ptr<int32_t>()[t] = both.targets.ptr<int32_t>()[b * T + t];
    }
    model_forward(m, one);
    for (int64_t i = 0; i < T * V; ++i) {
      const double x = both.logits.ptr<double>()[b * T * V + i], y = one.logits.ptr<double>()[i];
      ASSERT_NEAR(x, y, 1e-12 * std::max(1.0, std::fabs(y))) << "sequence " << b << " row " << i / V;
    }
  }
}

// Invariant 1: changing tokens at positions >= t0 leaves logits and losses at < t0 unchanged.
TEST(ModelCausality, FutureTokensDoNotChangeThePast) {
  for (const char* type : {"wersa", "softmax", "linear", "wersa-exp", "linear-exp"}) {
    const std::string t(type);
    const bool exp_map = t.size() > 4 && t.substr(t.size() - 4) == "-exp";
    ModelConfig cfg = small_model(exp_map ? t.substr(0, t.size() - 4) : t, true, 10000);
    if (exp_map) cfg.attention.feature_map = "exp";
    cfg.attention.chunk = 8;
    Model m(cfg, DType::F32, Device::CPU, false);
    m.init(7);
    const int64_t T = 37;
    const RunSpec spec{1, T, false, true, false, 0, true};  // every row's logits kept
    Workspace a(m, spec), b(m, spec);
    fill_tokens(a, cfg.vocab_size, 1);
    for (int64_t t0 : {1, 5, 8, 9, 20, 36}) {
      fill_tokens(b, cfg.vocab_size, 1);
      for (int64_t t = t0; t < T; ++t) b.tokens.ptr<int32_t>()[t] = (b.tokens.ptr<int32_t>()[t] + 1 + t) % 23;
      model_forward(m, a);
      model_forward(m, b);
      const int64_t V = cfg.vocab_size;
      for (int64_t i = 0; i < t0 * V; ++i)
        ASSERT_EQ(a.logits.ptr<float>()[i], b.logits.ptr<float>()[i]) << type << " t0=" << t0 << " i=" << i;
      bool changed = false;
      for (int64_t i = t0 * V; i < T * V; ++i)
        changed |= a.logits.ptr<float>()[i] != b.logits.ptr<float>()[i];
      EXPECT_TRUE(changed) << type << ": the change at t0=" << t0 << " had no effect at all";
    }
  }
}

TEST(ModelCausality, BidirectionalModeDoesSeeTheFuture) {
  ModelConfig cfg = small_model("wersa", true, 10000);
  cfg.attention.causal = false;
  Model m(cfg, DType::F32, Device::CPU, false);
  m.init(7);
  const RunSpec spec{1, 16, false, true, false, 0, true};
  Workspace a(m, spec), b(m, spec);
  fill_tokens(a, cfg.vocab_size, 1);
  fill_tokens(b, cfg.vocab_size, 1);
  b.tokens.ptr<int32_t>()[15] = (b.tokens.ptr<int32_t>()[15] + 1) % 23;
  model_forward(m, a);
  model_forward(m, b);
  EXPECT_NE(a.logits.ptr<float>()[0], b.logits.ptr<float>()[0]);
}

TEST(ModelMove, ACopyOnAnotherDeviceIsOneCallAndExact) {
  ModelConfig cfg = small_model("wersa", false, 10000);
  Model a(cfg, DType::F32);
  a.init(11);
  const Model b(a, Device::CPU);  // the same mechanism as a move to CUDA: one copy per arena
  EXPECT_TRUE(b.trainable());
  ASSERT_EQ(a.params_arena().tensors().size(), b.params_arena().tensors().size());
  for (size_t i = 0; i < a.params_arena().tensors().size(); ++i) {
    const Tensor& x = a.params_arena().tensors()[i];
    const Tensor& y = b.params_arena().tensors()[i];
    ASSERT_EQ(x.name, y.name);
    for (int64_t j = 0; j < x.numel(); ++j) ASSERT_EQ(x.host<float>()[j], y.host<float>()[j]) << x.name;
  }
  for (size_t i = 0; i < a.buffers_arena().tensors().size(); ++i) {
    const Tensor& x = a.buffers_arena().tensors()[i];
    const Tensor& y = b.buffers_arena().tensors()[i];
    for (int64_t j = 0; j < x.numel(); ++j) ASSERT_EQ(x.host<float>()[j], y.host<float>()[j]) << x.name;
  }
  if (!cuda_available()) EXPECT_THROW(Model(a, Device::CUDA), Error);  // a one-line error, not a crash
}

// f32 against f64 token by token and gradient by gradient at widths where the CPU kernels take
// their vector paths (channels a multiple of 16, sequences long enough for the gate
// convolution's interior blocks of 8 rows with 33 taps, the cross-entropy row maximum in lanes,
// several head tiles and Haar tiles of 128 rows). The f32 kernels compute in f32; measured
// 2026-12-03: per-token losses within 5.5e-7, gradients within 2.4e-6 relative (tolerances 10x).
TEST(ModelForward, FloatMatchesDoubleTokenByTokenAtTheKernelsWidths) {
  ModelConfig cfg = small_model("wersa", true, 10000);
  cfg.vocab_size = 1000, cfg.dim = 64, cfg.heads = 4, cfg.kv_heads = 4, cfg.ffn_dim = 96;
  cfg.attention.features = 16, cfg.attention.levels = 3, cfg.attention.conv_width = 33;
  cfg.attention.chunk = 16;
  cfg.init_std = 0.05;
  Model md(cfg, DType::F64), mf(cfg, DType::F32);
  md.init(7);
  mf.init(7);
  const int64_t B = 2, T = 200;
  Workspace wd(md, RunSpec{B, T, true, true, false, 100}), wf(mf, RunSpec{B, T, true, true, false, 100});
  fill_tokens(wd, cfg.vocab_size, 8);
  fill_tokens(wf, cfg.vocab_size, 8);
  md.zero_grads();
  mf.zero_grads();
  int64_t n = 0;
  model_forward(md, wd, &n);
  model_forward(mf, wf);
  model_backward(md, wd, 1.0 / double(n));
  model_backward(mf, wf, 1.0 / double(n));
  double worst = 0;
  for (int64_t i = 0; i < B * T; ++i)
    worst = std::max(worst, std::fabs(double(wf.losses.ptr<float>()[i]) - wd.losses.ptr<double>()[i]));
  EXPECT_LT(worst, 5e-6) << "largest per-token loss difference (losses near log 1000 = 6.9)";
  auto& Gd = md.grads_arena().tensors();
  auto& Gf = mf.grads_arena().tensors();
  ASSERT_EQ(Gd.size(), Gf.size());
  for (size_t i = 0; i < Gd.size(); ++i) {
    double num = 0, den = 0;
    for (int64_t j = 0; j < Gd[i].numel(); ++j) {
      const double d = Gd[i].ptr<double>()[j], f = double(Gf[i].ptr<float>()[j]);
      num += (f - d) * (f - d), den += d * d;
    }
    EXPECT_LT(std::sqrt(num / std::max(den, 1e-300)), 2e-5) << Gd[i].name;
  }
}

TEST(ModelForward, FloatMatchesDouble) {
  ModelConfig cfg = small_model("wersa", true, 10000);
  cfg.init_std = 0.05;
  Model md(cfg, DType::F64, Device::CPU, false), mf(cfg, DType::F32, Device::CPU, false);
  md.init(3);
  mf.init(3);
  Workspace wd(md, 2, 29, false), wf(mf, 2, 29, false);
  fill_tokens(wd, cfg.vocab_size, 4);
  fill_tokens(wf, cfg.vocab_size, 4);
  const double ld = model_forward(md, wd), lf = model_forward(mf, wf);
  EXPECT_NEAR(lf, ld, 1e-4 * std::fabs(ld));
}

// Generation: token-by-token decoding reproduces the parallel forward (spec invariant 4) for
// awkward prompt lengths, WERSA and softmax, GQA and RoPE; chunked prefill equals the one-shot
// forward; prefill + decode equals pure decode; greedy and seeded sampling are deterministic and
// independent of the thread count; a saved and reloaded state continues exactly; the softmax
// context limit is a clear error; the sampler's filters.
#include <cmath>

#include "testutil.h"
#include "wersa/backend/backend.h"
#include "wersa/io/state_file.h"
#include "wersa/model/generate.h"
#include "wersa/model/sampler.h"

using namespace wersa;
using namespace wersa::test;

namespace {

ModelConfig gen_model(const std::string& type, int conv_width = 5, int levels = 3) {
  ModelConfig m;
  m.vocab_size = 37;
  m.dim = 32;
  m.layers = 2;
  m.heads = 4;
  m.kv_heads = 2;  // GQA
  m.ffn_dim = 48;
  m.rope_theta = 10000.0;
  m.init_std = 0.2;  // large enough that every path moves the logits
  // "wersa-exp", "linear-exp": the kind with the exp feature map.
  const bool exp_map = type.size() > 4 && type.substr(type.size() - 4) == "-exp";
  m.attention.type = attention_kind_from_name(exp_map ? type.substr(0, type.size() - 4) : type);
  if (exp_map) m.attention.feature_map = "exp";
  m.attention.features = 8;
  m.attention.levels = levels;
  m.attention.conv_width = conv_width;
  m.attention.chunk = 16;
  return m;
}

// A model with its non-matrix parameters moved off their symmetric init values.
std::unique_ptr<Model> make_model(const ModelConfig& c, DType dt, uint64_t seed = 42) {
  auto m = std::make_unique<Model>(c, dt, Device::CPU, false);
  m->init(seed);
  const auto& params = m->params_arena().tensors();
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& t = params[i];
    const ParamDecl& decl = m->param_decls()[i];
    if (decl.kind == ParamKind::Matrix) continue;
    for (int64_t j = 0; j < t.numel(); ++j) {
      const double dv = 0.2 * rng_normal(seed + 5, hash_name(decl.name.c_str()), uint64_t(j));
      if (dt == DType::F64)
        t.ptr<double>()[j] += dv;
      else
        t.ptr<float>()[j] += float(dv);
    }
  }
  return m;
}

std::vector<int32_t> tokens_of(int64_t n, int64_t V, uint64_t seed) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = int32_t(rng_bits(seed, 3, uint64_t(i)) % uint64_t(V));
  return t;
}

double get(const Tensor& t, int64_t i) {
  return t.dtype == DType::F64 ? t.ptr<double>()[i] : double(t.ptr<float>()[i]);
}

// Logits of model_forward over the whole sequence, [T, V] as doubles.
std::vector<double> forward_logits(Model& m, const std::vector<int32_t>& toks) {
  const int64_t T = int64_t(toks.size()), V = m.config().vocab_size;
  Workspace ws(m, RunSpec{1, T, false, true, false, 0, true});  // every row's logits kept
  for (int64_t i = 0; i < T; ++i) {
    ws.tokens.ptr<int32_t>()[i] = toks[size_t(i)];
    ws.targets.ptr<int32_t>()[i] = -1;
  }
  model_forward(m, ws);
  std::vector<double> out(static_cast<size_t>(T * V));
  for (int64_t i = 0; i < T * V; ++i) out[size_t(i)] = get(ws.logits, i);
  return out;
}

// max |a - b| / max |b| over one row of V logits.
double row_err(const Tensor& got, const std::vector<double>& want, int64_t row, int64_t V) {
  double err = 0, scale = 1e-30;
  for (int64_t v = 0; v < V; ++v) {
    const double w = want[size_t(row * V + v)];
    err = std::max(err, std::fabs(get(got, v) - w));
    scale = std::max(scale, std::fabs(w));
  }
  return err / scale;
}

double tol(DType dt) { return dt == DType::F64 ? 1e-10 : 1e-4; }

}  // namespace

class DecodeVsForward : public ::testing::TestWithParam<std::tuple<std::string, int64_t>> {};

TEST_P(DecodeVsForward, TokenByTokenReproducesTheParallelLogits) {
  const auto [type, T] = GetParam();
  for (DType dt : {DType::F32, DType::F64}) {
    if (dt == DType::F64 && T > 100) continue;  // the f64 runs check the math; f32 the bound
    auto m = make_model(gen_model(type), dt);
    const int64_t V = m->config().vocab_size;
    const auto toks = tokens_of(T, V, uint64_t(T));
    const auto want = forward_logits(*m, toks);
    DecodeState st(*m, DecodeOptions{T, 512});
    double worst = 0;
    for (int64_t t = 0; t < T; ++t)
      worst = std::max(worst, row_err(decode_step(*m, st, toks[size_t(t)]), want, t, V));
    EXPECT_LT(worst, tol(dt)) << type << " T " << T << " " << dtype_name(dt);
    EXPECT_EQ(st.pos(), T);
  }
}

INSTANTIATE_TEST_SUITE_P(Lengths, DecodeVsForward,
                         ::testing::Combine(::testing::Values("wersa", "softmax", "linear", "wersa-exp",
                                                              "linear-exp"),
                                            ::testing::Values(1, 63, 64, 65, 1000)));

TEST(Generate, WideConvAndDeepHaarDecodeLikeTheForward) {
  // K = 33 (the default) is longer than some prompts; L = 5 has a 31-row ring.
  for (int64_t T : {7, 70}) {
    auto m = make_model(gen_model("wersa", 33, 5), DType::F64);
    const auto toks = tokens_of(T, 37, 11);
    const auto want = forward_logits(*m, toks);
    DecodeState st(*m);
    double worst = 0;
    for (int64_t t = 0; t < T; ++t)
      worst = std::max(worst, row_err(decode_step(*m, st, toks[size_t(t)]), want, t, 37));
    EXPECT_LT(worst, 1e-10) << "T " << T;
  }
}

TEST(Generate, ChunkedPrefillEqualsOneShotForward) {
  const int64_t T = 150;
  for (const char* type : {"wersa", "softmax", "linear"})
    for (DType dt : {DType::F64, DType::F32})
      for (int64_t chunk : {1, 7, 64, 1000}) {
        auto m = make_model(gen_model(type), dt);
        const int64_t V = m->config().vocab_size;
        const auto toks = tokens_of(T, V, 5);
        const auto want = forward_logits(*m, toks);
        DecodeState st(*m, DecodeOptions{T, chunk});
        Buf all(dt, {T, V});
        const Tensor& last = prefill(*m, st, toks, all);
        double worst = 0;
        for (int64_t t = 0; t < T; ++t)
          worst = std::max(worst, row_err(all.t.rows(t, t + 1).view({V}), want, t, V));
        EXPECT_LT(worst, tol(dt)) << type << " chunk " << chunk << " " << dtype_name(dt);
        EXPECT_LT(row_err(last, want, T - 1, V), tol(dt));
        EXPECT_EQ(st.pos(), T);
        // Without all_logits, only the last row is computed: the same values.
        DecodeState st2(*m, DecodeOptions{T, chunk});
        EXPECT_LT(row_err(prefill(*m, st2, toks), want, T - 1, V), tol(dt));
      }
}

TEST(Generate, PrefillThenDecodeEqualsPureDecode) {
  const int64_t N = 150, P = 100;
  for (const char* type : {"wersa", "softmax", "linear"})
    for (DType dt : {DType::F64, DType::F32}) {
      auto m = make_model(gen_model(type), dt);
      const int64_t V = m->config().vocab_size;
      const auto toks = tokens_of(N, V, 9);
      DecodeState a(*m, DecodeOptions{N, 32}), b(*m, DecodeOptions{N, 32});
      prefill(*m, a, std::vector<int32_t>(toks.begin(), toks.begin() + P));
      for (int64_t t = 0; t < P - 1; ++t) decode_step(*m, b, toks[size_t(t)]);
      std::vector<double> pure(static_cast<size_t>(V));
      double worst = 0;
      for (int64_t t = P - 1; t < N; ++t) {
        const Tensor& lb = decode_step(*m, b, toks[size_t(t)]);
        for (int64_t v = 0; v < V; ++v) pure[size_t(v)] = get(lb, v);
        if (t >= P) decode_step(*m, a, toks[size_t(t)]);
        worst = std::max(worst, row_err(a.logits(), pure, 0, V));
      }
      EXPECT_LT(worst, tol(dt)) << type << " " << dtype_name(dt);
      // The states themselves agree.
      const auto& sa = a.state_tensors();
      const auto& sb = b.state_tensors();
      ASSERT_EQ(sa.size(), sb.size());
      for (size_t i = 0; i < sa.size(); ++i) {
        double err = 0, scale = 1e-30;
        for (int64_t j = 0; j < sa[i].numel(); ++j) {
          err = std::max(err, std::fabs(get(sa[i], j) - get(sb[i], j)));
          scale = std::max(scale, std::fabs(get(sb[i], j)));
        }
        EXPECT_LT(err / scale, tol(dt)) << sa[i].name;
      }
    }
}

TEST(Generate, GreedyAndSeededSamplingAreDeterministicForAnyThreadCount) {
  auto m = make_model(gen_model("wersa"), DType::F32);
  const auto prompt = tokens_of(20, 37, 1);
  auto run = [&](int threads, const SamplerOptions& so) {
    set_cpu_threads(threads);
    DecodeState st(*m);
    Sampler sampler(so);
    std::vector<int32_t> out;
    GenerateOptions go;
    go.n_predict = 60;
    generate(*m, st, sampler, prompt, go, [&](int32_t t) { out.push_back(t); });
    return out;
  };
  SamplerOptions greedy;
  greedy.temp = 0;
  SamplerOptions sampled;
  sampled.seed = 7;
  sampled.top_k = 0;
  sampled.min_p = 0;
  const auto g1 = run(1, greedy), g2 = run(2, greedy), g3 = run(2, greedy);
  EXPECT_EQ(g1.size(), 60u);
  EXPECT_EQ(g1, g2);
  EXPECT_EQ(g2, g3);
  const auto s1 = run(1, sampled), s2 = run(2, sampled);
  EXPECT_EQ(s1, s2);
  sampled.seed = 8;
  EXPECT_NE(run(2, sampled), s1);  // the seed matters
  set_cpu_threads(0);
}

TEST(Generate, SavedAndReloadedStateContinuesExactly) {
  const std::string path = testing::TempDir() + "/wersa_state.safetensors";
  for (const char* type : {"wersa", "softmax", "linear"}) {
    auto m = make_model(gen_model(type), DType::F32);
    const auto prompt = tokens_of(77, 37, 2);
    SamplerOptions so;
    so.seed = 3;
    GenerateOptions go;
    go.n_predict = 10;
    DecodeState a(*m, DecodeOptions{200, 32});
    Sampler sa(so);
    generate(*m, a, sa, prompt, go);
    save_decode_state(*m, a, path);
    // Continue the original and a reloaded copy; both must give identical tokens and logits.
    DecodeState b(*m, DecodeOptions{200, 32});
    load_decode_state(*m, b, path);
    EXPECT_EQ(b.pos(), a.pos());
    EXPECT_EQ(b.tokens(), a.tokens());
    go.n_predict = 30;
    std::vector<int32_t> ta, tb;
    Sampler s1(so), s2(so);
    generate(*m, a, s1, {}, go, [&](int32_t t) { ta.push_back(t); });
    generate(*m, b, s2, {}, go, [&](int32_t t) { tb.push_back(t); });
    EXPECT_EQ(ta, tb) << type;
    for (int64_t v = 0; v < 37; ++v) ASSERT_EQ(get(a.logits(), v), get(b.logits(), v)) << type;
    // Another model (other weights) refuses the file.
    auto other = make_model(gen_model(type), DType::F32, 43);
    DecodeState c(*other, DecodeOptions{200, 32});
    try {
      load_decode_state(*other, c, path);
      ADD_FAILURE() << "loaded a state of another model";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
    }
    if (std::string(type) == "softmax") {  // a state longer than the context
      DecodeState small(*m, DecodeOptions{50, 32});
      EXPECT_THROW(load_decode_state(*m, small, path), Error);
    }
  }
}

TEST(Generate, SoftmaxPromptLongerThanTheContextIsAClearError) {
  auto m = make_model(gen_model("softmax"), DType::F32);
  DecodeState st(*m, DecodeOptions{16, 8});
  try {
    prefill(*m, st, tokens_of(17, 37, 1));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("context of 16"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_EQ(st.pos(), 0);
  prefill(*m, st, tokens_of(16, 37, 1));
  EXPECT_THROW(decode_step(*m, st, 1), Error);  // full
  // Generation stops at the limit instead of failing.
  st.reset();
  Sampler s(SamplerOptions{});
  GenerateOptions go;
  go.n_predict = 100;
  const GenerateStats r = generate(*m, st, s, tokens_of(10, 37, 1), go);
  EXPECT_TRUE(r.context_full);
  EXPECT_EQ(r.generated, 6);
  // A softmax state needs a context; WERSA's is unlimited by default.
  EXPECT_THROW(DecodeState(*m, DecodeOptions{0, 8}), Error);
  auto w = make_model(gen_model("wersa"), DType::F32);
  DecodeState ws(*w);
  EXPECT_EQ(ws.context(), 0);
  EXPECT_THROW(decode_step(*w, ws, 37), Error);  // outside the vocabulary
  EXPECT_THROW(decode_step(*m, ws, 1), Error);   // a state of another model
}

TEST(Generate, WersaStateSizeDoesNotDependOnTheContext) {
  auto m = make_model(gen_model("wersa"), DType::F32);
  DecodeState a(*m), b(*m, DecodeOptions{100000, 64});
  EXPECT_EQ(a.state_bytes(), b.state_bytes());
  auto s = make_model(gen_model("softmax"), DType::F32);
  DecodeState c(*s, DecodeOptions{100, 64}), d(*s, DecodeOptions{1000, 64});
  EXPECT_GT(d.state_bytes(), 5 * c.state_bytes());
}

TEST(Generate, LinearStateIsTheSumsOnly) {
  auto l = make_model(gen_model("linear"), DType::F32);
  DecodeState a(*l), b(*l, DecodeOptions{100000, 64});
  EXPECT_EQ(a.state_bytes(), b.state_bytes());
  // Per layer S [Hkv, m, d] and z [Hkv, m] (2 kv heads, m 8, d 8), each 64-byte aligned.
  EXPECT_EQ(a.state_tensors().size(), 4u);
  EXPECT_EQ(a.state_bytes(), 2 * (512 + 64));
  auto w = make_model(gen_model("wersa"), DType::F32);
  EXPECT_GT(DecodeState(*w).state_bytes(), a.state_bytes());  // + the conv window and Haar rings
}

namespace {

// The sampling distribution of the chain of sampler.h, by brute force over a small vocabulary
// (at most 16 tokens): each filter keeps a subset of the candidates; top-p's is found by trying
// every subset. `order` is the order of the filters ("kpm": top-k, top-p, min-p, the documented
// one) and `filter_temp` the temperature of the probabilities the filters see (1, documented);
// other values let the tests check that their inputs tell the orders apart. No repetition
// penalty; temperature > 0.
std::vector<double> reference_probs(const std::vector<double>& l, const SamplerOptions& o,
                                    const std::string& order = "kpm", double filter_temp = 1.0) {
  const int V = int(l.size());
  // a before b in the candidates' order: larger logit, then lower id.
  auto before = [&](int a, int b) {
    return l[size_t(a)] > l[size_t(b)] || (l[size_t(a)] == l[size_t(b)] && a < b);
  };
  auto in = [](uint32_t set, int i) { return ((set >> i) & 1u) != 0; };
  uint32_t kept = (1u << V) - 1;
  for (char f : order) {
    if (f == 'k' && o.top_k > 0) {
      uint32_t next = 0;
      for (int i = 0; i < V; ++i) {
        int ahead = 0;
        for (int j = 0; j < V; ++j) ahead += in(kept, j) && before(j, i);
        if (in(kept, i) && ahead < o.top_k) next |= 1u << i;
      }
      kept = next;
    } else if (f == 'p' && o.top_p < 1.0) {
      double total = 0;
      for (int i = 0; i < V; ++i)
        if (in(kept, i)) total += std::exp(l[size_t(i)] / filter_temp);
      uint32_t best = kept;
      for (uint32_t u = 1; u < (1u << V); ++u) {
        if ((u & ~kept) != 0) continue;
        bool upper = true;  // every member comes before every candidate left out
        double mass = 0;
        for (int i = 0; i < V; ++i) {
          if (!in(u, i)) continue;
          mass += std::exp(l[size_t(i)] / filter_temp) / total;
          for (int j = 0; j < V; ++j) upper = upper && !(in(kept, j) && !in(u, j) && before(j, i));
        }
        if (upper && mass >= o.top_p && __builtin_popcount(u) < __builtin_popcount(best)) best = u;
      }
      kept = best;
    } else if (f == 'm' && o.min_p > 0) {
      double lmax = -INFINITY;
      for (int i = 0; i < V; ++i)
        if (in(kept, i)) lmax = std::max(lmax, l[size_t(i)]);
      uint32_t next = 0;
      for (int i = 0; i < V; ++i)
        if (in(kept, i) && std::exp((l[size_t(i)] - lmax) / filter_temp) >= o.min_p) next |= 1u << i;
      kept = next;
    }
  }
  std::vector<double> p(size_t(V), 0.0);
  double sum = 0;
  for (int i = 0; i < V; ++i)
    if (in(kept, i)) sum += p[size_t(i)] = std::exp(l[size_t(i)] / o.temp);
  for (double& x : p) x /= sum;
  return p;
}

// The tokens a distribution can give.
std::vector<int> support(const std::vector<double>& p) {
  std::vector<int> s;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0) s.push_back(int(i));
  return s;
}

// n draws of Sampler(o) (one per history length, as a generation draws them): exactly the
// tokens of `want`'s support appear, each at its probability within 5 standard deviations.
void expect_draws_follow(const std::vector<double>& logits, const SamplerOptions& o,
                         const std::vector<double>& want, int n = 20000) {
  Buf l(DType::F64, {int64_t(logits.size())});
  for (size_t i = 0; i < logits.size(); ++i) l.set(int64_t(i), logits[i]);
  Sampler s(o);
  std::vector<int32_t> hist;
  std::vector<int> count(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    const int32_t t = s.sample(l, hist);
    ASSERT_TRUE(t >= 0 && t < int32_t(logits.size())) << t;
    ++count[size_t(t)];
    hist.push_back(t);
  }
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == 0) {
      EXPECT_EQ(count[i], 0) << "token " << i << " is filtered out, but was drawn";
      continue;
    }
    EXPECT_GT(count[i], 0) << "token " << i << " (probability " << want[i] << ") never drawn";
    EXPECT_NEAR(count[i] / double(n), want[i], 5 * std::sqrt(want[i] * (1 - want[i]) / n)) << "token " << i;
  }
}

}  // namespace

TEST(Sampler, FiltersAndGreedy) {
  Buf l(DType::F32, {6});
  const double vals[6] = {1.0, 3.0, 3.0, -2.0, 0.5, 2.9};
  for (int i = 0; i < 6; ++i) l.set(i, vals[i]);
  SamplerOptions g;
  g.temp = 0;
  EXPECT_EQ(Sampler(g).sample(l, {}), 1);     // lowest id among the tied maxima
  EXPECT_EQ(Sampler(g).sample(l, {}, 1), 2);  // banned
  g.repeat_penalty = 2.0;
  EXPECT_EQ(Sampler(g).sample(l, {1, 2}), 5);  // both 3.0s halved to 1.5 < 2.9
  g.repeat_last_n = 1;
  EXPECT_EQ(Sampler(g).sample(l, {1, 0}), 1);  // only the last token counts
  SamplerOptions k1;
  k1.top_k = 1;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    k1.seed = seed;
    EXPECT_EQ(Sampler(k1).sample(l, {}), 1);
  }
  SamplerOptions mp;
  mp.top_k = 0;
  mp.top_p = 1;
  mp.min_p = 0.5;  // keeps 3.0, 3.0, 2.9 (e^-0.1 > 0.5), drops 1.0 (e^-2 < 0.5)
  for (uint64_t seed = 0; seed < 50; ++seed) {
    mp.seed = seed;
    const int32_t t = Sampler(mp).sample(l, {});
    EXPECT_TRUE(t == 1 || t == 2 || t == 5) << t;
  }
  // Over many draws exactly those three appear, at the softmax of their logits at temperature
  // 0.8 (with min-p off, 1.0 and 0.5 would take about 4% of the draws).
  const std::vector<double> lv(vals, vals + 6);
  const std::vector<double> want = reference_probs(lv, mp);
  EXPECT_EQ(support(want), (std::vector<int>{1, 2, 5}));
  expect_draws_follow(lv, mp, want);
  EXPECT_THROW(Sampler(SamplerOptions{0.8, -1}), Error);
  SamplerOptions bad;
  bad.top_p = 0;
  EXPECT_THROW(Sampler{bad}, Error);
}

TEST(Sampler, DrawsFollowTheSoftmax) {
  // Logits log(1), log(2), log(5) at temperature 1, no filters: probabilities 0.125, 0.25, 0.625.
  Buf l(DType::F64, {3});
  l.set(0, 0.0);
  l.set(1, std::log(2.0));
  l.set(2, std::log(5.0));
  SamplerOptions o;
  o.temp = 1;
  o.top_k = 0;
  o.top_p = 1;
  o.min_p = 0;
  o.seed = 11;
  Sampler s(o);
  std::vector<int32_t> hist;
  int counts[3] = {0, 0, 0};
  const int n = 20000;
  hist.reserve(n);
  for (int i = 0; i < n; ++i) {
    const int32_t t = s.sample(l, hist);
    ++counts[t];
    hist.push_back(t);
  }
  EXPECT_NEAR(counts[0] / double(n), 0.125, 0.01);
  EXPECT_NEAR(counts[1] / double(n), 0.25, 0.01);
  EXPECT_NEAR(counts[2] / double(n), 0.625, 0.01);
  // Temperature 0.5 squares the odds: 1 : 4 : 25.
  o.temp = 0.5;
  Sampler s2(o);
  hist.clear();
  int c2 = 0;
  for (int i = 0; i < n; ++i) {
    const int32_t t = s2.sample(l, hist);
    c2 += t == 2;
    hist.push_back(t);
  }
  EXPECT_NEAR(c2 / double(n), 25.0 / 30.0, 0.01);
}

// Top-p < 1 alone: the smallest set of the most probable tokens (at temperature 1) whose
// probability reaches p, against the brute-force reference, ids shuffled against the order of
// the probabilities.
TEST(Sampler, TopPKeepsTheSmallestSetThatReachesP) {
  const double p[7] = {0.07, 0.30, 0.04, 0.16, 0.22, 0.09, 0.12};  // sorted: 1, 4, 3, 6, 5, 0, 2
  std::vector<double> l;
  for (double x : p) l.push_back(std::log(x) + 0.7);
  SamplerOptions o;
  o.temp = 1.3, o.top_k = 0, o.min_p = 0;
  for (const auto& [top_p, kept] : std::vector<std::pair<double, std::vector<int>>>{
           {0.25, {1}}, {0.6, {1, 3, 4}}, {0.75, {1, 3, 4, 6}}, {0.85, {1, 3, 4, 5, 6}}}) {
    SCOPED_TRACE(top_p);
    o.top_p = top_p;
    const std::vector<double> want = reference_probs(l, o);
    EXPECT_EQ(support(want), kept);  // by hand: cumulative 0.30, 0.52, 0.68, 0.80, 0.89, 0.96
    expect_draws_follow(l, o, want);
  }
}

// The filters in their documented order (sampler.h: top-k, then top-p, then min-p, each on the
// temperature-1 probabilities of what is left; the temperature only at the draw), on logits for
// which every other order keeps another set of tokens.
TEST(Sampler, FiltersApplyInTheDocumentedOrder) {
  const std::vector<double> l = {1.3, 0.8, 1.1, 1.2, 1.4, 0.9, 2.0, 0.1};
  SamplerOptions o;
  o.temp = 0.5, o.top_k = 6, o.top_p = 0.7, o.min_p = 0.4;
  const std::vector<double> want = reference_probs(l, o);
  EXPECT_EQ(support(want), (std::vector<int>{0, 3, 4, 6}));
  // The inputs tell the orders apart: top-p before top-k, min-p before top-p, and filters on the
  // probabilities at the sampling temperature each keep another set.
  EXPECT_EQ(support(reference_probs(l, o, "pkm")), (std::vector<int>{0, 2, 3, 4, 6}));
  EXPECT_EQ(support(reference_probs(l, o, "kmp")), (std::vector<int>{0, 4, 6}));
  EXPECT_EQ(support(reference_probs(l, o, "kpm", o.temp)), (std::vector<int>{6}));
  expect_draws_follow(l, o, want);
}

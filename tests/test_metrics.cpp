// Classification metrics (train/metrics.h). AUC is checked against the definition counted pair by
// pair: over every (positive, negative) pair of a class, 1 when the positive scores higher, 1/2 on
// a tie, divided by npos * nneg. Precision, recall, F1 = 2PR/(P+R), macro F1 and the confusion
// matrix are checked on an example worked by hand.
#include <cmath>
#include <set>
#include <sstream>

#include "testutil.h"
#include "wersa/common/error.h"
#include "wersa/common/json.h"
#include "wersa/common/rng.h"
#include "wersa/train/metrics.h"

using namespace wersa;
using namespace wersa::test;

namespace {

// One-vs-rest AUC of class c by counting every positive x negative pair (NaN without both).
double brute_auc(const std::vector<float>& probs, const std::vector<int32_t>& labels, int C, int c) {
  double wins = 0;
  int64_t pairs = 0;
  for (size_t p = 0; p < labels.size(); ++p) {
    if (labels[p] != c) continue;
    for (size_t q = 0; q < labels.size(); ++q) {
      if (labels[q] == c) continue;
      const double sp = probs[p * size_t(C) + size_t(c)], sq = probs[q * size_t(C) + size_t(c)];
      wins += sp > sq ? 1.0 : sp == sq ? 0.5 : 0.0;
      ++pairs;
    }
  }
  return pairs == 0 ? std::nan("") : wins / double(pairs);
}

// Unbalanced labels: class c drawn with weight 2^-c (so the last classes are rare or absent), and
// scores rounded to multiples of 1/levels, so that many are tied.
void random_problem(uint64_t seed, size_t n, int C, int levels, std::vector<float>& probs,
                    std::vector<int32_t>& labels) {
  Rng rng{seed, 17, 0};
  double total = 0;
  for (int c = 0; c < C; ++c) total += std::ldexp(1.0, -c);
  labels.assign(n, 0);
  probs.assign(n * size_t(C), 0.f);
  for (size_t i = 0; i < n; ++i) {
    double u = rng.uniform() * total;
    int label = 0;
    while (label + 1 < C && u >= std::ldexp(1.0, -label)) {
      u -= std::ldexp(1.0, -label);
      ++label;
    }
    labels[i] = label;
    for (int c = 0; c < C; ++c) {
      // Informative but noisy: the true class gets a push upwards.
      const double s = rng.uniform() + (c == label ? 0.4 * rng.uniform() : 0.0);
      probs[i * size_t(C) + size_t(c)] = float(std::floor(s * levels) / levels);
    }
  }
}

// One row of scores per document: 0.6 for its predicted class, 0.1 for the others.
std::vector<float> rows_predicting(const std::vector<int>& pred, int C) {
  std::vector<float> p(pred.size() * size_t(C), 0.1f);
  for (size_t i = 0; i < pred.size(); ++i) p[i * size_t(C) + size_t(pred[i])] = 0.6f;
  return p;
}

// The hand-worked example: 5 classes, 8 documents.
//   doc    0  1  2  3  4  5  6  7
//   true   0  0  0  1  1  2  2  0
//   pred   0  0  1  1  3  0  1  3     (doc 6 ties classes 1 and 2: the lower index wins)
// class 0: TP 2, FP 1 (doc 5), FN 2 (docs 2, 7): P 2/3, R 1/2, F1 4/7
// class 1: TP 1, FP 2 (docs 2, 6), FN 1 (doc 4):  P 1/3, R 1/2, F1 2/5
// class 2: never predicted, TP 0, FN 2:           P 0 (0/0), R 0, F1 0
// class 3: predicted twice, never true:            P 0, R 0 (0/0), F1 0
// class 4: neither true nor predicted: out of the macro F1, which is (4/7 + 2/5) / 4 = 17/70.
struct HandExample {
  static constexpr int C = 5;
  std::vector<int32_t> labels = {0, 0, 0, 1, 1, 2, 2, 0};
  std::vector<float> probs;
  HandExample() {
    probs = rows_predicting({0, 0, 1, 1, 3, 0, 1, 3}, C);
    probs[6 * C + 1] = 0.4f;
    probs[6 * C + 2] = 0.4f;  // a tie between classes 1 and 2
  }
};

TEST(Metrics, AucMatchesPairCountOnTiedUnbalancedScores) {
  int undefined_seen = 0;
  for (int C : {2, 3, 5, 11}) {
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      for (size_t n : {size_t(5), size_t(60), size_t(700)}) {
        for (int levels : {2, 5}) {
          std::vector<float> probs;
          std::vector<int32_t> labels;
          random_problem(seed * 1000 + uint64_t(C), n, C, levels, probs, labels);
          // The scores really are tied: scores below 1.4 on a grid of 1/levels.
          const std::set<float> distinct(probs.begin(), probs.end());
          ASSERT_LE(distinct.size(), size_t(2 * levels));
          const ClassMetrics m = classification_metrics(probs, labels, C);
          ASSERT_EQ(m.auc.size(), size_t(C));
          double sum = 0;
          int defined = 0;
          for (int c = 0; c < C; ++c) {
            const double want = brute_auc(probs, labels, C, c);
            if (std::isnan(want)) {
              EXPECT_TRUE(std::isnan(m.auc[size_t(c)])) << "C " << C << " seed " << seed << " class " << c;
              ++undefined_seen;
              continue;
            }
            EXPECT_NEAR(m.auc[size_t(c)], want, 1e-12)
                << "C " << C << " seed " << seed << " n " << n << " class " << c;
            sum += want;
            ++defined;
          }
          EXPECT_EQ(m.auc_classes, defined);
          if (defined > 0) EXPECT_NEAR(m.macro_auc, sum / defined, 1e-12);
          if (defined == 0) EXPECT_TRUE(std::isnan(m.macro_auc));
          // The counts add up: rows are the support, columns the predictions, the trace the hits.
          int64_t total = 0, trace = 0;
          for (int t = 0; t < C; ++t) {
            int64_t row = 0, col = 0;
            for (int p = 0; p < C; ++p) row += m.count(t, p), col += m.count(p, t);
            EXPECT_EQ(row, m.support[size_t(t)]);
            EXPECT_EQ(col, m.predicted[size_t(t)]);
            total += row;
            trace += m.count(t, t);
          }
          EXPECT_EQ(total, int64_t(n));
          EXPECT_DOUBLE_EQ(m.accuracy, double(trace) / double(n));
        }
      }
    }
  }
  // The unbalanced draw leaves rare classes without positives in the small problems.
  EXPECT_GT(undefined_seen, 0);
}

TEST(Metrics, RocAucOfDoublesMatchesPairCount) {
  Rng rng{7, 3, 0};
  for (int trial = 0; trial < 20; ++trial) {
    const size_t n = 1 + rng.below(300);
    std::vector<double> s(n);
    std::vector<bool> pos(n);
    std::vector<float> as_probs(2 * n);
    std::vector<int32_t> labels(n);
    for (size_t i = 0; i < n; ++i) {
      s[i] = double(rng.below(4)) - 1.5;
      pos[i] = rng.uniform() < 0.2;
      as_probs[2 * i + 1] = float(s[i]);
      labels[i] = pos[i] ? 1 : 0;
    }
    const double want = brute_auc(as_probs, labels, 2, 1);
    const double got = roc_auc(s, pos);
    if (std::isnan(want))
      EXPECT_TRUE(std::isnan(got));
    else
      EXPECT_NEAR(got, want, 1e-12);
  }
}

TEST(Metrics, HandWorkedExample) {
  const HandExample ex;
  const ClassMetrics m = classification_metrics(ex.probs, ex.labels, ex.C);
  EXPECT_EQ(m.n, 8);
  EXPECT_EQ(m.num_classes, 5);
  EXPECT_DOUBLE_EQ(m.accuracy, 3.0 / 8.0);
  const std::vector<int64_t> confusion = {2, 1, 0, 1, 0,   // true 0
                                          0, 1, 0, 1, 0,   // true 1
                                          1, 1, 0, 0, 0,   // true 2
                                          0, 0, 0, 0, 0,   // true 3
                                          0, 0, 0, 0, 0};  // true 4
  EXPECT_EQ(m.confusion, confusion);
  EXPECT_EQ(m.support, (std::vector<int64_t>{4, 2, 2, 0, 0}));
  EXPECT_EQ(m.predicted, (std::vector<int64_t>{3, 3, 0, 2, 0}));
  const std::vector<double> precision = {2.0 / 3, 1.0 / 3, 0, 0, 0}, recall = {0.5, 0.5, 0, 0, 0},
                            f1 = {4.0 / 7, 2.0 / 5, 0, 0, 0};
  for (int c = 0; c < 5; ++c) {
    EXPECT_DOUBLE_EQ(m.precision[size_t(c)], precision[size_t(c)]) << c;
    EXPECT_DOUBLE_EQ(m.recall[size_t(c)], recall[size_t(c)]) << c;
    EXPECT_DOUBLE_EQ(m.f1[size_t(c)], f1[size_t(c)]) << c;
  }
  // F1 = 2PR / (P + R) where defined.
  for (int c = 0; c < 2; ++c) {
    const double p = m.precision[size_t(c)], r = m.recall[size_t(c)];
    EXPECT_NEAR(m.f1[size_t(c)], 2 * p * r / (p + r), 1e-15);
  }
  EXPECT_EQ(m.f1_classes, 4);
  EXPECT_DOUBLE_EQ(m.macro_f1, 17.0 / 70.0);
  // Classes 3 and 4 have no positives; 0, 1, 2 agree with the pair count.
  EXPECT_TRUE(std::isnan(m.auc[3]));
  EXPECT_TRUE(std::isnan(m.auc[4]));
  EXPECT_EQ(m.auc_classes, 3);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(m.auc[size_t(c)], brute_auc(ex.probs, ex.labels, 5, c), 1e-12);
  // Class 0 by hand: positives {0.6, 0.6, 0.1, 0.1} against negatives {0.1, 0.1, 0.1, 0.6} (docs 3-6):
  // 0.6 beats three and ties one: 3.5 each; 0.1 ties three: 1.5 each; (2 * 3.5 + 2 * 1.5) / 16 = 10/16.
  EXPECT_DOUBLE_EQ(m.auc[0], 10.0 / 16.0);
  EXPECT_DOUBLE_EQ(m.macro_auc, (m.auc[0] + m.auc[1] + m.auc[2]) / 3);
}

TEST(Metrics, TextbookBinaryAuc) {
  // The classic four-sample example: scores 0.1 0.4 0.35 0.8 for labels 0 0 1 1 give 3/4.
  const std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f};
  std::vector<float> probs;
  for (float v : s) {
    probs.push_back(1 - v);
    probs.push_back(v);
  }
  const ClassMetrics m = classification_metrics(probs, {0, 0, 1, 1}, 2);
  EXPECT_DOUBLE_EQ(m.auc[1], 0.75);
  EXPECT_DOUBLE_EQ(m.auc[0], 0.75);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.75);  // the positive at 0.35 is predicted as class 0
  // Ties: positives {0.2, 0.7} against negatives {0.2, 0.7}: 1/2 + 0 + 1 + 1/2 over 4.
  EXPECT_DOUBLE_EQ(roc_auc({0.2, 0.2, 0.7, 0.7}, {false, true, true, false}), 0.5);
  // Positives {0.5, 0.9} against negatives {0.5, 0.5}: 1/2 + 1/2 + 1 + 1 over 4.
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.5, 0.5, 0.9}, {false, true, false, true}), 0.75);
}

TEST(Metrics, AucDependsOnlyOnTheOrderOfScores) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    std::vector<float> probs;
    std::vector<int32_t> labels;
    random_problem(seed, 500, 6, 8, probs, labels);
    // Strictly increasing (and far apart enough that distinct floats stay distinct), and its mirror.
    std::vector<float> up(probs.size()), down(probs.size());
    for (size_t k = 0; k < probs.size(); ++k) {
      up[k] = float(std::exp(4.0 * probs[k]) * 3.0 - 7.0);
      down[k] = -probs[k];
    }
    const ClassMetrics a = classification_metrics(probs, labels, 6);
    const ClassMetrics b = classification_metrics(up, labels, 6);
    const ClassMetrics r = classification_metrics(down, labels, 6);
    ASSERT_GT(a.auc_classes, 2);
    for (int c = 0; c < 6; ++c) {
      const size_t k = size_t(c);
      if (std::isnan(a.auc[k])) {
        EXPECT_TRUE(std::isnan(b.auc[k]) && std::isnan(r.auc[k]));
        continue;
      }
      EXPECT_EQ(a.auc[k], b.auc[k]) << c;
      EXPECT_NEAR(r.auc[k], 1.0 - a.auc[k], 1e-12) << c;  // the order reversed: ties stay 1/2
      EXPECT_GT(a.auc[k], 0.5) << c;                      // the scores are informative
    }
    // The same transform of every score keeps every argmax.
    EXPECT_EQ(a.confusion, b.confusion);
  }
}

TEST(Metrics, SeparatedReversedAndConstantScores) {
  const int C = 3;
  const std::vector<int32_t> labels = {0, 1, 2, 2, 1, 0, 0, 2, 1, 1};
  std::vector<float> sep(labels.size() * C), rev(sep.size()), flat(sep.size(), 0.25f);
  for (size_t i = 0; i < labels.size(); ++i)
    for (int c = 0; c < C; ++c) {
      // Positives in [0.6, 0.9], negatives in [0, 0.3]: every positive above every negative.
      const float jitter = 0.03f * float(i);
      sep[i * C + size_t(c)] = labels[i] == c ? 0.6f + jitter : jitter;
      rev[i * C + size_t(c)] = -sep[i * C + size_t(c)];
    }
  const ClassMetrics s = classification_metrics(sep, labels, C);
  const ClassMetrics r = classification_metrics(rev, labels, C);
  const ClassMetrics f = classification_metrics(flat, labels, C);
  for (int c = 0; c < C; ++c) {
    EXPECT_EQ(s.auc[size_t(c)], 1.0);
    EXPECT_EQ(r.auc[size_t(c)], 0.0);
    EXPECT_EQ(f.auc[size_t(c)], 0.5);
  }
  EXPECT_EQ(s.macro_auc, 1.0);
  EXPECT_EQ(s.accuracy, 1.0);
  EXPECT_EQ(s.macro_f1, 1.0);
  EXPECT_EQ(r.macro_auc, 0.0);
  EXPECT_EQ(f.macro_auc, 0.5);
  // Constant scores: every argmax ties, so every document is predicted as class 0.
  EXPECT_EQ(f.predicted, (std::vector<int64_t>{10, 0, 0}));
  EXPECT_DOUBLE_EQ(f.accuracy, 3.0 / 10.0);
  // Class 0: P 3/10, R 1, F1 6/13; classes 1 and 2 true but never predicted: F1 0.
  EXPECT_DOUBLE_EQ(f.macro_f1, (6.0 / 13.0) / 3);
}

TEST(Metrics, ClassWithoutPositivesLeftOutOfMacroAuc) {
  std::vector<float> probs;
  std::vector<int32_t> labels;
  random_problem(42, 200, 4, 6, probs, labels);
  for (int32_t& l : labels)
    if (l == 2) l = 3;  // nobody is in class 2
  const ClassMetrics m = classification_metrics(probs, labels, 4);
  EXPECT_TRUE(std::isnan(m.auc[2]));
  EXPECT_EQ(m.support[2], 0);
  EXPECT_EQ(m.auc_classes, 3);
  EXPECT_NEAR(m.macro_auc, (m.auc[0] + m.auc[1] + m.auc[3]) / 3, 1e-15);
  for (int c : {0, 1, 3}) EXPECT_NEAR(m.auc[size_t(c)], brute_auc(probs, labels, 4, c), 1e-12);

  // Every document in one class: that class has no negatives, the others no positives.
  const std::vector<int32_t> same(50, 1);
  const ClassMetrics u =
      classification_metrics(std::vector<float>(probs.begin(), probs.begin() + 200), same, 4);
  EXPECT_EQ(u.auc_classes, 0);
  for (double a : u.auc) EXPECT_TRUE(std::isnan(a));
  EXPECT_TRUE(std::isnan(u.macro_auc));
}

TEST(Metrics, InputErrors) {
  const std::vector<float> p12(12, 0.5f);
  expect_error_contains(
      [&] {
        classification_metrics(p12, {0, 1, 2}, 1);
      },
      "expected at least 2 classes, got 1");
  expect_error_contains([&] { classification_metrics({}, {}, 4); }, "expected at least one document");
  expect_error_contains(
      [&] {
        classification_metrics(p12, {0, 1}, 4);
      },
      "expected 2 x 4 = 8 scores (documents x classes), got 12");
  expect_error_contains(
      [&] {
        classification_metrics(std::vector<float>(11, 0.f), {0, 1, 2}, 4);
      },
      "expected 3 x 4 = 12 scores");
  expect_error_contains(
      [&] {
        classification_metrics(p12, {0, 4, 1}, 4);
      },
      "label of document 1 is 4, expected a class in [0, 4)");
  expect_error_contains([&] { classification_metrics(p12, {0, 1, -1}, 4); }, "label of document 2 is -1");
  std::vector<float> bad = p12;
  bad[6] = std::nanf("");
  expect_error_contains(
      [&] {
        classification_metrics(bad, {0, 1, 2}, 4);
      },
      "score of document 1 for class 2 is nan, expected a finite number");
  bad[6] = 0.5f;
  bad[11] = -INFINITY;
  expect_error_contains([&] { classification_metrics(bad, {0, 1, 2}, 4); }, "document 2 for class 3 is -inf");
  expect_error_contains([] { roc_auc({0.1, 0.2}, {true}); }, "expected one positive flag per score");
  expect_error_contains([] { roc_auc({0.1, NAN}, {true, false}); }, "score 1 is nan");
  const ClassMetrics m = classification_metrics(p12, {0, 1, 2}, 4);
  expect_error_contains([&] { metrics_to_json(m, {"a", "b"}); }, "expected 4 class names (or none), got 2");
  expect_error_contains([&] { format_confusion(m, {"a"}); }, "expected 4 class names");
}

TEST(Metrics, JsonHasEveryFieldAndNullForNaN) {
  const HandExample ex;
  const ClassMetrics m = classification_metrics(ex.probs, ex.labels, ex.C);
  const std::vector<std::string> names = {"arts", "law", "math", "physics", "sport"};
  const nlohmann::json j = parse_json(metrics_to_json(m, names).dump(), "metrics");
  std::set<std::string> keys;
  for (const auto& kv : j.items()) keys.insert(kv.key());
  EXPECT_EQ(keys, (std::set<std::string>{"n", "num_classes", "accuracy", "macro_f1", "f1_classes",
                                         "macro_auc", "auc_classes", "class_names", "precision", "recall",
                                         "f1", "auc", "support", "predicted", "confusion"}));
  EXPECT_EQ(j["n"].get<int64_t>(), m.n);
  EXPECT_EQ(j["num_classes"].get<int>(), m.num_classes);
  // Doubles are written with enough digits to read back bit for bit.
  EXPECT_EQ(j["accuracy"].get<double>(), m.accuracy);
  EXPECT_EQ(j["macro_f1"].get<double>(), m.macro_f1);
  EXPECT_EQ(j["f1_classes"].get<int>(), m.f1_classes);
  EXPECT_EQ(j["macro_auc"].get<double>(), m.macro_auc);
  EXPECT_EQ(j["auc_classes"].get<int>(), m.auc_classes);
  EXPECT_EQ(j["class_names"].get<std::vector<std::string>>(), names);
  EXPECT_EQ(j["precision"].get<std::vector<double>>(), m.precision);
  EXPECT_EQ(j["recall"].get<std::vector<double>>(), m.recall);
  EXPECT_EQ(j["f1"].get<std::vector<double>>(), m.f1);
  EXPECT_EQ(j["support"].get<std::vector<int64_t>>(), m.support);
  EXPECT_EQ(j["predicted"].get<std::vector<int64_t>>(), m.predicted);
  ASSERT_EQ(j["auc"].size(), 5u);
  for (size_t c = 0; c < 5; ++c) {
    if (std::isnan(m.auc[c]))
      EXPECT_TRUE(j["auc"][c].is_null()) << c;
    else
      EXPECT_EQ(j["auc"][c].get<double>(), m.auc[c]) << c;
  }
  EXPECT_TRUE(j["auc"][3].is_null() && j["auc"][4].is_null());
  ASSERT_EQ(j["confusion"].size(), 5u);
  for (int t = 0; t < 5; ++t) {
    ASSERT_EQ(j["confusion"][size_t(t)].size(), 5u);
    for (int p = 0; p < 5; ++p) EXPECT_EQ(j["confusion"][size_t(t)][size_t(p)].get<int64_t>(), m.count(t, p));
  }

  // No class with an AUC: macro_auc is null; without names the classes are numbered.
  const ClassMetrics u = classification_metrics(std::vector<float>(6, 0.f), {1, 1, 1}, 2);
  const nlohmann::json ju = parse_json(metrics_to_json(u, {}).dump(), "metrics");
  EXPECT_TRUE(ju["macro_auc"].is_null());
  EXPECT_TRUE(ju["auc"][0].is_null() && ju["auc"][1].is_null());
  EXPECT_EQ(ju["class_names"].get<std::vector<std::string>>(), (std::vector<std::string>{"0", "1"}));
}

TEST(Metrics, FormattedTables) {
  const HandExample ex;
  const ClassMetrics m = classification_metrics(ex.probs, ex.labels, ex.C);
  const std::vector<std::string> names = {"arts", "law", "mathematics", "physics", "sport"};
  const std::string text = format_confusion(m, names);
  std::istringstream in(text);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  // Header + 5 rows, blank, header + 5 rows, blank, summary.
  ASSERT_EQ(lines.size(), 15u) << text;
  // The matrix: every line as wide as the header, and each row reads back as that class's counts.
  for (int t = 0; t < 5; ++t) {
    const std::string& line = lines[size_t(t) + 1];
    EXPECT_EQ(line.size(), lines[0].size()) << line;
    std::istringstream row(line);
    std::string name;
    row >> name;
    EXPECT_EQ(name, names[size_t(t)]);
    for (int p = 0; p < 5; ++p) {
      int64_t v = -1;
      row >> v;
      EXPECT_EQ(v, m.count(t, p)) << line;
    }
  }
  // Right-aligned columns: each class name in the header ends where its counts end.
  for (int p = 0; p < 5; ++p) {
    const size_t end = lines[0].find(names[size_t(p)]) + names[size_t(p)].size();
    for (int t = 0; t < 5; ++t) EXPECT_NE(lines[size_t(t) + 1][end - 1], ' ') << p << " " << t;
  }
  // Per-class table: precision recall F1 AUC support, "-" for an undefined AUC.
  EXPECT_NE(lines[7].find("precision"), std::string::npos);
  for (int c = 0; c < 5; ++c) {
    std::istringstream row(lines[size_t(c) + 8]);
    std::string name, p, r, f, a;
    int64_t support = -1;
    row >> name >> p >> r >> f >> a >> support;
    EXPECT_EQ(name, names[size_t(c)]);
    EXPECT_NEAR(std::stod(p), m.precision[size_t(c)], 5e-5);
    EXPECT_NEAR(std::stod(r), m.recall[size_t(c)], 5e-5);
    EXPECT_NEAR(std::stod(f), m.f1[size_t(c)], 5e-5);
    if (std::isnan(m.auc[size_t(c)]))
      EXPECT_EQ(a, "-");
    else
      EXPECT_NEAR(std::stod(a), m.auc[size_t(c)], 5e-5);
    EXPECT_EQ(support, m.support[size_t(c)]);
  }
  EXPECT_NE(lines[14].find("accuracy 0.3750 (3 of 8)"), std::string::npos) << lines[14];
  EXPECT_NE(lines[14].find("macro F1 0.2429 over 4 classes"), std::string::npos) << lines[14];
  EXPECT_NE(lines[14].find("over 3 classes"), std::string::npos) << lines[14];
}

}  // namespace

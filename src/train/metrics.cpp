// Classification metrics (see metrics.h). Per class: P = TP/(TP+FP), R = TP/(TP+FN),
// F1 = 2PR/(P+R) computed as 2TP/(2TP+FP+FN), 0 for 0/0. One-vs-rest AUC = probability that a
// random positive scores above a random negative, ties 1/2, from one sort: the Mann-Whitney
//   U = R+ - n+ (n+ + 1) / 2,  AUC = U / (n+ n-),
// R+ the sum of the positives' ranks, tied scores all ranked at the mean of the ranks they span.
// Ranks are multiples of 1/2 and their sums stay below 2^52 for n up to ~9e7 documents, so U is
// exact in double and the only rounding is the final division.
#include "wersa/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "wersa/common/error.h"

namespace wersa {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// AUC of scores[i] (finite) with positive[i] marking the positives; NaN without both kinds.
template <class Positive>
double auc_of(const std::vector<double>& scores, Positive&& positive) {
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t(0));
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rank_sum = 0;  // sum of the positives' (mid-)ranks, ranks counted from 1
  int64_t npos = 0;
  for (size_t lo = 0; lo < n;) {
    size_t hi = lo + 1;
    while (hi < n && scores[order[hi]] == scores[order[lo]]) ++hi;
    int64_t pos_here = 0;
    for (size_t k = lo; k < hi; ++k) pos_here += positive(order[k]) ? 1 : 0;
    // Ranks lo+1 .. hi share their mean (lo + 1 + hi) / 2.
    rank_sum += double(pos_here) * (double(lo + 1 + hi) * 0.5);
    npos += pos_here;
    lo = hi;
  }
  const int64_t nneg = int64_t(n) - npos;
  if (npos == 0 || nneg == 0) return kNaN;
  const double u = rank_sum - double(npos) * double(npos + 1) * 0.5;
  return u / (double(npos) * double(nneg));
}

double ratio(int64_t num, int64_t den) { return den == 0 ? 0.0 : double(num) / double(den); }

std::vector<std::string> names_for(const ClassMetrics& m, const std::vector<std::string>& class_names,
                                   const char* what) {
  WERSA_CHECK(class_names.empty() || class_names.size() == size_t(m.num_classes), what, ": expected ",
              m.num_classes, " class names (or none), got ", class_names.size());
  if (!class_names.empty()) return class_names;
  std::vector<std::string> out;
  for (int c = 0; c < m.num_classes; ++c) out.push_back(std::to_string(c));
  return out;
}

nlohmann::json number_or_null(double v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}

std::string fixed4(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// s right-aligned in `width` columns (left-aligned when `left`).
std::string pad(const std::string& s, size_t width, bool left = false) {
  if (s.size() >= width) return s;
  const std::string fill(width - s.size(), ' ');
  return left ? s + fill : fill + s;
}

}  // namespace

double roc_auc(const std::vector<double>& scores, const std::vector<bool>& positive) {
  WERSA_CHECK(scores.size() == positive.size(), "roc_auc: expected one positive flag per score, got ",
              positive.size(), " flags for ", scores.size(), " scores");
  for (size_t i = 0; i < scores.size(); ++i)
    WERSA_CHECK(std::isfinite(scores[i]), "roc_auc: score ", i, " is ", scores[i],
                ", expected a finite number");
  return auc_of(scores, [&](size_t i) { return bool(positive[i]); });
}

ClassMetrics classification_metrics(const std::vector<float>& probs, const std::vector<int32_t>& labels,
                                    int num_classes) {
  const char* what = "classification metrics";
  WERSA_CHECK(num_classes >= 2, what, ": expected at least 2 classes, got ", num_classes);
  WERSA_CHECK(!labels.empty(), what, ": expected at least one document, got no labels");
  const size_t n = labels.size(), C = size_t(num_classes);
  WERSA_CHECK(probs.size() / C == n && probs.size() % C == 0, what, ": expected ", n, " x ", C, " = ", n * C,
              " scores (documents x classes), got ", probs.size());
  for (size_t i = 0; i < n; ++i)
    WERSA_CHECK(labels[i] >= 0 && labels[i] < num_classes, what, ": label of document ", i, " is ", labels[i],
                ", expected a class in [0, ", num_classes, ")");
  for (size_t k = 0; k < probs.size(); ++k)
    WERSA_CHECK(std::isfinite(probs[k]), what, ": score of document ", k / C, " for class ", k % C, " is ",
                probs[k], ", expected a finite number");

  ClassMetrics m;
  m.n = int64_t(n);
  m.num_classes = num_classes;
  m.confusion.assign(C * C, 0);
  m.support.assign(C, 0);
  m.predicted.assign(C, 0);
  int64_t correct = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* row = probs.data() + i * C;
    size_t best = 0;
    for (size_t c = 1; c < C; ++c)
      if (row[c] > row[best]) best = c;  // strict: a tie keeps the lower index
    const size_t label = size_t(labels[i]);
    ++m.confusion[label * C + best];
    ++m.support[label];
    ++m.predicted[best];
    correct += best == label ? 1 : 0;
  }
  m.accuracy = double(correct) / double(n);

  m.precision.assign(C, 0.0);
  m.recall.assign(C, 0.0);
  m.f1.assign(C, 0.0);
  double f1_sum = 0;
  for (size_t c = 0; c < C; ++c) {
    const int64_t tp = m.confusion[c * C + c];
    const int64_t fp = m.predicted[c] - tp, fn = m.support[c] - tp;
    m.precision[c] = ratio(tp, tp + fp);
    m.recall[c] = ratio(tp, tp + fn);
    m.f1[c] = ratio(2 * tp, 2 * tp + fp + fn);
    if (m.support[c] > 0 || m.predicted[c] > 0) {
      f1_sum += m.f1[c];
      ++m.f1_classes;
    }
  }
  m.macro_f1 = m.f1_classes > 0 ? f1_sum / m.f1_classes : 0.0;

  m.auc.assign(C, kNaN);
  std::vector<double> scores(n);
  double auc_sum = 0;
  for (size_t c = 0; c < C; ++c) {
    for (size_t i = 0; i < n; ++i) scores[i] = double(probs[i * C + c]);
    m.auc[c] = auc_of(scores, [&](size_t i) { return size_t(labels[i]) == c; });
    if (!std::isnan(m.auc[c])) {
      auc_sum += m.auc[c];
      ++m.auc_classes;
    }
  }
  m.macro_auc = m.auc_classes > 0 ? auc_sum / m.auc_classes : kNaN;
  return m;
}

nlohmann::json metrics_to_json(const ClassMetrics& m, const std::vector<std::string>& class_names) {
  const std::vector<std::string> names = names_for(m, class_names, "metrics_to_json");
  nlohmann::json j;
  j["n"] = m.n;
  j["num_classes"] = m.num_classes;
  j["accuracy"] = m.accuracy;
  j["macro_f1"] = m.macro_f1;
  j["f1_classes"] = m.f1_classes;
  j["macro_auc"] = number_or_null(m.macro_auc);
  j["auc_classes"] = m.auc_classes;
  j["class_names"] = names;
  j["precision"] = m.precision;
  j["recall"] = m.recall;
  j["f1"] = m.f1;
  nlohmann::json auc = nlohmann::json::array();
  for (double a : m.auc) auc.push_back(number_or_null(a));
  j["auc"] = auc;
  j["support"] = m.support;
  j["predicted"] = m.predicted;
  nlohmann::json rows = nlohmann::json::array();
  for (int t = 0; t < m.num_classes; ++t) {
    nlohmann::json row = nlohmann::json::array();
    for (int p = 0; p < m.num_classes; ++p) row.push_back(m.count(t, p));
    rows.push_back(row);
  }
  j["confusion"] = rows;
  return j;
}

std::string format_confusion(const ClassMetrics& m, const std::vector<std::string>& class_names) {
  const std::vector<std::string> names = names_for(m, class_names, "format_confusion");
  const int C = m.num_classes;
  const std::string corner = "true \\ predicted";
  size_t name_w = corner.size();
  for (const std::string& s : names) name_w = std::max(name_w, s.size());

  // Confusion matrix: each column as wide as its class name or its largest count.
  std::vector<size_t> col_w(static_cast<size_t>(C));
  for (int p = 0; p < C; ++p) {
    col_w[size_t(p)] = names[size_t(p)].size();
    for (int t = 0; t < C; ++t)
      col_w[size_t(p)] = std::max(col_w[size_t(p)], std::to_string(m.count(t, p)).size());
  }
  std::string out = pad(corner, name_w, true);
  for (int p = 0; p < C; ++p) out += "  " + pad(names[size_t(p)], col_w[size_t(p)]);
  out += "\n";
  for (int t = 0; t < C; ++t) {
    out += pad(names[size_t(t)], name_w, true);
    for (int p = 0; p < C; ++p) out += "  " + pad(std::to_string(m.count(t, p)), col_w[size_t(p)]);
    out += "\n";
  }

  // Per-class table.
  const std::vector<std::string> heads = {"precision", "recall", "F1", "AUC", "support"};
  size_t support_w = heads.back().size();
  for (int64_t s : m.support) support_w = std::max(support_w, std::to_string(s).size());
  out += "\n" + pad("class", name_w, true);
  for (size_t h = 0; h + 1 < heads.size(); ++h) out += "  " + pad(heads[h], heads[0].size());
  out += "  " + pad(heads.back(), support_w) + "\n";
  for (int c = 0; c < C; ++c) {
    const size_t k = size_t(c);
    out += pad(names[k], name_w, true);
    for (double v : {m.precision[k], m.recall[k], m.f1[k], m.auc[k]})
      out += "  " + pad(fixed4(v), heads[0].size());
    out += "  " + pad(std::to_string(m.support[k]), support_w) + "\n";
  }

  int64_t correct = 0;
  for (int c = 0; c < C; ++c) correct += m.count(c, c);
  out += "\naccuracy " + fixed4(m.accuracy) + " (" + std::to_string(correct) + " of " + std::to_string(m.n) +
         "), macro F1 " + fixed4(m.macro_f1) + " over " + std::to_string(m.f1_classes) +
         " classes, macro AUC " + fixed4(m.macro_auc) + " over " + std::to_string(m.auc_classes) +
         " classes\n";
  return out;
}

}  // namespace wersa

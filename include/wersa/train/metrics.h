// Classification metrics of a document classifier, from its per-class scores and the true labels.
//
// The prediction of a document is the argmax of its scores (ties: the lowest class index). Per
// class c, with TP/FP/FN counted from the predictions:
//   precision P = TP / (TP + FP), recall R = TP / (TP + FN), F1 = 2PR / (P + R) = 2TP / (2TP + FP + FN);
//   each is 0 where its denominator is 0 (sklearn's zero_division=0).
// macro F1 averages F1 over the classes that occur among the labels or the predictions (sklearn's
// "macro" with its default labels); a class that is neither true nor predicted is left out.
// One-vs-rest ROC AUC of class c, over its positives (label == c) and negatives (label != c):
//   AUC = P(score of a random positive > score of a random negative), a tie counting 1/2,
//       = (sum of the positives' mid-ranks - npos (npos + 1) / 2) / (npos * nneg)   (Mann-Whitney U),
// with the documents ranked by their class-c score, tied scores sharing the mean of their ranks.
// Only the order of the scores matters, so they can be probabilities, logits or anything else.
// AUC is undefined (NaN) for a class without positives or without negatives; macro AUC averages
// the defined ones (NaN when none is).
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace wersa {

struct ClassMetrics {
  int64_t n = 0;        // documents
  int num_classes = 0;  // C
  double accuracy = 0;  // fraction of documents whose argmax is their label
  double macro_f1 = 0;  // mean F1 over the classes that occur in the labels or the predictions
  int f1_classes = 0;   // how many classes entered macro_f1
  double macro_auc = std::numeric_limits<double>::quiet_NaN();  // mean AUC over the defined ones
  int auc_classes = 0;                                          // how many classes entered macro_auc
  // Per class (C entries each): auc is NaN where undefined.
  std::vector<double> precision, recall, f1, auc;
  std::vector<int64_t> support;    // documents with that label
  std::vector<int64_t> predicted;  // documents predicted as that class
  std::vector<int64_t> confusion;  // C x C row-major: row = true label, column = predicted class
  int64_t count(int true_class, int predicted_class) const {
    return confusion[size_t(true_class) * size_t(num_classes) + size_t(predicted_class)];
  }
};

// probs: n x C row-major scores (n = labels.size()), all finite; labels in [0, C); C >= 2, n >= 1.
// Anything else is a one-line wersa::Error saying what was expected.
ClassMetrics classification_metrics(const std::vector<float>& probs, const std::vector<int32_t>& labels,
                                    int num_classes);

// The one-vs-rest AUC of one class alone: scores[i] of document i, positive[i] when its label is
// the class. NaN when there are no positives or no negatives. Scores must be finite.
double roc_auc(const std::vector<double>& scores, const std::vector<bool>& positive);

// Every field of m as JSON: per-class values as arrays indexed by class, confusion as C rows of
// C counts, class_names beside them; NaN (an undefined AUC) is written as null. class_names has
// C entries, or none (then the classes are named "0", "1", ...).
nlohmann::json metrics_to_json(const ClassMetrics& m, const std::vector<std::string>& class_names);

// Text for a terminal or a log: the confusion matrix (rows true, columns predicted) with aligned
// columns, a table of per-class precision, recall, F1, AUC and support, and the overall figures.
std::string format_confusion(const ClassMetrics& m, const std::vector<std::string>& class_names);

}  // namespace wersa

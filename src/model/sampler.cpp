// Next-token sampling (see include/wersa/model/sampler.h for the chain and its order).
#include "wersa/model/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "wersa/common/error.h"
#include "wersa/common/rng.h"

namespace wersa {

namespace {
constexpr uint64_t kSampleStream = 0x73616d706c65ull;  // "sample"
}

Sampler::Sampler(const SamplerOptions& o) : o_(o) {
  WERSA_CHECK(std::isfinite(o.temp), "--temp ", o.temp, ": expected a finite number (0 = greedy)");
  WERSA_CHECK(o.top_k >= 0, "--top-k ", o.top_k, ": expected >= 0 (0 = off)");
  WERSA_CHECK(o.top_p > 0 && o.top_p <= 1, "--top-p ", o.top_p, ": expected a number in (0, 1] (1 = off)");
  WERSA_CHECK(o.min_p >= 0 && o.min_p <= 1, "--min-p ", o.min_p, ": expected a number in [0, 1] (0 = off)");
  WERSA_CHECK(std::isfinite(o.repeat_penalty) && o.repeat_penalty > 0, "--repeat-penalty ", o.repeat_penalty,
              ": expected a number > 0 (1 = off)");
  WERSA_CHECK(o.repeat_last_n >= -1, "--repeat-last-n ", o.repeat_last_n,
              ": expected >= -1 (-1 = all, 0 = off)");
}

int32_t Sampler::sample(const Tensor& logits, const std::vector<int32_t>& history, int32_t banned) {
  WERSA_CHECK(logits.dtype == DType::F32 || logits.dtype == DType::F64, "sample: logits ", logits.describe(),
              " should be f32 or f64");
  const int64_t V = logits.numel();
  WERSA_CHECK(V >= 1, "sample: empty logits");
  logit_.resize(size_t(V));
  if (logits.dtype == DType::F32) {
    const float* l = logits.host<float>();
    for (int64_t i = 0; i < V; ++i) logit_[size_t(i)] = l[i];
  } else {
    const double* l = logits.host<double>();
    for (int64_t i = 0; i < V; ++i) logit_[size_t(i)] = l[i];
  }
  constexpr double kNegInf = -std::numeric_limits<double>::infinity();
  for (double& l : logit_)
    if (std::isnan(l)) l = kNegInf;  // never pick a NaN
  if (banned >= 0 && banned < V) logit_[size_t(banned)] = kNegInf;
  // 1. Repetition penalty, once per distinct recent token.
  if (o_.repeat_penalty != 1.0 && o_.repeat_last_n != 0 && !history.empty()) {
    const size_t n =
        o_.repeat_last_n < 0 ? history.size() : std::min(history.size(), size_t(o_.repeat_last_n));
    seen_.assign(size_t(V), 0);
    for (size_t i = history.size() - n; i < history.size(); ++i) {
      const int32_t t = history[i];
      if (t < 0 || t >= V || seen_[size_t(t)]) continue;
      seen_[size_t(t)] = 1;
      double& l = logit_[size_t(t)];
      l = l > 0 ? l / o_.repeat_penalty : l * o_.repeat_penalty;
    }
  }
  // 2. Greedy.
  auto better = [&](int32_t a, int32_t b) {
    return logit_[size_t(a)] > logit_[size_t(b)] || (logit_[size_t(a)] == logit_[size_t(b)] && a < b);
  };
  if (o_.temp <= 0) {
    int32_t best = 0;
    for (int32_t i = 1; i < int32_t(V); ++i)
      if (better(i, best)) best = i;
    return best;
  }
  cand_.clear();
  for (int32_t i = 0; i < int32_t(V); ++i)
    if (logit_[size_t(i)] > kNegInf) cand_.push_back(i);
  if (cand_.empty()) return banned == 0 && V > 1 ? 1 : 0;  // every logit -inf: nothing to prefer
  // 3. Top-k, then the candidates in (logit desc, id asc) order when top-p needs it.
  if (o_.top_k > 0 && size_t(o_.top_k) < cand_.size()) {
    std::nth_element(cand_.begin(), cand_.begin() + o_.top_k, cand_.end(), better);
    cand_.resize(size_t(o_.top_k));
  }
  if (o_.top_p < 1.0 || o_.top_k > 0) std::sort(cand_.begin(), cand_.end(), better);
  double lmax = kNegInf;
  for (int32_t t : cand_) lmax = std::max(lmax, logit_[size_t(t)]);
  // 4-5. Top-p and min-p on the temperature-1 probabilities of the candidates.
  if (o_.top_p < 1.0 && cand_.size() > 1) {
    prob_.resize(cand_.size());
    double sum = 0;
    for (size_t i = 0; i < cand_.size(); ++i) sum += prob_[i] = std::exp(logit_[size_t(cand_[i])] - lmax);
    double cum = 0;
    size_t keep = cand_.size();
    for (size_t i = 0; i < cand_.size(); ++i) {
      cum += prob_[i] / sum;
      if (cum >= o_.top_p) {
        keep = i + 1;
        break;
      }
    }
    cand_.resize(keep);
  }
  if (o_.min_p > 0 && cand_.size() > 1) {
    const double floor = lmax + std::log(o_.min_p);  // p_i >= min_p * p_max  <=>  l_i >= lmax + log(min_p)
    size_t k = 0;
    for (int32_t t : cand_)
      if (logit_[size_t(t)] >= floor) cand_[k++] = t;
    cand_.resize(std::max<size_t>(k, 1));
  }
  // 6. Temperature and one draw.
  prob_.resize(cand_.size());
  double sum = 0;
  for (size_t i = 0; i < cand_.size(); ++i)
    sum += prob_[i] = std::exp((logit_[size_t(cand_[i])] - lmax) / o_.temp);
  const double u = rng_uniform(o_.seed, kSampleStream, uint64_t(history.size())) * sum;
  double cum = 0;
  for (size_t i = 0; i < cand_.size(); ++i) {
    cum += prob_[i];
    if (u < cum) return cand_[i];
  }
  return cand_.back();
}

}  // namespace wersa

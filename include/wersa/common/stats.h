// Mean and sample standard deviation of a list of measurements (wersa-bench repetitions,
// wersa-experiment seeds).
#pragma once
#include <cmath>
#include <vector>

namespace wersa {

struct MeanSd {
  double mean = 0, sd = 0;  // sd: sample standard deviation (n - 1), 0 for fewer than two values
};

inline MeanSd mean_sd(const std::vector<double>& v) {
  MeanSd s;
  if (v.empty()) return {std::nan(""), 0.0};
  for (const double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (const double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0.0;
  return s;
}

}  // namespace wersa

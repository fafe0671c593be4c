#include "wersa/common/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace wersa {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) b /= 1000, ++u;
  char s[32];
  std::snprintf(s, sizeof s, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return s;
}

std::string human_count(double n) {
  const char* units[] = {"", "k", "M", "G", "T"};
  int u = 0;
  while (std::fabs(n) >= 1000 && u < 4) n /= 1000, ++u;
  char s[32];
  std::snprintf(s, sizeof s, u == 0 ? "%.0f%s" : "%.2f%s", n, units[u]);
  return s;
}

std::string human_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long t = std::lround(seconds);
  char s[32];
  if (t >= 3600)
    std::snprintf(s, sizeof s, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(s, sizeof s, "%ld:%02ld", t / 60, t % 60);
  return s;
}

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled), tty_(::isatty(2) == 1) {
  start_ = last_ = std::chrono::steady_clock::now();
}

ProgressBar::~ProgressBar() {
  if (drawn_ && !finished_ && tty_) std::fputc('\n', stderr);
}

void ProgressBar::update(int64_t done, int64_t total, const std::string& detail, bool force) {
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  if (!force && since < (tty_ ? 0.1 : 10.0)) return;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double frac = total > 0 ? std::min(1.0, double(done) / double(total)) : 0.0;
  const double eta = frac > 0 ? elapsed * (1 - frac) / frac : NAN;
  constexpr int kWidth = 24;
  std::string bar(kWidth, ' ');
  const int fill = static_cast<int>(frac * kWidth);
  for (int i = 0; i < fill; ++i) bar[i] = '=';
  if (fill < kWidth) bar[fill] = '>';
  char line[512];
  std::snprintf(line, sizeof line, "%s [%s] %3.0f%% %s/%s  %s  ETA %s", label_.c_str(), bar.c_str(),
                100 * frac, human_bytes(double(done)).c_str(), human_bytes(double(total)).c_str(),
                detail.c_str(), human_duration(eta).c_str());
  if (tty_)
    std::fprintf(stderr, "\r%s\033[K", line);
  else
    std::fprintf(stderr, "%s\n", line);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish(const std::string& summary) {
  if (!enabled_ || finished_) return;
  finished_ = true;
  if (drawn_ && tty_) std::fputc('\n', stderr);
  if (!summary.empty()) std::fprintf(stderr, "%s\n", summary.c_str());
  std::fflush(stderr);
}

}  // namespace wersa

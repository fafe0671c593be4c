// A progress line on stderr: bar, percent, amounts, rates and ETA. On a terminal it redraws in
// place (at most 10 times a second); otherwise (logs, CI) it prints a plain line every 10 s, so
// long runs stay visible without flooding the output.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace wersa {

class ProgressBar {
 public:
  ProgressBar(std::string label, bool enabled = true);
  ~ProgressBar();
  // done / total drive the bar and the ETA; `detail` follows them (e.g. "3.1 MB/s, 1.2M tok/s").
  void update(int64_t done, int64_t total, const std::string& detail, bool force = false);
  void finish(const std::string& summary);  // ends the line; prints the summary

 private:
  std::string label_;
  bool enabled_, tty_, drawn_ = false, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

std::string human_bytes(double bytes);       // "12.3 MB"
std::string human_count(double n);           // "4.56M"
std::string human_duration(double seconds);  // "1:02:03" / "2:03"

}  // namespace wersa

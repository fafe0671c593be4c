#include "wersa/train/interrupt.h"

#include <unistd.h>

#include <csignal>
#include <cstring>

namespace wersa {

namespace {

volatile std::sig_atomic_t g_signal = 0;
constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
struct sigaction g_old[3];

void say(const char* s) {
  const ssize_t r = ::write(STDERR_FILENO, s, std::strlen(s));
  (void)r;
}

void on_signal(int sig) {
  if (g_signal != 0) {  // the second one: at once
    say("\nwersa-train: second signal, exiting now without a checkpoint\n");
    ::_exit(128 + sig);
  }
  g_signal = sig;
  say("\nwersa-train: interrupt received: finishing the current step, then writing a checkpoint "
      "(send it again to exit at once)\n");
}

}  // namespace

InterruptHandlers::InterruptHandlers() {
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &g_old[i]);
}

InterruptHandlers::~InterruptHandlers() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_old[i], nullptr);
  g_signal = 0;  // a request belongs to the run the handlers were held for
}

int interrupt_requested() { return int(g_signal); }

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
  }
  return "a signal";
}

}  // namespace wersa

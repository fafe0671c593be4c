// SIGINT, SIGTERM and SIGHUP during training: the first one asks the trainer to finish the step
// it is in, write a checkpoint and stop; a second one ends the process at once (exit 128 + signal).
// Installed by InterruptHandlers for its lifetime (wersa-train holds one around train());
// library callers that hold none keep the default behaviour of the signals.
#pragma once

namespace wersa {

class InterruptHandlers {
 public:
  InterruptHandlers();   // installs the handlers and clears any earlier request
  ~InterruptHandlers();  // restores the previous handlers
  InterruptHandlers(const InterruptHandlers&) = delete;
  InterruptHandlers& operator=(const InterruptHandlers&) = delete;
};

// The signal that asked to stop (0: none).
int interrupt_requested();
const char* signal_name(int sig);  // "SIGINT", ...

}  // namespace wersa

// Fibers for the CUDA simulator: each simulated CUDA thread runs on a stack of its own, and the
// scheduler switches between them on one CPU thread. On x86-64 a switch saves and restores the
// callee-saved registers and the floating-point control words (tens of nanoseconds); elsewhere
// glibc's ucontext does it (a system call per switch). Under AddressSanitizer every switch is
// announced to it, so it follows the stacks.
#pragma once
#include <cstddef>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

// WERSA_SIM_ASAN: built with AddressSanitizer (gcc or clang), whose fiber interface is then used.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WERSA_SIM_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(WERSA_SIM_ASAN)
#define WERSA_SIM_ASAN 1
#endif
#ifdef WERSA_SIM_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace wersa::sim {

class Fiber {
 public:
  using Entry = void (*)(void* arg);
  Fiber() = default;
  ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Prepares the fiber to run entry(arg) from the start of its stack (allocated on first use);
  // whatever it ran before is abandoned.
  void reset(Entry entry, void* arg);
  // From the scheduler: runs the fiber until it yields or finishes.
  void resume();
  // From inside the fiber: back to the scheduler (resume() returns).
  void yield();
  // From inside the fiber, as its last act: back to the scheduler, never to return.
  [[noreturn]] void finish();

  static size_t stack_bytes();

 private:
  void* stack_ = nullptr;  // mapping: a guard page, then the stack
  size_t mapped_ = 0;
#if defined(__x86_64__)
  void* sp_ = nullptr;         // the fiber's saved stack pointer
  void* caller_sp_ = nullptr;  // the scheduler's
#else
  ucontext_t ctx_{}, caller_{};
#endif
  void* fake_stack_ = nullptr;  // ASan's fake stack of the suspended side
  const void* caller_bottom_ = nullptr;
  size_t caller_size_ = 0;
  Entry entry_ = nullptr;
  void* arg_ = nullptr;
  // False from the first resume() of a run until finish(): a fiber reset while false was
  // abandoned mid-kernel, and its stack may hold poisoned frames (under ASan).
  bool clean_ = true;
  static void start(Fiber* f);
  friend void fiber_trampoline_entry(Fiber* f);
};

}  // namespace wersa::sim

#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace wersa::sim {

namespace {
[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "CUDA simulator: %s\n", what);
  std::abort();
}

#ifdef WERSA_SIM_ASAN
inline void start_switch(void** fake, const void* bottom, size_t size) {
  __sanitizer_start_switch_fiber(fake, bottom, size);
}
inline void finish_switch(void* fake, const void** bottom, size_t* size) {
  __sanitizer_finish_switch_fiber(fake, bottom, size);
}
#else
inline void start_switch(void**, const void*, size_t) {}
inline void finish_switch(void*, const void**, size_t*) {}
#endif
}  // namespace

size_t Fiber::stack_bytes() {
#ifdef WERSA_SIM_ASAN
  return size_t(512) << 10;  // instrumented frames are several times larger
#else
  return size_t(128) << 10;
#endif
}

Fiber::~Fiber() {
  if (stack_) ::munmap(stack_, mapped_);
}

#if defined(__x86_64__)
// wersa_sim_switch(save, to): pushes the callee-saved registers and the SSE/x87 control words,
// stores the stack pointer in *save, loads `to` and pops the same from there.
extern "C" void wersa_sim_switch(void** save, void* to);
asm(R"(
  .text
  .globl wersa_sim_switch
  .type wersa_sim_switch, @function
wersa_sim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size wersa_sim_switch, .-wersa_sim_switch

  .globl wersa_sim_trampoline
  .type wersa_sim_trampoline, @function
wersa_sim_trampoline:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size wersa_sim_trampoline, .-wersa_sim_trampoline
)");
extern "C" void wersa_sim_trampoline();
#endif

void fiber_trampoline_entry(Fiber* f) { Fiber::start(f); }

#if !defined(__x86_64__)
namespace {
thread_local Fiber* t_starting = nullptr;  // makecontext passes int arguments only
void ucontext_entry() { fiber_trampoline_entry(t_starting); }
}  // namespace
#endif

void Fiber::start(Fiber* f) {
  finish_switch(nullptr, &f->caller_bottom_, &f->caller_size_);
  f->entry_(f->arg_);
  f->finish();
}

void Fiber::reset(Entry entry, void* arg) {
  entry_ = entry;
  arg_ = arg;
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  bool fresh = false;
  if (!stack_) {
    fresh = true;
    mapped_ = stack_bytes() + page;
    stack_ =
        ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (stack_ == MAP_FAILED) die("cannot map a fiber stack");
    if (::mprotect(stack_, page, PROT_NONE) != 0) die("cannot protect a fiber stack's guard page");
  }
  char* lo = static_cast<char*>(stack_) + page;
#ifdef WERSA_SIM_ASAN
  // A fiber abandoned mid-kernel leaves its frames' redzones poisoned (and a new mapping may
  // reuse poisoned shadow). A fiber that finished left a clean stack: its frames returned, and
  // the noreturn call to finish() unpoisoned the rest, so the 64 KiB of shadow per fiber and
  // launch are cleared only when needed (that clearing was most of a sanitized model test).
  if (fresh || !clean_) __asan_unpoison_memory_region(lo, stack_bytes());
#else
  (void)fresh;
#endif
  clean_ = true;
#if defined(__x86_64__)
  auto* top = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(lo + stack_bytes()) & ~uintptr_t(15));
  uint64_t* sp = top - 10;  // 16-byte aligned; after the 8 words popped below, calls see ABI alignment
  uint32_t mxcsr;
  uint16_t fpcw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpcw));
  sp[0] = uint64_t(mxcsr) | (uint64_t(fpcw) << 32);
  sp[1] = 0;                                                    // r15
  sp[2] = 0;                                                    // r14
  sp[3] = reinterpret_cast<uint64_t>(&fiber_trampoline_entry);  // r13: called by the trampoline
  sp[4] = reinterpret_cast<uint64_t>(this);                     // r12: its argument
  sp[5] = 0;                                                    // rbx
  sp[6] = 0;                                                    // rbp
  sp[7] = reinterpret_cast<uint64_t>(&wersa_sim_trampoline);    // where `ret` goes
  sp_ = sp;
#else
  if (getcontext(&ctx_) != 0) die("getcontext failed");
  ctx_.uc_stack.ss_sp = lo;
  ctx_.uc_stack.ss_size = stack_bytes();
  ctx_.uc_link = nullptr;
  makecontext(&ctx_, &ucontext_entry, 0);
#endif
}

void Fiber::resume() {
  clean_ = false;
  void* fake = nullptr;
  start_switch(&fake, static_cast<char*>(stack_) + (mapped_ - stack_bytes()), stack_bytes());
#if defined(__x86_64__)
  wersa_sim_switch(&caller_sp_, sp_);
#else
  t_starting = this;
  swapcontext(&caller_, &ctx_);
#endif
  finish_switch(fake, nullptr, nullptr);
}

void Fiber::yield() {
  start_switch(&fake_stack_, caller_bottom_, caller_size_);
#if defined(__x86_64__)
  wersa_sim_switch(&sp_, caller_sp_);
#else
  swapcontext(&ctx_, &caller_);
#endif
  finish_switch(fake_stack_, &caller_bottom_, &caller_size_);
}

void Fiber::finish() {
  clean_ = true;
  start_switch(nullptr, caller_bottom_, caller_size_);  // null: this stack's fake frames are dropped
#if defined(__x86_64__)
  wersa_sim_switch(&sp_, caller_sp_);
#else
  setcontext(&caller_);
#endif
  die("a finished fiber was resumed");
}

}  // namespace wersa::sim

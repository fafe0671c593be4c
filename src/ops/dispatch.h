// Internal to the op dispatchers (src/ops): after an op has validated its arguments once, it calls
// WERSA_DISPATCH(ctx, op, args, dtype) to run the kernel of the context's device (f32 or f64 on the
// CPU; a CUDA kernel handles its dtypes itself). While the context is planning, only kernels that
// take scratch on that device run (to record it; they
// return before computing), and every call opens a ScratchScope. Where the context collects op
// times (Ctx::set_op_times), an outermost call is timed; on CUDA the context's stream is
// synchronised before and after it (the op's device time plus one synchronisation).
//
// An op that routes (a generation-state op: a one-position step, a chunk that continues a
// sequence, a cache append) decides here, above the kernels, which kernels run and in which order,
// so that every backend writes plain kernels only. It brackets its kernel calls with a RoutedOp:
// they then share one scratch scope (scratch the op takes itself stays valid across them, and
// planning records their sum) and are timed as one call of the op (the kernels inside are not
// outermost), under the op's name.
#pragma once
#include <chrono>
#include <exception>
#include <optional>

#include "../kernels/cpu/kernels.h"
#include "../kernels/cuda/kernels.h"
#include "wersa/backend/backend.h"

namespace wersa::detail {

#define WERSA_OP(NAME, ARGS, CPU_SCRATCH, CUDA_SCRATCH) \
  constexpr bool NAME##_scratch[2] = {CPU_SCRATCH, CUDA_SCRATCH};
#include "../kernels/ops.inc"
#undef WERSA_OP

// The OpTimes an op call adds to: set, and this call outermost outside planning.
inline OpTimes* timed_call(const Ctx& ctx) {
  return ctx.op_times() && !ctx.planning() && !ctx.in_op() ? ctx.op_times() : nullptr;
}

// Before reading a clock for an op's time: on CUDA, what the stream holds has finished.
inline void timing_sync(const Ctx& ctx) {
  if (ctx.device() == Device::CUDA) cuda::stream_sync(ctx.stream());
}

template <class A>
void dispatch(Ctx& ctx, const A& a, DType dt, const bool (&takes_scratch)[2], void (*f32)(Ctx&, const A&),
              void (*f64)(Ctx&, const A&), void (*cu)(Ctx&, const A&), const char* op) {
  if (ctx.planning() && !takes_scratch[ctx.device() == Device::CUDA]) return;
  using clock = std::chrono::steady_clock;
  OpTimes* times = timed_call(ctx);
  if (times) timing_sync(ctx);
  const clock::time_point t0 = times ? clock::now() : clock::time_point{};
  {
    ScratchScope scope(ctx);
    if (ctx.device() == Device::CUDA)
      cu(ctx, a);
    else if (dt == DType::F64)
      f64(ctx, a);
    else if (dt == DType::F32)
      f32(ctx, a);
    else
      WERSA_FAIL(op, ": unsupported dtype ", dtype_name(dt));
  }
  if (times) {
    timing_sync(ctx);
    times->add(op, std::chrono::duration<double>(clock::now() - t0).count());
  }
}

// Brackets the kernel calls of one routed op call (see above).
class RoutedOp {
 public:
  RoutedOp(Ctx& ctx, const char* op)
      : ctx_(ctx), op_(op), times_(timed_call(ctx)), uncaught_(std::uncaught_exceptions()) {
    if (times_) timing_sync(ctx), t0_ = clock::now();
    scope_.emplace(ctx);
  }
  ~RoutedOp() {
    scope_.reset();
    if (times_ && std::uncaught_exceptions() == uncaught_) {
      timing_sync(ctx_);
      times_->add(op_, std::chrono::duration<double>(clock::now() - t0_).count());
    }
  }
  RoutedOp(const RoutedOp&) = delete;
  RoutedOp& operator=(const RoutedOp&) = delete;

 private:
  using clock = std::chrono::steady_clock;
  const Ctx& ctx_;
  const char* op_;
  OpTimes* times_;
  int uncaught_;
  clock::time_point t0_{};
  std::optional<ScratchScope> scope_;
};

}  // namespace wersa::detail

#define WERSA_DISPATCH(CTX, OP, ARGS, DTYPE)                                                           \
  ::wersa::detail::dispatch(CTX, ARGS, DTYPE, ::wersa::detail::OP##_scratch, &::wersa::cpu::OP<float>, \
                            &::wersa::cpu::OP<double>, &::wersa::cuda::OP, #OP)

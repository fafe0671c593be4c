#include "wersa/ops/matmul.h"

#include <chrono>

#include "check.h"
#include "dispatch.h"

namespace wersa {
namespace {

// Times a matmul call by shape for OpTimes::gemms (the dispatcher times it by op as every op).
class GemmTimer {
 public:
  GemmTimer(const Ctx& ctx, const char* op, const char* products, int64_t N, int64_t I, int64_t O,
            int n_products)
      : ctx_(ctx),
        times_(detail::timed_call(ctx)),
        op_(op),
        products_(products),
        n_(N),
        i_(I),
        o_(O),
        k_(n_products) {
    if (times_) detail::timing_sync(ctx), t0_ = clock::now();
  }
  ~GemmTimer() {
    if (times_) detail::timing_sync(ctx_);
    if (times_)
      times_->add_gemm(op_, products_, n_, i_, o_, 2.0 * double(n_) * double(i_) * double(o_) * k_,
                       std::chrono::duration<double>(clock::now() - t0_).count());
  }

 private:
  using clock = std::chrono::steady_clock;
  const Ctx& ctx_;
  OpTimes* times_;
  const char *op_, *products_;
  int64_t n_, i_, o_;
  int k_;
  clock::time_point t0_{};
};

}  // namespace

void matmul_fwd(Ctx& ctx, const MatmulFwd& a) {
  const detail::ArgCheck c(ctx, "matmul_fwd");
  c.need(a.y, "y").need(a.x, "x").need(a.w, "w");
  c.that(a.x.rank() == 2 && a.w.rank() == 2, "x and w must be 2-D: ", a.x, ", ", a.w);
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  c.need(a.w, "w", Shape{O, I}).need(a.y, "y", Shape{N, O}).opt(a.b, Shape{O});
  c.floating(a.y).dtype(a.y.dtype, {&a.x, &a.b});
  if (a.bf16) {  // mixed precision: bf16 operands, f32 accumulation
    c.dtype(DType::F32, {&a.y}).dtype(DType::BF16, {&a.w});
    const GemmTimer timer(ctx, "matmul_fwd", a.accumulate_y ? "y+=" : "y", N, I, O, 1);
    WERSA_DISPATCH(ctx, matmul_fwd_mixed, a, DType::F32);
    return;
  }
  if (a.w.dtype == DType::BF16) {  // inference weights, widened exactly: fp32/f64 arithmetic
    WERSA_DISPATCH(ctx, matmul_fwd_bf16w, a, a.y.dtype);
    return;
  }
  c.dtype(a.y.dtype, {&a.w});
  const GemmTimer timer(ctx, "matmul_fwd", a.accumulate_y ? "y+=" : "y", N, I, O, 1);
  WERSA_DISPATCH(ctx, matmul_fwd, a, a.y.dtype);
}

void matmul_bwd(Ctx& ctx, const MatmulBwd& a) {
  const detail::ArgCheck c(ctx, "matmul_bwd");
  c.need(a.dy, "dy").need(a.x, "x").need(a.w, "w");
  c.that(a.x.rank() == 2 && a.w.rank() == 2, "x and w must be 2-D: ", a.x, ", ", a.w);
  const int64_t N = a.x.dim(0), I = a.x.dim(1), O = a.w.dim(0);
  c.need(a.w, "w", Shape{O, I}).need(a.dy, "dy", Shape{N, O});
  c.opt(a.dx, Shape{N, I}).opt(a.dw, Shape{O, I}).opt(a.db, Shape{O});
  c.floating(a.dy).dtype(a.dy.dtype, {&a.dx, &a.dw, &a.db, &a.x});
  if (a.bf16)
    c.dtype(DType::F32, {&a.dy}).dtype(DType::BF16, {&a.w});
  else
    c.dtype(a.dy.dtype, {&a.w});
  const bool dx = a.dx.defined(), dw = a.dw.defined();
  const char* products = dx && dw ? (a.accumulate_dx ? "dx+=,dw" : "dx,dw")
                         : dx     ? (a.accumulate_dx ? "dx+=" : "dx")
                         : dw     ? "dw"
                                  : "db";
  const GemmTimer timer(ctx, "matmul_bwd", products, N, I, O, int(dx) + int(dw));
  if (a.bf16) {
    WERSA_DISPATCH(ctx, matmul_bwd_mixed, a, DType::F32);
    return;
  }
  WERSA_DISPATCH(ctx, matmul_bwd, a, a.dy.dtype);
}

}  // namespace wersa

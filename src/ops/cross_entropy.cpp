#include "wersa/ops/cross_entropy.h"

#include "check.h"
#include "dispatch.h"

namespace wersa {
namespace {

// Shapes and dtypes shared by forward and backward: logits [N, V], targets [N] i32. The target
// values (user data) are checked by the kernels, where the targets are.
void check_common(const detail::ArgCheck& c, const Tensor& logits, const Tensor& targets) {
  c.need(logits, "logits").need(targets, "targets");
  c.that(logits.rank() == 2 && logits.dim(1) >= 1, "logits must be [N, V] with V >= 1: ", logits);
  c.need(targets, "targets", Shape{logits.dim(0)}).dtype(DType::I32, {&targets}).floating(logits);
}

}  // namespace

void cross_entropy_fwd(Ctx& ctx, const CrossEntropyFwd& a) {
  const detail::ArgCheck c(ctx, "cross_entropy_fwd");
  c.need(a.losses, "losses");
  check_common(c, a.logits, a.targets);
  c.need(a.losses, "losses", Shape{a.logits.dim(0)}).dtype(a.logits.dtype, {&a.losses});
  WERSA_DISPATCH(ctx, cross_entropy_fwd, a, a.logits.dtype);
}

void cross_entropy_bwd(Ctx& ctx, const CrossEntropyBwd& a) {
  const detail::ArgCheck c(ctx, "cross_entropy_bwd");
  c.need(a.dlogits, "dlogits");
  check_common(c, a.logits, a.targets);
  c.need(a.dlogits, "dlogits", a.logits.shape).dtype(a.logits.dtype, {&a.dlogits});
  if (a.weights.defined())
    c.need(a.weights, "weights", Shape{a.logits.dim(1)}).dtype(a.logits.dtype, {&a.weights});
  c.opt(a.losses, Shape{a.logits.dim(0)});
  if (a.losses.defined()) c.dtype(a.logits.dtype, {&a.losses});
  WERSA_DISPATCH(ctx, cross_entropy_bwd, a, a.logits.dtype);
}

void loss_sum_fwd(Ctx& ctx, const LossSumFwd& a) {
  const detail::ArgCheck c(ctx, "loss_sum_fwd");
  c.need(a.out, "out", Shape{2}).dtype(DType::F64, {&a.out});
  c.need(a.losses, "losses").rank(a.losses, 1, "[N]").floating(a.losses);
  c.need(a.targets, "targets", a.losses.shape).dtype(DType::I32, {&a.targets});
  if (a.weights.defined()) c.rank(a.weights, 1, "[V]").dtype(a.losses.dtype, {&a.weights});
  WERSA_DISPATCH(ctx, loss_sum_fwd, a, a.losses.dtype);
}

}  // namespace wersa

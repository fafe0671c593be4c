#include "wersa/ops/activation.h"

#include "check.h"
#include "dispatch.h"

namespace wersa {

const char* activation_name(Activation act) {
  switch (act) {
    case Activation::Gelu:
      return "gelu";
    case Activation::Relu:
      return "relu";
    case Activation::Sigmoid:
      return "sigmoid";
    case Activation::Silu:
      return "silu";
  }
  return "?";
}

namespace {
void check_activation(const detail::ArgCheck& c, Activation act) {
  c.that(act == Activation::Gelu || act == Activation::Relu || act == Activation::Sigmoid ||
             act == Activation::Silu,
         "unknown activation (enum value ", int(act), "); expected gelu, relu, sigmoid or silu");
}
}  // namespace

void activation_fwd(Ctx& ctx, const ActivationFwd& a) {
  const detail::ArgCheck c(ctx, "activation_fwd");
  c.need(a.y, "y").need(a.x, "x", a.y.shape).floating(a.y).dtype(a.y.dtype, {&a.x});
  check_activation(c, a.act);
  WERSA_DISPATCH(ctx, activation_fwd, a, a.y.dtype);
}

void activation_bwd(Ctx& ctx, const ActivationBwd& a) {
  const detail::ArgCheck c(ctx, "activation_bwd");
  c.need(a.dx, "dx").need(a.dy, "dy", a.dx.shape).need(a.x, "x", a.dx.shape).floating(a.dx);
  c.dtype(a.dx.dtype, {&a.dy, &a.x});
  check_activation(c, a.act);
  WERSA_DISPATCH(ctx, activation_bwd, a, a.dx.dtype);
}

}  // namespace wersa

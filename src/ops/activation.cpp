#include "wersa/ops/activation.h"

#include "wersa/ops/dispatch.h"

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
void check_activation(const char* op, Activation act) {
  WERSA_CHECK(act == Activation::Gelu || act == Activation::Relu || act == Activation::Sigmoid ||
                  act == Activation::Silu,
              op, ": unknown activation (enum value ", int(act), "); expected gelu, relu, sigmoid or silu");
}
}  // namespace

void activation_fwd(const ActivationFwd& a) {
  const char* op = "activation_fwd";
  check_defined(op, a.y, "y");
  check_defined(op, a.x, "x");
  check_activation(op, a.act);
  check_shape(op, a.x, a.y.shape);
  check_dtype(op, a.x, a.y.dtype);
  check_same_device(op, {&a.y, &a.x});
  WERSA_DISPATCH(activation_fwd, a, a.y.device, a.y.dtype);
}

void activation_bwd(const ActivationBwd& a) {
  const char* op = "activation_bwd";
  check_defined(op, a.dx, "dx");
  check_defined(op, a.dy, "dy");
  check_defined(op, a.x, "x");
  check_activation(op, a.act);
  check_shape(op, a.dy, a.dx.shape);
  check_shape(op, a.x, a.dx.shape);
  check_dtype(op, a.dy, a.dx.dtype);
  check_dtype(op, a.x, a.dx.dtype);
  check_same_device(op, {&a.dx, &a.dy, &a.x});
  WERSA_DISPATCH(activation_bwd, a, a.dx.device, a.dx.dtype);
}

}  // namespace wersa

#include "wersa/ops/cross_entropy.h"

#include "wersa/ops/dispatch.h"

namespace wersa {
namespace {

// Shapes, dtypes and devices shared by forward and backward: logits [N, V], targets [N] i32.
void check_common(const char* op, const Tensor& logits, const Tensor& targets) {
  check_defined(op, logits, "logits");
  check_defined(op, targets, "targets");
  WERSA_CHECK(logits.rank() == 2 && logits.dim(1) >= 1, op,
              ": logits must be [N, V] with V >= 1: ", logits.describe());
  check_shape(op, targets, Shape{logits.dim(0)});
  check_dtype(op, targets, DType::I32);
}

// Target ids are user data (from a token file): validate them before any kernel runs. Only host
// memory can be read here; a device kernel must do its own check.
void check_target_values(const char* op, const Tensor& targets, int64_t V) {
  if (targets.device != Device::CPU) return;
  const int32_t* t = targets.ptr<int32_t>();
  for (int64_t n = 0; n < targets.numel(); ++n)
    WERSA_CHECK(t[n] >= -1 && t[n] < V, op, ": target id ", t[n], " at position ", n, " of ",
                targets.describe(), " is outside [-1, ", V, ") (vocabulary size ", V, ", -1 = ignored)");
}

}  // namespace

void cross_entropy_fwd(const CrossEntropyFwd& a) {
  const char* op = "cross_entropy_fwd";
  check_defined(op, a.losses, "losses");
  check_common(op, a.logits, a.targets);
  check_shape(op, a.losses, Shape{a.logits.dim(0)});
  check_dtype(op, a.losses, a.logits.dtype);
  check_same_device(op, {&a.losses, &a.logits, &a.targets});
  check_target_values(op, a.targets, a.logits.dim(1));
  WERSA_DISPATCH(cross_entropy_fwd, a, a.logits.device, a.logits.dtype);
}

void cross_entropy_bwd(const CrossEntropyBwd& a) {
  const char* op = "cross_entropy_bwd";
  check_defined(op, a.dlogits, "dlogits");
  check_common(op, a.logits, a.targets);
  check_shape(op, a.dlogits, a.logits.shape);
  check_dtype(op, a.dlogits, a.logits.dtype);
  check_same_device(op, {&a.dlogits, &a.logits, &a.targets});
  check_target_values(op, a.targets, a.logits.dim(1));
  WERSA_DISPATCH(cross_entropy_bwd, a, a.logits.device, a.logits.dtype);
}

}  // namespace wersa

// Internal to the op dispatchers: the argument checks every op needs, written once. Each failure
// is a wersa::Error naming the op and the tensor ("matmul_fwd: tensor y f32 [3, 4] cpu should have
// shape [3, 5]"), since a mismatch reaching an op is reported to whoever built the call.
#pragma once
#include <initializer_list>

#include "wersa/tensor/context.h"
#include "wersa/tensor/tensor.h"

namespace wersa::detail {

class ArgCheck {
 public:
  ArgCheck(const Ctx& ctx, const char* op) : ctx_(ctx), op_(op) {}
  const char* op() const { return op_; }

  // A required tensor: defined and on the context's device.
  const ArgCheck& need(const Tensor& t, const char* what) const;
  // A required tensor of a given shape.
  const ArgCheck& need(const Tensor& t, const char* what, const Shape& s) const;
  // An optional tensor: when defined, on the context's device (and of shape s).
  const ArgCheck& opt(const Tensor& t, const Shape& s) const;
  const ArgCheck& opt(const Tensor& t) const;
  // t has `rank` dimensions (layout names them in the message, e.g. "[B, T, H, d]").
  const ArgCheck& rank(const Tensor& t, int rank, const char* layout) const;
  // Every defined tensor of the list has dtype dt.
  const ArgCheck& dtype(DType dt, std::initializer_list<const Tensor*> ts) const;
  // t is f32 or f64.
  const ArgCheck& floating(const Tensor& t) const;
  // Equal element counts (elementwise ops over differently shaped views).
  const ArgCheck& same_size(const Tensor& t, const Tensor& like) const;
  // a and b share no byte (kernels that read one while writing the other, or restrict pointers).
  const ArgCheck& disjoint(const Tensor& a, const Tensor& b) const;
  // A condition on scalar arguments; the message names the op first. The message parts are
  // formatted only on failure: pass tensors themselves (streamed as describe()), not strings.
  template <class... A>
  const ArgCheck& that(bool ok, const A&... msg) const {
    if (!ok) throw Error(::wersa::detail::cat(op_, ": ", msg...));
    return *this;
  }

 private:
  const Ctx& ctx_;
  const char* op_;
};

}  // namespace wersa::detail

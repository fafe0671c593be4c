#include "check.h"

namespace wersa::detail {

const ArgCheck& ArgCheck::need(const Tensor& t, const char* what) const {
  check_defined(op_, t, what);
  WERSA_CHECK(t.device == ctx_.device(), op_, ": tensor ", t, " is not on the context's device (",
              device_name(ctx_.device()), ")");
  return *this;
}

const ArgCheck& ArgCheck::need(const Tensor& t, const char* what, const Shape& s) const {
  need(t, what);
  check_shape(op_, t, s);
  return *this;
}

const ArgCheck& ArgCheck::opt(const Tensor& t, const Shape& s) const {
  if (!t.defined()) return *this;
  opt(t);
  check_shape(op_, t, s);
  return *this;
}

const ArgCheck& ArgCheck::opt(const Tensor& t) const {
  if (t.defined())
    WERSA_CHECK(t.device == ctx_.device(), op_, ": tensor ", t, " is not on the context's device (",
                device_name(ctx_.device()), ")");
  return *this;
}

const ArgCheck& ArgCheck::rank(const Tensor& t, int r, const char* layout) const {
  WERSA_CHECK(t.rank() == r, op_, ": tensor ", t, " should be ", layout);
  return *this;
}

const ArgCheck& ArgCheck::dtype(DType dt, std::initializer_list<const Tensor*> ts) const {
  for (const Tensor* t : ts)
    if (t->defined()) check_dtype(op_, *t, dt);
  return *this;
}

const ArgCheck& ArgCheck::floating(const Tensor& t) const {
  check_float(op_, t);
  return *this;
}

const ArgCheck& ArgCheck::disjoint(const Tensor& a, const Tensor& b) const {
  const char *pa = static_cast<const char*>(a.data), *pb = static_cast<const char*>(b.data);
  return that(pa + a.bytes() <= pb || pb + b.bytes() <= pa, a, " overlaps ", b);
}

const ArgCheck& ArgCheck::same_size(const Tensor& t, const Tensor& like) const {
  WERSA_CHECK(t.numel() == like.numel(), op_, ": tensor ", t, " should have ", like.numel(),
              " elements like ", like);
  return *this;
}

}  // namespace wersa::detail

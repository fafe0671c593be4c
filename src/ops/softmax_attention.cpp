#include "wersa/ops/softmax_attention.h"

#include <cmath>
#include <utility>

#include "wersa/ops/dispatch.h"

namespace wersa {

namespace {

void check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  check_defined(op, q, "q");
  check_defined(op, k, "k");
  check_defined(op, v, "v");
  WERSA_CHECK(q.rank() == 4, op, ": tensor ", q.describe(), " should be [B, T, H, d]");
  WERSA_CHECK(k.rank() == 4, op, ": tensor ", k.describe(), " should be [B, T, Hkv, d]");
  const int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), Hkv = k.dim(2), d = q.dim(3);
  WERSA_CHECK(Hkv > 0 && H % Hkv == 0, op, ": query heads (", q.describe(),
              ") must be a multiple of key/value heads (", k.describe(), ")");
  check_shape(op, k, Shape{B, T, Hkv, d});
  check_shape(op, v, Shape{B, T, Hkv, d});
  WERSA_CHECK(q.dtype == DType::F32 || q.dtype == DType::F64, op, ": tensor ", q.describe(),
              " should be f32 or f64");
  check_dtype(op, k, q.dtype);
  check_dtype(op, v, q.dtype);
  WERSA_CHECK(std::isfinite(scale), op, ": scale = ", scale, ", expected a finite number");
}

}  // namespace

void softmax_attention_fwd(const SoftmaxAttnFwd& a) {
  const char* op = "softmax_attention_fwd";
  check_qkv(op, a.q, a.k, a.v, a.scale);
  check_defined(op, a.o, "o");
  check_defined(op, a.lse, "lse");
  check_shape(op, a.o, a.q.shape);
  check_shape(op, a.lse, Shape{a.q.dim(0), a.q.dim(1), a.q.dim(2)});
  check_dtype(op, a.o, a.q.dtype);
  check_dtype(op, a.lse, a.q.dtype);
  check_same_device(op, {&a.o, &a.lse, &a.q, &a.k, &a.v});
  WERSA_DISPATCH(softmax_attention_fwd, a, a.q.device, a.q.dtype);
}

void softmax_attention_bwd(const SoftmaxAttnBwd& a) {
  const char* op = "softmax_attention_bwd";
  check_qkv(op, a.q, a.k, a.v, a.scale);
  const std::pair<const Tensor*, const char*> need[] = {{&a.dq, "dq"},     {&a.dk, "dk"}, {&a.dv, "dv"},
                                                        {&a.dout, "dout"}, {&a.o, "o"},   {&a.lse, "lse"}};
  for (const auto& [t, what] : need) {
    check_defined(op, *t, what);
    check_dtype(op, *t, a.q.dtype);
  }
  check_shape(op, a.dq, a.q.shape);
  check_shape(op, a.dk, a.k.shape);
  check_shape(op, a.dv, a.v.shape);
  check_shape(op, a.dout, a.q.shape);
  check_shape(op, a.o, a.q.shape);
  check_shape(op, a.lse, Shape{a.q.dim(0), a.q.dim(1), a.q.dim(2)});
  check_same_device(op, {&a.dq, &a.dk, &a.dv, &a.dout, &a.o, &a.lse, &a.q, &a.k, &a.v});
  WERSA_DISPATCH(softmax_attention_bwd, a, a.q.device, a.q.dtype);
}

void softmax_attention_decode(const SoftmaxAttnDecode& a) {
  const char* op = "softmax_attention_decode";
  check_defined(op, a.o, "o");
  check_defined(op, a.q, "q");
  check_defined(op, a.kcache, "kcache");
  check_defined(op, a.vcache, "vcache");
  WERSA_CHECK(a.q.rank() == 2, op, ": tensor ", a.q.describe(), " should be [H, d]");
  WERSA_CHECK(a.kcache.rank() == 3, op, ": tensor ", a.kcache.describe(), " should be [Tmax, Hkv, d]");
  const int64_t H = a.q.dim(0), d = a.q.dim(1), Tmax = a.kcache.dim(0), Hkv = a.kcache.dim(1);
  WERSA_CHECK(Hkv > 0 && H % Hkv == 0, op, ": query heads (", a.q.describe(),
              ") must be a multiple of key/value heads (", a.kcache.describe(), ")");
  check_shape(op, a.kcache, Shape{Tmax, Hkv, d});
  check_shape(op, a.vcache, Shape{Tmax, Hkv, d});
  check_shape(op, a.o, Shape{H, d});
  WERSA_CHECK(a.len >= 1 && a.len <= Tmax, op, ": len = ", a.len, ", expected 1..", Tmax, " (rows of kcache ",
              a.kcache.describe(), ")");
  WERSA_CHECK(a.q.dtype == DType::F32 || a.q.dtype == DType::F64, op, ": tensor ", a.q.describe(),
              " should be f32 or f64");
  for (const Tensor* t : {&a.o, &a.kcache, &a.vcache}) check_dtype(op, *t, a.q.dtype);
  WERSA_CHECK(std::isfinite(a.scale), op, ": scale = ", a.scale, ", expected a finite number");
  check_same_device(op, {&a.o, &a.q, &a.kcache, &a.vcache});
  WERSA_DISPATCH(softmax_attention_decode, a, a.q.device, a.q.dtype);
}

void softmax_attention_prefill(const SoftmaxAttnPrefill& a) {
  const char* op = "softmax_attention_prefill";
  check_defined(op, a.o, "o");
  check_defined(op, a.q, "q");
  check_defined(op, a.kcache, "kcache");
  check_defined(op, a.vcache, "vcache");
  WERSA_CHECK(a.q.rank() == 3, op, ": tensor ", a.q.describe(), " should be [T, H, d]");
  WERSA_CHECK(a.kcache.rank() == 3, op, ": tensor ", a.kcache.describe(), " should be [Tmax, Hkv, d]");
  const int64_t T = a.q.dim(0), H = a.q.dim(1), d = a.q.dim(2), Tmax = a.kcache.dim(0), Hkv = a.kcache.dim(1);
  WERSA_CHECK(Hkv > 0 && H % Hkv == 0, op, ": query heads (", a.q.describe(),
              ") must be a multiple of key/value heads (", a.kcache.describe(), ")");
  check_shape(op, a.kcache, Shape{Tmax, Hkv, d});
  check_shape(op, a.vcache, Shape{Tmax, Hkv, d});
  check_shape(op, a.o, a.q.shape);
  WERSA_CHECK(a.pos0 >= 0 && a.pos0 + T <= Tmax, op, ": pos0 = ", a.pos0, " with ", T,
              " queries does not fit the cache ", a.kcache.describe());
  WERSA_CHECK(a.q.dtype == DType::F32 || a.q.dtype == DType::F64, op, ": tensor ", a.q.describe(),
              " should be f32 or f64");
  for (const Tensor* t : {&a.o, &a.kcache, &a.vcache}) check_dtype(op, *t, a.q.dtype);
  WERSA_CHECK(std::isfinite(a.scale), op, ": scale = ", a.scale, ", expected a finite number");
  check_same_device(op, {&a.o, &a.q, &a.kcache, &a.vcache});
  WERSA_DISPATCH(softmax_attention_prefill, a, a.q.device, a.q.dtype);
}

}  // namespace wersa

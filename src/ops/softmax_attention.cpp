#include "wersa/ops/softmax_attention.h"

#include <cmath>

#include "check.h"
#include "dispatch.h"

namespace wersa {

namespace {

void check_heads(const detail::ArgCheck& c, int64_t H, int64_t Hkv, const Tensor& q, const Tensor& k) {
  c.that(Hkv > 0 && H % Hkv == 0, "query heads (", q, ") must be a multiple of key/value heads (", k, ")");
}

void check_scale(const detail::ArgCheck& c, double scale) {
  c.that(std::isfinite(scale), "scale = ", scale, ", expected a finite number");
}

void check_qkv(const detail::ArgCheck& c, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  c.need(q, "q").need(k, "k").need(v, "v").rank(q, 4, "[B, T, H, d]").rank(k, 4, "[B, T, Hkv, d]");
  const int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), Hkv = k.dim(2), d = q.dim(3);
  check_heads(c, H, Hkv, q, k);
  c.need(k, "k", Shape{B, T, Hkv, d}).need(v, "v", Shape{B, T, Hkv, d});
  c.floating(q).dtype(q.dtype, {&k, &v});
  check_scale(c, scale);
}

// A KV cache [Tmax, Hkv, d] pair for queries of head width d.
int64_t check_cache(const detail::ArgCheck& c, const Tensor& q, int64_t H, int64_t d, const Tensor& kcache,
                    const Tensor& vcache) {
  c.need(kcache, "kcache").need(vcache, "vcache").rank(kcache, 3, "[Tmax, Hkv, d]");
  const int64_t Tmax = kcache.dim(0), Hkv = kcache.dim(1);
  check_heads(c, H, Hkv, q, kcache);
  c.need(kcache, "kcache", Shape{Tmax, Hkv, d}).need(vcache, "vcache", Shape{Tmax, Hkv, d});
  c.dtype(q.dtype, {&kcache, &vcache});
  return Tmax;
}

}  // namespace

void softmax_attention_fwd(Ctx& ctx, const SoftmaxAttnFwd& a) {
  const detail::ArgCheck c(ctx, "softmax_attention_fwd");
  check_qkv(c, a.q, a.k, a.v, a.scale);
  const Shape rows{a.q.dim(0), a.q.dim(1), a.q.dim(2)};
  c.need(a.o, "o", a.q.shape).dtype(a.q.dtype, {&a.o});
  if (a.kcache.defined() || a.vcache.defined()) {
    c.that(a.q.dim(0) == 1, "a KV cache holds one sequence: ", a.q, " has B = ", a.q.dim(0));
    c.that(a.causal, "a KV cache needs causal attention");
    const int64_t Tmax = check_cache(c, a.q, a.q.dim(2), a.q.dim(3), a.kcache, a.vcache);
    c.that(a.kcache.dim(1) == a.k.dim(2), "kcache ", a.kcache, " should have the ", a.k.dim(2),
           " kv heads of ", a.k);
    c.that(a.pos0 >= 0 && a.pos0 + a.q.dim(1) <= Tmax, "pos0 = ", a.pos0, " with ", a.q.dim(1),
           " queries does not fit the cache ", a.kcache);
    c.opt(a.lse, rows).dtype(a.q.dtype, {&a.lse});
    c.that(!a.lengths.defined(), "a KV cache (continuing a sequence) takes no lengths");
  } else {
    c.need(a.lse, "lse", rows).dtype(a.q.dtype, {&a.lse});
  }
  c.opt(a.lengths, Shape{a.q.dim(0)}).dtype(DType::I32, {&a.lengths});
  if (!a.kcache.defined()) return WERSA_DISPATCH(ctx, softmax_attention_fwd, a, a.q.dtype);
  // One sequence continued over a KV cache (generation): routed here, so that the kernels stay
  // plain. The chunk's k, v are appended, then its queries attend over the cache rows in use.
  const detail::RoutedOp op(ctx, "softmax_attention_fwd");
  const int64_t T = a.q.dim(1), H = a.q.dim(2), Hkv = a.k.dim(2), d = a.q.dim(3);
  const KvCacheAppend app{a.kcache, a.vcache, a.k.view({T, Hkv, d}), a.v.view({T, Hkv, d}), a.pos0};
  WERSA_DISPATCH(ctx, kv_cache_append, app, a.q.dtype);
  if (T == 1) {  // one position: the decode kernel
    const SoftmaxAttnDecode dec{a.o.view({H, d}), a.q.view({H, d}), a.kcache, a.vcache, a.pos0 + 1, a.scale};
    return WERSA_DISPATCH(ctx, softmax_attention_decode, dec, a.q.dtype);
  }
  const SoftmaxAttnPrefill pre{a.o.view({T, H, d}), a.q.view({T, H, d}), a.kcache, a.vcache, a.pos0, a.scale};
  WERSA_DISPATCH(ctx, softmax_attention_prefill, pre, a.q.dtype);
}

void softmax_attention_bwd(Ctx& ctx, const SoftmaxAttnBwd& a) {
  const detail::ArgCheck c(ctx, "softmax_attention_bwd");
  check_qkv(c, a.q, a.k, a.v, a.scale);
  c.need(a.dq, "dq").need(a.dk, "dk").need(a.dv, "dv").need(a.dout, "dout").need(a.o, "o").need(a.lse, "lse");
  c.dtype(a.q.dtype, {&a.dq, &a.dk, &a.dv, &a.dout, &a.o, &a.lse});
  c.need(a.dq, "dq", a.q.shape).need(a.dk, "dk", a.k.shape).need(a.dv, "dv", a.v.shape);
  c.need(a.dout, "dout", a.q.shape).need(a.o, "o", a.q.shape);
  c.need(a.lse, "lse", Shape{a.q.dim(0), a.q.dim(1), a.q.dim(2)});
  c.opt(a.lengths, Shape{a.q.dim(0)}).dtype(DType::I32, {&a.lengths});
  WERSA_DISPATCH(ctx, softmax_attention_bwd, a, a.q.dtype);
}

void softmax_attention_decode(Ctx& ctx, const SoftmaxAttnDecode& a) {
  const detail::ArgCheck c(ctx, "softmax_attention_decode");
  c.need(a.o, "o").need(a.q, "q").rank(a.q, 2, "[H, d]").floating(a.q);
  const int64_t H = a.q.dim(0), d = a.q.dim(1);
  const int64_t Tmax = check_cache(c, a.q, H, d, a.kcache, a.vcache);
  c.need(a.o, "o", Shape{H, d}).dtype(a.q.dtype, {&a.o});
  c.that(a.len >= 1 && a.len <= Tmax, "len = ", a.len, ", expected 1..", Tmax, " (rows of kcache ", a.kcache,
         ")");
  check_scale(c, a.scale);
  WERSA_DISPATCH(ctx, softmax_attention_decode, a, a.q.dtype);
}

void softmax_attention_prefill(Ctx& ctx, const SoftmaxAttnPrefill& a) {
  const detail::ArgCheck c(ctx, "softmax_attention_prefill");
  c.need(a.o, "o").need(a.q, "q").rank(a.q, 3, "[T, H, d]").floating(a.q);
  const int64_t T = a.q.dim(0), H = a.q.dim(1), d = a.q.dim(2);
  const int64_t Tmax = check_cache(c, a.q, H, d, a.kcache, a.vcache);
  c.need(a.o, "o", a.q.shape).dtype(a.q.dtype, {&a.o});
  c.that(a.pos0 >= 0 && a.pos0 + T <= Tmax, "pos0 = ", a.pos0, " with ", T,
         " queries does not fit the cache ", a.kcache);
  check_scale(c, a.scale);
  WERSA_DISPATCH(ctx, softmax_attention_prefill, a, a.q.dtype);
}

void kv_cache_append(Ctx& ctx, const KvCacheAppend& a) {
  const detail::ArgCheck c(ctx, "kv_cache_append");
  c.need(a.k, "k").need(a.v, "v").rank(a.k, 3, "[T, Hkv, d]");
  const int64_t T = a.k.dim(0), Hkv = a.k.dim(1), d = a.k.dim(2);
  c.need(a.v, "v", a.k.shape).floating(a.k).dtype(a.k.dtype, {&a.v});
  c.need(a.kcache, "kcache").need(a.vcache, "vcache").rank(a.kcache, 3, "[Tmax, Hkv, d]");
  const int64_t Tmax = a.kcache.dim(0);
  c.need(a.kcache, "kcache", Shape{Tmax, Hkv, d}).need(a.vcache, "vcache", Shape{Tmax, Hkv, d});
  c.dtype(a.k.dtype, {&a.kcache, &a.vcache});
  c.that(a.pos0 >= 0 && a.pos0 + T <= Tmax, "pos0 = ", a.pos0, " with ", T, " rows does not fit the cache ",
         a.kcache);
  WERSA_DISPATCH(ctx, kv_cache_append, a, a.k.dtype);
}

}  // namespace wersa

#include "wersa/ops/elementwise.h"

#include <cmath>

#include "check.h"
#include "dispatch.h"

namespace wersa {

void add_fwd(Ctx& ctx, const AddFwd& a) {
  const detail::ArgCheck c(ctx, "add_fwd");
  c.need(a.y, "y").need(a.a, "a").need(a.b, "b").floating(a.y);
  c.same_size(a.a, a.y).same_size(a.b, a.y).dtype(a.y.dtype, {&a.a, &a.b});
  WERSA_DISPATCH(ctx, add_fwd, a, a.y.dtype);
}

void axpy(Ctx& ctx, const AxpyArgs& a) {
  const detail::ArgCheck c(ctx, "axpy");
  c.need(a.y, "y").need(a.x, "x").floating(a.y).same_size(a.x, a.y).dtype(a.y.dtype, {&a.x});
  WERSA_DISPATCH(ctx, axpy, a, a.y.dtype);
}

void scale_inplace(Ctx& ctx, const ScaleArgs& a) {
  const detail::ArgCheck c(ctx, "scale_inplace");
  c.need(a.x, "x").floating(a.x);
  WERSA_DISPATCH(ctx, scale_inplace, a, a.x.dtype);
}

void copy_fwd(Ctx& ctx, const CopyArgs& a) {
  const detail::ArgCheck c(ctx, "copy_fwd");
  c.need(a.y, "y").need(a.x, "x").same_size(a.x, a.y).dtype(a.y.dtype, {&a.x});
  c.that(a.y.dtype != DType::U16, "unsupported dtype ", dtype_name(a.y.dtype), " of ", a.y);
  if (a.y.dtype == DType::I32 || a.y.dtype == DType::U32) {  // 4-byte words: copied as f32 bit patterns
    CopyArgs w = a;
    w.y.dtype = w.x.dtype = DType::F32;
    WERSA_DISPATCH(ctx, copy_fwd, w, DType::F32);
    return;
  }
  WERSA_DISPATCH(ctx, copy_fwd, a, a.y.dtype);
}

void sum_squares(Ctx& ctx, const SumSquaresArgs& a) {
  const detail::ArgCheck c(ctx, "sum_squares");
  c.need(a.out, "out", Shape{1}).dtype(DType::F64, {&a.out}).need(a.x, "x").floating(a.x);
  WERSA_DISPATCH(ctx, sum_squares, a, a.x.dtype);
}

void clip_by_norm(Ctx& ctx, const ClipByNormArgs& a) {
  const detail::ArgCheck c(ctx, "clip_by_norm");
  c.need(a.norm2, "norm2", Shape{1}).dtype(DType::F64, {&a.norm2}).need(a.x, "x").floating(a.x);
  c.that(std::isfinite(a.max_norm), "max_norm ", a.max_norm, " is not finite");
  WERSA_DISPATCH(ctx, clip_by_norm, a, a.x.dtype);
}

void convert_bf16(Ctx& ctx, const ConvertArgs& a) {
  const detail::ArgCheck c(ctx, "convert_bf16");
  c.need(a.y, "y").need(a.x, "x").same_size(a.x, a.y).dtype(DType::BF16, {&a.y}).dtype(DType::F32, {&a.x});
  WERSA_DISPATCH(ctx, convert_bf16, a, DType::F32);
}

}  // namespace wersa

// Attention kind `softmax` (the exact baseline of the spec): per head,
//   o[t] = sum_{s<=t} softmax_s(q[t] . k[s] / sqrt(d)) v[s]       (all s when bidirectional)
// (bidirectional over padded documents: the padded keys and values masked out, c.lengths)
// over the block's q, k (after RoPE) and v; no gates, no head LayerNorm. The backward recomputes
// the probabilities from the saved row log-sum-exp (ops/softmax_attention.h). Generation keeps a
// KV cache of the context's length per layer, so its state grows with the position.
#include <cmath>

#include "attention.h"
#include "wersa/ops/softmax_attention.h"

namespace wersa::detail {
namespace {

class SoftmaxAttention final : public Attention {
  enum Act { Lse };
  enum State { KCache, VCache };

 public:
  void params(const std::string&, Slots&, const ParamFn&) const override {}
  void buffers(const std::string&, Slots&, const ParamFn&) const override {}
  void acts(const ActPlan& plan, Slots& a) const override { a[Lse] = plan.add("lse", {heads_}); }
  void backward_buffers(const ActPlan&, Slots&) const override {}
  void state(const StatePlan& plan, Slots& st) const override {
    WERSA_ASSERT(plan.context > 0, "a softmax state needs a context length");
    st[KCache] = plan.add("kcache", {plan.context, kv_heads_, head_dim_}, true);
    st[VCache] = plan.add("vcache", {plan.context, kv_heads_, head_dim_}, true);
  }
  void fwd(Ctx& ctx, const AttnCall& c) const override {
    const Dims& s = c.s;
    SoftmaxAttnFwd f{c.o.view({c.B, c.T, s.H, s.d}),
                     c.a[Lse].view({c.B, c.T, s.H}),
                     c.q.view({c.B, c.T, s.H, s.d}),
                     c.k.view({c.B, c.T, s.Hkv, s.d}),
                     c.v.view({c.B, c.T, s.Hkv, s.d}),
                     scale(s),
                     c.c.attention.causal};
    f.lengths = c.lengths;
    if (c.state) {
      f.lse = Tensor();
      f.kcache = (*c.state)[KCache];
      f.vcache = (*c.state)[VCache];
      f.pos0 = c.pos0;
    }
    softmax_attention_fwd(ctx, f);
  }
  void bwd(Ctx& ctx, const AttnCall& c) const override {
    const Dims& s = c.s;
    softmax_attention_bwd(ctx, {c.dq.view({c.B, c.T, s.H, s.d}), c.dk.view({c.B, c.T, s.Hkv, s.d}),
                                c.dv.view({c.B, c.T, s.Hkv, s.d}), c.dout.view({c.B, c.T, s.H, s.d}),
                                c.o.view({c.B, c.T, s.H, s.d}), c.a[Lse].view({c.B, c.T, s.H}),
                                c.q.view({c.B, c.T, s.H, s.d}), c.k.view({c.B, c.T, s.Hkv, s.d}),
                                c.v.view({c.B, c.T, s.Hkv, s.d}), scale(s), c.c.attention.causal, c.lengths});
  }
  bool reads_u() const override { return false; }
  bool needs_context() const override { return true; }

  explicit SoftmaxAttention(const ModelConfig& c)
      : heads_(c.heads), kv_heads_(c.kv_heads), head_dim_(config_head_dim(c)) {}

 private:
  static double scale(const Dims& s) { return 1.0 / std::sqrt(double(s.d)); }
  int64_t heads_, kv_heads_, head_dim_;
};

}  // namespace

std::unique_ptr<Attention> make_softmax_attention(const ModelConfig& c) {
  return std::make_unique<SoftmaxAttention>(c);
}

}  // namespace wersa::detail

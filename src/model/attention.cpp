// The table of attention kinds (name and constructor of each), and the planning helpers the kinds
// share.
#include "attention.h"

#include "kinds.h"

namespace wersa {

namespace {
struct KindEntry {
  AttentionKind kind;
  const char* name;
  std::unique_ptr<detail::Attention> (*make)(const ModelConfig&);
};
// Adding a kind: its AttentionKind value, its file, and one row here.
const KindEntry kKinds[] = {
    {AttentionKind::Wersa, "wersa", detail::make_wersa_attention},
    {AttentionKind::Softmax, "softmax", detail::make_softmax_attention},
    {AttentionKind::Linear, "linear", detail::make_linear_attention},
};
const KindEntry& entry(AttentionKind k) {
  for (const KindEntry& e : kKinds)
    if (e.kind == k) return e;
  WERSA_ASSERT(false, "attention kind ", int(k), " has no entry");
  return kKinds[0];
}
}  // namespace

const char* attention_kind_name(AttentionKind k) { return entry(k).name; }

const std::vector<AttentionKind>& attention_kinds() {
  static const std::vector<AttentionKind> all = [] {
    std::vector<AttentionKind> v;
    for (const KindEntry& e : kKinds) v.push_back(e.kind);
    return v;
  }();
  return all;
}

namespace detail {

Dims::Dims(const ModelConfig& c)
    : D(c.dim),
      H(c.heads),
      Hkv(c.kv_heads),
      d(config_head_dim(c)),
      M(c.attention.features),
      L(c.attention.levels),
      K(c.attention.conv_width),
      G(config_gate_dim(c)),
      V(c.vocab_size),
      F(c.ffn_dim) {}

Tensor ActPlan::add(const std::string& name, std::initializer_list<int64_t> per_row) const {
  Shape s;
  s.dim[0] = rows;
  s.rank = 1;
  for (int64_t n : per_row) s.dim[s.rank++] = n;
  return arena.add(prefix + name, dt, s);
}

Tensor StatePlan::add(const std::string& name, Shape shape, bool rows_are_positions) const {
  if (!arena.measuring() && per_position) per_position->push_back(rows_are_positions);
  return arena.add(prefix + name, dt, shape);
}

std::unique_ptr<Attention> make_attention(const ModelConfig& c) { return entry(c.attention.type).make(c); }

}  // namespace detail
}  // namespace wersa

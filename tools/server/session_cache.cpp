// The session cache of wersa-server (session_cache.h): host copies of generation states, looked
// up by longest token prefix, evicted least recently used first.
#include "session_cache.h"

#include <algorithm>

namespace wersa::server {

namespace {
// The part of state tensor i in use: a KV cache's first pos rows, any other tensor whole.
Tensor used(const DecodeState& s, size_t i) {
  const Tensor& t = s.state_tensors()[i];
  return s.per_position(i) ? t.rows(0, s.pos()) : t;
}
Tensor host_view(unsigned char* p, const Tensor& like) {
  return Tensor(p, like.dtype, Device::CPU, like.shape, like.name);
}
}  // namespace

bool SessionCache::put(const DecodeState& s) {
  if (s.pos() == 0) return false;
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (it->tokens == s.tokens()) {
      bytes_ -= it->bytes();
      entries_.erase(it);
      break;
    }
  Entry e;
  e.tokens = s.tokens();
  size_t n = 0;
  for (size_t i = 0; i < s.state_tensors().size(); ++i) n += used(s, i).bytes();
  if (n + s.logits().bytes() + e.tokens.size() * sizeof(int32_t) > max_bytes_) return false;
  e.state.resize(n);
  size_t off = 0;
  for (size_t i = 0; i < s.state_tensors().size(); ++i) {
    const Tensor t = used(s, i);
    tensor_copy(host_view(e.state.data() + off, t), t);
    off += t.bytes();
  }
  e.logits.resize(s.logits().bytes());
  tensor_copy(host_view(e.logits.data(), s.logits()), s.logits());
  bytes_ += e.bytes();
  entries_.push_front(std::move(e));
  while (bytes_ > max_bytes_ && !entries_.empty()) {
    bytes_ -= entries_.back().bytes();
    entries_.pop_back();
    ++evictions_;
  }
  return true;
}

// The tensors in put()'s order; pos rows of each KV cache.
void SessionCache::load(const Entry& e, DecodeState& s) {
  s.reset();
  s.restore_tokens(e.tokens);
  size_t off = 0;
  for (size_t i = 0; i < s.state_tensors().size(); ++i) {
    const Tensor t = used(s, i);
    tensor_copy(t, host_view(const_cast<unsigned char*>(e.state.data()) + off, t));
    off += t.bytes();
  }
  tensor_copy(s.logits(), host_view(const_cast<unsigned char*>(e.logits.data()), s.logits()));
}

void SessionCache::for_each(DecodeState& scratch, const std::function<void(const DecodeState&)>& f) const {
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (scratch.context() > 0 && int64_t(it->tokens.size()) > scratch.context()) continue;
    load(*it, scratch);
    f(scratch);
  }
}

int64_t SessionCache::restore(const std::vector<int32_t>& prompt, DecodeState& s) {
  s.reset();
  auto best = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (it->tokens.size() <= prompt.size() &&
        (best == entries_.end() || it->tokens.size() > best->tokens.size()) &&
        std::equal(it->tokens.begin(), it->tokens.end(), prompt.begin()))
      best = it;
  if (best == entries_.end()) return 0;
  const int64_t pos = int64_t(best->tokens.size());
  if (s.context() > 0 && pos > s.context()) return 0;
  load(*best, s);
  entries_.splice(entries_.begin(), entries_, best);  // most recently used
  ++hits_;
  return pos;
}

}  // namespace wersa::server

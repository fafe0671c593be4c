// wersa-server's session cache: after a request, the generation state of its sequence (the
// attention kind's state, the logits and the tokens it stands for), kept by its tokens. A new
// prompt resumes from the longest kept sequence that is a prefix of it, so only the new tokens
// are prefilled; the state is restored bit for bit, so the result is a cold run's up to the
// rounding of a different prefill split. A WERSA state has the same size whatever the length; a
// softmax state keeps the KV cache's used rows, so it grows with the length. The bytes are
// bounded (least recently used first out). Not thread-safe: the scheduler thread owns it.
#pragma once
#include <cstdint>
#include <functional>
#include <list>
#include <vector>

#include "wersa/model/generate.h"

namespace wersa::server {

class SessionCache {
 public:
  explicit SessionCache(size_t max_bytes) : max_bytes_(max_bytes) {}
  // Keeps a copy of s (replacing a kept copy of the same tokens), then evicts the least recently
  // used until the bytes fit. A state larger than the whole budget (or of no tokens) is not kept:
  // false.
  bool put(const DecodeState& s);
  // Restores into s the longest kept sequence that is a prefix of `prompt` (all of it at most)
  // and returns its length; 0 (s reset) when none.
  int64_t restore(const std::vector<int32_t>& prompt, DecodeState& s);

  // Calls f with each kept session restored into `scratch`, least recently used first (as put()
  // in this order rebuilds the cache); the cache itself is unchanged.
  void for_each(DecodeState& scratch, const std::function<void(const DecodeState&)>& f) const;

  size_t bytes() const { return bytes_; }
  size_t max_bytes() const { return max_bytes_; }
  size_t sessions() const { return entries_.size(); }
  int64_t evictions() const { return evictions_; }
  int64_t hits() const { return hits_; }

 private:
  struct Entry {
    std::vector<int32_t> tokens;
    std::vector<unsigned char> state, logits;  // the state tensors (KV caches: used rows), in order
    size_t bytes() const { return state.size() + logits.size() + tokens.size() * sizeof(int32_t); }
  };
  static void load(const Entry& e, DecodeState& s);
  std::list<Entry> entries_;  // most recently used first
  size_t max_bytes_, bytes_ = 0;
  int64_t evictions_ = 0, hits_ = 0;
};

}  // namespace wersa::server

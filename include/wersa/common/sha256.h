// SHA-256 (FIPS 180-4), used to fingerprint tokenizer models so that a shard directory, a
// checkpoint and a tokenizer file can be matched: the fingerprint of a model file equals the
// output of `sha256sum FILE`.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace wersa {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  std::string hex();  // finishes the hash; the object must not be updated afterwards

 private:
  void block(const unsigned char* p);
  uint32_t h_[8];
  unsigned char buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view bytes);

}  // namespace wersa

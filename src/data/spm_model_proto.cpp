#include "spm_model_proto.h"

#include <cstring>

#include "wersa/common/error.h"

namespace wersa::data::spm {
namespace {

// One protobuf message being read: a byte range and the offset of its start in the file.
class Reader {
 public:
  Reader(std::string_view bytes, size_t base, const std::string& name)
      : s_(bytes), base_(base), name_(name) {}
  bool done() const { return pos_ >= s_.size(); }

  [[noreturn]] void fail(const char* what) const {
    WERSA_FAIL(name_, ": not a SentencePiece model (", what, " at byte ", base_ + pos_, ")");
  }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= s_.size()) fail("truncated varint");
      const auto b = static_cast<unsigned char>(s_[pos_++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("overlong varint");
  }

  // Reads a field key; returns false at the end of the message.
  bool key(int& field, int& wire) {
    if (done()) return false;
    const uint64_t k = varint();
    field = static_cast<int>(k >> 3);
    wire = static_cast<int>(k & 7);
    if (field == 0) fail("field number 0");
    return true;
  }

  // A length-delimited payload: returns a sub-reader over it.
  Reader sub() {
    const uint64_t n = varint();
    if (n > s_.size() - pos_) fail("length-delimited field runs past the end (truncated file?)");
    Reader r(s_.substr(pos_, n), base_ + pos_, name_);
    pos_ += n;
    return r;
  }
  std::string_view bytes() {
    Reader r = sub();
    return r.s_;
  }
  float fixed32f() {
    if (s_.size() - pos_ < 4) fail("truncated fixed32");
    float f;
    std::memcpy(&f, s_.data() + pos_, 4);
    pos_ += 4;
    return f;
  }
  void skip(int wire) {
    switch (wire) {
      case 0:
        varint();
        return;
      case 1:
        if (s_.size() - pos_ < 8) fail("truncated fixed64");
        pos_ += 8;
        return;
      case 2:
        sub();
        return;
      case 5:
        if (s_.size() - pos_ < 4) fail("truncated fixed32");
        pos_ += 4;
        return;
      default:
        fail("invalid wire type");
    }
  }
  void expect(int wire, int want) {
    if (wire != want) fail("unexpected wire type");
  }

 private:
  std::string_view s_;
  size_t base_;
  const std::string& name_;
  size_t pos_ = 0;
};

int64_t as_int32(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

}  // namespace

const char* model_type_name(int t) {
  switch (t) {
    case 1:
      return "unigram";
    case 2:
      return "bpe";
    case 3:
      return "word";
    case 4:
      return "char";
  }
  return "unknown";
}

ModelInfo parse_model(std::string_view bytes, const std::string& name) {
  ModelInfo m;
  Reader top(bytes, 0, name);
  if (bytes.empty()) top.fail("empty file");
  int f, w;
  while (top.key(f, w)) {
    if (f == 1) {
      top.expect(w, 2);
      Reader r = top.sub();
      Piece p;
      while (r.key(f, w)) {
        if (f == 1)
          r.expect(w, 2), p.piece = std::string(r.bytes());
        else if (f == 2)
          r.expect(w, 5), p.score = r.fixed32f();
        else if (f == 3)
          r.expect(w, 0), p.type = static_cast<int>(r.varint());
        else
          r.skip(w);
      }
      if (p.type < kNormal || p.type > kByte) r.fail("invalid piece type");
      // libsentencepiece builds a trie over the pieces and aborts the process (an exception
      // through code built without them) on an empty key or a NUL byte: refuse both here.
      if (p.piece.empty()) r.fail("empty piece");
      if (p.piece.find('\0') != std::string::npos) r.fail("piece contains a NUL byte");
      m.pieces.push_back(std::move(p));
    } else if (f == 2) {
      top.expect(w, 2);
      m.has_trainer_spec = true;
      Reader r = top.sub();
      while (r.key(f, w)) {
        if (w != 0) {
          r.skip(w);
          continue;
        }
        const uint64_t v = r.varint();
        switch (f) {
          case 3:
            m.model_type = static_cast<int>(v);
            break;
          case 4:
            m.vocab_size = as_int32(v);
            break;
          case 22:
            m.split_by_whitespace = v != 0;
            break;
          case 24:
            m.treat_whitespace_as_suffix = v != 0;
            break;
          case 35:
            m.byte_fallback = v != 0;
            break;
          case 40:
            m.unk_id = as_int32(v);
            break;
          case 41:
            m.bos_id = as_int32(v);
            break;
          case 42:
            m.eos_id = as_int32(v);
            break;
          case 43:
            m.pad_id = as_int32(v);
            break;
          default:
            break;
        }
      }
    } else if (f == 3) {
      top.expect(w, 2);
      m.has_normalizer_spec = true;
      Reader r = top.sub();
      while (r.key(f, w)) {
        if (f == 1 && w == 2)
          m.normalizer_name = std::string(r.bytes());
        else if (f == 2 && w == 2)
          m.has_precompiled_charmap = !r.bytes().empty();
        else if (f == 6 && w == 2)
          m.has_rule_tsv = !r.bytes().empty();
        else if (w == 0 && f >= 3 && f <= 5) {
          const bool v = r.varint() != 0;
          if (f == 3) m.add_dummy_prefix = v;
          if (f == 4) m.remove_extra_whitespaces = v;
          if (f == 5) m.escape_whitespaces = v;
        } else
          r.skip(w);
      }
    } else {
      top.skip(w);
    }
  }
  WERSA_CHECK(!m.pieces.empty(), name, ": not a SentencePiece model (no vocabulary pieces)");
  WERSA_CHECK(m.has_trainer_spec && m.has_normalizer_spec, name,
              ": not a SentencePiece model (trainer_spec or normalizer_spec missing: truncated file?)");
  return m;
}

}  // namespace wersa::data::spm

// A minimal reader of the SentencePiece ModelProto wire format (protobuf), independent of
// libsentencepiece: it checks a model file's structure field by field (so a truncated or
// corrupted file is rejected with the byte offset of the damage rather than half-loaded), and
// reads the few settings the encoder's fast path depends on. Field numbers follow
// sentencepiece_model.proto: ModelProto{1 pieces, 2 trainer_spec, 3 normalizer_spec,
// 4 self_test_data, 5 denormalizer_spec}; SentencePiece{1 piece, 2 score, 3 type};
// TrainerSpec{3 model_type, 4 vocab_size, 22 split_by_whitespace, 24 treat_whitespace_as_suffix,
// 35 byte_fallback, 40..43 unk/bos/eos/pad ids}; NormalizerSpec{1 name, 2 precompiled_charmap,
// 3 add_dummy_prefix, 4 remove_extra_whitespaces, 5 escape_whitespaces, 6 normalization_rule_tsv}.
// Internal to src/data.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wersa::data::spm {

enum PieceType : int { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct Piece {
  std::string piece;
  float score = 0;
  int type = kNormal;
};

struct ModelInfo {
  std::vector<Piece> pieces;
  bool has_trainer_spec = false, has_normalizer_spec = false;
  // TrainerSpec (defaults as in sentencepiece_model.proto)
  int model_type = 1;  // 1 unigram, 2 bpe, 3 word, 4 char
  int64_t vocab_size = 8000;
  bool split_by_whitespace = true, treat_whitespace_as_suffix = false, byte_fallback = false;
  int64_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  // NormalizerSpec
  std::string normalizer_name;
  bool has_precompiled_charmap = false, has_rule_tsv = false;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
};

// Throws wersa::Error "<name>: not a SentencePiece model (<what> at byte N)" on malformed input.
ModelInfo parse_model(std::string_view bytes, const std::string& name);

const char* model_type_name(int model_type);

}  // namespace wersa::data::spm

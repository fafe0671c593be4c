#include "wersa/data/sentencepiece_train.h"

#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "wersa/common/error.h"
#include "wersa/common/file.h"
#include "wersa/common/log.h"
#include "wersa/common/rng.h"
#include "wersa/data/tokenizer.h"

// Exported by libsentencepiece (0.1.9x and later) but not declared in its public headers.
namespace sentencepiece::logging {
void SetMinLogLevel(int v);
}

namespace wersa::data {
namespace fs = std::filesystem;

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const fs::path parent = fs::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  WERSA_CHECK(!ec, "cannot create directory '", parent.string(), "': ", ec.message());
  write_file(path, bytes);
}

namespace {

// Splits documents into training lines: blank lines dropped, a trailing '\r' removed, lines
// longer than `max` bytes cut at the last space of their second half (else before a UTF-8 lead
// byte).
template <class F>
void for_each_line(const std::string& t, size_t max, F&& emit) {
  size_t pos = 0;
  while (pos < t.size()) {
    size_t end = t.find('\n', pos);
    if (end == std::string::npos) end = t.size();
    size_t next = end + 1;
    if (end - pos > max) {
      size_t cut = t.rfind(' ', pos + max);
      if (cut == std::string::npos || cut < pos + max / 2) {
        cut = pos + max;
        while (cut > pos && (static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) --cut;
      }
      end = next = cut;
      if (t[cut] == ' ') next = cut + 1;
    }
    size_t e = end;
    if (e > pos && t[e - 1] == '\r') --e;
    const std::string_view line(t.data() + pos, e - pos);
    pos = next;
    if (line.find_first_not_of(" \t\r") != std::string_view::npos) emit(line);
  }
}

// Hands the collected lines to the trainer.
class VectorIterator final : public sentencepiece::SentenceIterator {
 public:
  explicit VectorIterator(const std::vector<std::string>& lines) : lines_(lines) {}
  bool done() const override { return i_ >= lines_.size(); }
  const std::string& value() const override { return lines_[i_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }
  void Next() override { ++i_; }

 private:
  const std::vector<std::string>& lines_;
  size_t i_ = 0;
};

std::string meta_path_for(const std::string& model_path) {
  const std::string suffix = ".model";
  if (model_path.size() > suffix.size() &&
      model_path.compare(model_path.size() - suffix.size(), suffix.size(), suffix) == 0)
    return model_path.substr(0, model_path.size() - suffix.size()) + ".json";
  return model_path + ".json";
}

}  // namespace

SentencePieceTrainResult train_sentencepiece(const std::vector<std::string>& inputs,
                                             const SentencePieceTrainOptions& opt,
                                             const std::string& out_path) {
  const auto t0 = std::chrono::steady_clock::now();
  WERSA_CHECK(opt.model_type == "bpe" || opt.model_type == "unigram", "model type '", opt.model_type,
              "' is not supported (expected bpe or unigram)");
  const int64_t min_vocab = 5 + (opt.byte_fallback ? 256 : 0) + 1;
  WERSA_CHECK(opt.vocab_size >= min_vocab && opt.vocab_size <= (int64_t(1) << 31) - 1, "vocab size ",
              opt.vocab_size, " is out of range (at least ", min_vocab, ": 5 special pieces",
              opt.byte_fallback ? " and 256 byte pieces" : "", ")");
  WERSA_CHECK(opt.sample_sentences >= 0, "sample sentences must be >= 0, got ", opt.sample_sentences);
  WERSA_CHECK(opt.character_coverage > 0 && opt.character_coverage <= 1,
              "character coverage must be in (0, 1], got ", opt.character_coverage);
  WERSA_CHECK(opt.max_sentence_bytes >= 64, "max sentence bytes must be >= 64, got ", opt.max_sentence_bytes);
  WERSA_CHECK(!out_path.empty(), "no output path for the tokenizer model");

  // Lines of the whole corpus, or a uniform sample of them (reservoir sampling with a
  // counter-based generator, so the sample depends only on the seed and the corpus).
  CorpusReader reader(inputs, opt.corpus);
  std::vector<std::string> lines;
  const auto cap = static_cast<uint64_t>(opt.sample_sentences);
  uint64_t seen = 0;
  Document doc;
  for (int64_t docs = 0; reader.next(doc); ++docs) {
    for_each_line(doc.text, static_cast<size_t>(opt.max_sentence_bytes), [&](std::string_view line) {
      if (cap == 0 || seen < cap) {
        lines.emplace_back(line);
      } else {
        const uint64_t j = rng_bits(opt.seed, 0x5e47e4ce, seen) % (seen + 1);
        if (j < cap) lines[j].assign(line.data(), line.size());
      }
      ++seen;
    });
    if (opt.progress && (docs % 16 == 0 || doc.text.size() > (1 << 20)))
      opt.progress(reader.input_bytes_read(), reader.total_input_bytes(), static_cast<int64_t>(seen));
  }
  WERSA_CHECK(!lines.empty(), "the corpus holds no text to train a tokenizer on");
  VectorIterator it(lines);
  const int threads = opt.threads > 0 ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", opt.model_type},
      {"vocab_size", std::to_string(opt.vocab_size)},
      {"character_coverage", std::to_string(opt.character_coverage)},
      {"byte_fallback", opt.byte_fallback ? "true" : "false"},
      {"input_sentence_size", "0"},  // sampled above
      {"max_sentence_length", std::to_string(opt.max_sentence_bytes + 8)},
      {"num_threads", std::to_string(threads)},
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "3"},
      {"user_defined_symbols", "\n"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"split_digits", "true"},
      {"model_prefix", ""},
  };
  if (opt.on_training)
    opt.on_training(detail::cat("training a ", opt.model_type, " model, vocab ", opt.vocab_size, ", on ",
                                lines.size(), " of ", seen, " lines (", threads, " threads)"));
  sentencepiece::logging::SetMinLogLevel(opt.verbose ? 0 : 1);
  sentencepiece::SetRandomGeneratorSeed(opt.seed);
  std::string model;
  const auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
  WERSA_CHECK(st.ok(), "SentencePiece training failed: ", st.ToString());

  // Reload what was trained: the fixed ids and the round-trip settings must hold.
  auto tok = load_sentencepiece_from_bytes(model, out_path);
  WERSA_ASSERT(tok->unk_id() == 0 && tok->bos_id() == 1 && tok->eos_id() == 2 && tok->pad_id() == 3);
  write_file_atomic(out_path, model);

  SentencePieceTrainResult r;
  r.model_path = out_path;
  r.meta_path = meta_path_for(out_path);
  r.fingerprint = tok->fingerprint();
  r.vocab_size = tok->vocab_size();
  r.lines_read = static_cast<int64_t>(seen);
  r.lines_used = static_cast<int64_t>(lines.size());
  r.corpus = reader.stats();
  nlohmann::json meta = {
      {"kind", "sentencepiece"},
      {"model", fs::path(out_path).filename().string()},
      {"fingerprint", r.fingerprint},
      {"model_type", opt.model_type},
      {"vocab_size", r.vocab_size},
      {"special_ids", {{"unk", 0}, {"bos", 1}, {"eos", 2}, {"pad", 3}, {"newline", 4}}},
      {"byte_fallback", opt.byte_fallback},
      {"normalization", "identity"},
      {"add_dummy_prefix", false},
      {"character_coverage", opt.character_coverage},
      {"sample_sentences", opt.sample_sentences},
      {"lines_read", r.lines_read},
      {"lines_used", r.lines_used},
      {"seed", opt.seed},
      {"threads", threads},
      {"documents", r.corpus.documents},
      {"text_bytes", r.corpus.text_bytes},
      {"skipped_invalid_utf8", r.corpus.skipped_invalid},
  };
  nlohmann::json sources = nlohmann::json::array();
  for (const CorpusFile& f : reader.files()) sources.push_back({{"path", f.path}, {"bytes", f.size}});
  meta["sources"] = sources;
  write_file_atomic(r.meta_path, meta.dump(2) + "\n");
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace wersa::data

// wersa-tokenize: text corpora -> SentencePiece tokenizer -> token shards, and back.
//   train   trains a SentencePiece model in process
//   encode  writes train/val shards, tokenizer.model and dataset.json
//   decode  prints the text of shards (or of ids given on the command line)
//   stats   tokenizer and shard statistics
// Errors print one line "error: ..." on stderr and exit with status 1 (2 for a bad command line).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "wersa/common/cli.h"
#include "wersa/common/error.h"
#include "wersa/common/log.h"
#include "wersa/common/progress.h"
#include "wersa/data/encode.h"
#include "wersa/data/inspect.h"
#include "wersa/data/sentencepiece_train.h"
#include "wersa/data/shard.h"
#include "wersa/data/tokenizer.h"

namespace fs = std::filesystem;
using namespace wersa;
using namespace wersa::data;
using namespace wersa::cli;

namespace {

struct CorpusFlags {
  std::string invalid_utf8 = "skip";
  std::string field = "text";
  void add(CLI::App* app) {
    app->add_option(
           "--invalid-utf8", invalid_utf8,
           "invalid UTF-8: skip the line/record holding it (reported with file and offset) or reject "
           "the corpus")
        ->check(one_of({"skip", "reject"}))
        ->capture_default_str();
    app->add_option("--field", field, "JSON Lines field holding the text")
        ->check(non_empty())
        ->capture_default_str();
  }
  CorpusOptions options() const {
    CorpusOptions o;
    o.invalid_utf8 = invalid_utf8 == "reject" ? InvalidUtf8::Reject : InvalidUtf8::Skip;
    o.jsonl_field = field;
    return o;
  }
};

// The tokenizer of shards given without --tokenizer: the one of their directory.
std::string infer_tokenizer(const std::string& data_spec) {
  if (fs::is_directory(data_spec)) return data_spec;
  const fs::path dir = fs::path(data_spec).parent_path();
  return dir.empty() ? std::string(".") : dir.string();
}

// --tokenizer: 'byte', a model file, or a directory holding tokenizer.model / dataset.json.
CLI::Validator tokenizer_spec() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        if (s == "byte") return {};
        std::error_code ec;
        if (s.empty() || !fs::exists(s, ec))
          return "'" + s + "' does not exist (give a model file or 'byte')";
        return {};
      },
      "FILE|byte");
}

// A tokenizer beside shards: their directory holds tokenizer.model or dataset.json.
bool tokenizer_beside(const std::string& data_spec) {
  const fs::path dir = infer_tokenizer(data_spec);
  std::error_code ec;
  return fs::exists(dir / "tokenizer.model", ec) || fs::exists(dir / "dataset.json", ec);
}

std::string tokenizer_line(const Tokenizer& t) {
  return detail::cat(t.kind(), ", vocab ", t.vocab_size(), ", unk ", t.unk_id(), " bos ", t.bos_id(), " eos ",
                     t.eos_id(), " pad ", t.pad_id(), ", fingerprint ", t.fingerprint().substr(0, 16));
}

// ---- train ----------------------------------------------------------------------------------------

struct TrainCmd {
  std::vector<std::string> inputs;
  std::string out;
  SentencePieceTrainOptions opt;
  bool no_byte_fallback = false, quiet = false;
  CorpusFlags corpus;

  void add(CLI::App& root) {
    CLI::App* c = root.add_subcommand("train", "train a SentencePiece tokenizer (in process)");
    c->add_option("--input", inputs, "text files, .jsonl(.xz|.gz) files or directories")
        ->required()
        ->expected(1, -1)
        ->check(existing_path());
    c->add_option("--vocab-size", opt.vocab_size, "vocabulary size (with the 5 specials and 256 byte pieces)")
        ->required()
        ->check(integer(1, kMaxInt));
    c->add_option("--model-type", opt.model_type, "bpe or unigram")
        ->check(one_of({"bpe", "unigram"}))
        ->capture_default_str();
    c->add_option("--sample-sentences", opt.sample_sentences,
                  "lines sampled uniformly from the corpus for training (0 = all)")
        ->check(integer(0))
        ->capture_default_str();
    c->add_option("--character-coverage", opt.character_coverage,
                  "share of characters covered by pieces; the rest fall back to bytes")
        ->check(number(0, 1, true, false))
        ->capture_default_str();
    c->add_flag("--no-byte-fallback", no_byte_fallback, "map characters outside the vocabulary to <unk>");
    c->add_option("--seed", opt.seed, "sampling seed")
        ->check(integer(0, std::numeric_limits<uint32_t>::max()))
        ->capture_default_str();
    c->add_option("--threads", opt.threads, "training threads (0 = all cores)")
        ->check(integer(0, 1 << 16))
        ->capture_default_str();
    c->add_option("--out", out, "model file to write, e.g. DIR/tokenizer.model (DIR is created)")
        ->required()
        ->check(output_file_anywhere());
    c->add_flag("--verbose", opt.verbose, "show SentencePiece's own log");
    c->add_flag("--quiet", quiet, "no progress output");
    corpus.add(c);
    c->callback([this] { run(); });
  }

  void run() {
    opt.byte_fallback = !no_byte_fallback;
    opt.corpus = corpus.options();
    ProgressBar bar("read", !quiet);
    opt.progress = [&](int64_t done, int64_t total, int64_t lines) {
      bar.update(done, total, human_count(double(lines)) + " lines");
    };
    opt.on_training = [&](const std::string& what) { bar.finish(what); };
    const SentencePieceTrainResult r = train_sentencepiece(inputs, opt, out);
    bar.finish("");
    if (!quiet)
      std::fprintf(
          stderr,
          "read %lld documents (%s, %lld lines, %lld skipped for invalid UTF-8); trained on %lld lines\n",
          static_cast<long long>(r.corpus.documents), human_bytes(double(r.corpus.text_bytes)).c_str(),
          static_cast<long long>(r.lines_read), static_cast<long long>(r.corpus.skipped_invalid),
          static_cast<long long>(r.lines_used));
    std::printf("wrote %s (%s, vocab %lld, unk 0 bos 1 eos 2 pad 3, sha256 %s) and %s in %.1f s\n",
                r.model_path.c_str(), opt.model_type.c_str(), static_cast<long long>(r.vocab_size),
                r.fingerprint.c_str(), r.meta_path.c_str(), r.seconds);
  }
};

// ---- encode ---------------------------------------------------------------------------------------

struct EncodeCmd {
  std::string tokenizer, out;
  std::vector<std::string> inputs;
  EncodeOptions opt;
  bool quiet = false;
  CorpusFlags corpus;

  void add(CLI::App& root) {
    CLI::App* c = root.add_subcommand("encode", "encode a corpus into train/val token shards");
    c->add_option("--tokenizer", tokenizer, "SentencePiece model file, or 'byte'")
        ->required()
        ->check(tokenizer_spec());
    c->add_option("--input", inputs, "text files, .jsonl(.xz|.gz) files or directories")
        ->required()
        ->expected(1, -1)
        ->check(existing_path());
    c->add_option("--out", out, "output directory (created if missing)")->required()->check(output_dir());
    c->add_option("--val-fraction", opt.val_fraction, "share of tokens for validation, in whole documents")
        ->check(number(0, 1, false, true))
        ->capture_default_str();
    c->add_option("--shard-tokens", opt.shard_tokens, "tokens per shard")
        ->check(integer(1, kMaxInt))
        ->capture_default_str();
    c->add_option("--threads", opt.threads, "encoding threads (0 = all cores)")
        ->check(integer(0, 1 << 16))
        ->capture_default_str();
    c->add_flag("--overwrite", opt.overwrite, "replace shards already in --out");
    c->add_flag("--quiet", quiet, "no progress output");
    corpus.add(c);
    c->callback([this] { run(); });
  }

  void run() {
    auto tok = load_tokenizer(tokenizer);
    const std::string model_path = tok->kind() == "byte" ? std::string() : tokenizer;
    opt.corpus = corpus.options();
    ProgressBar bar("encode", !quiet);
    opt.progress = [&](const EncodeProgress& p) {
      const double s = std::max(p.seconds, 1e-9);
      bar.update(p.input_bytes, p.input_total,
                 detail::cat(human_bytes(double(p.text_bytes)), " text, ", human_count(double(p.tokens)),
                             " tok, ", human_bytes(double(p.text_bytes) / s), "/s, ",
                             human_count(double(p.tokens) / s), " tok/s"));
    };
    const EncodeSummary r = encode_corpus(inputs, *tok, model_path, out, opt);
    const int64_t tokens = r.train.tokens + r.val.tokens;
    bar.finish("");
    std::printf(
        "encoded %lld documents, %s of text, into %lld tokens in %.1f s (%s/s, %s tok/s)\n"
        "  train: %lld documents, %lld tokens, %zu shards\n  val:   %lld documents, %lld tokens, %zu shards\n"
        "  skipped: %lld lines/records with invalid UTF-8, %lld empty records\n  tokenizer: %s\n  wrote %s\n",
        static_cast<long long>(r.corpus.documents), human_bytes(double(r.corpus.text_bytes)).c_str(),
        static_cast<long long>(tokens), r.seconds,
        human_bytes(double(r.corpus.text_bytes) / r.seconds).c_str(),
        human_count(double(tokens) / r.seconds).c_str(), static_cast<long long>(r.train.documents),
        static_cast<long long>(r.train.tokens), r.train.shards.size(),
        static_cast<long long>(r.val.documents), static_cast<long long>(r.val.tokens), r.val.shards.size(),
        static_cast<long long>(r.corpus.skipped_invalid), static_cast<long long>(r.corpus.skipped_empty),
        tokenizer_line(*tok).c_str(), r.dataset_json.c_str());
  }
};

// ---- decode ---------------------------------------------------------------------------------------

struct DecodeCmd {
  std::string tokenizer, input, ids, out, eos = "\n";
  int64_t start = 0, count = -1;
  CLI::App* app = nullptr;

  void add(CLI::App& root) {
    CLI::App* c = app = root.add_subcommand("decode", "print the text of token shards, or of ids");
    c->add_option("--tokenizer", tokenizer,
                  "SentencePiece model file or 'byte' (default: the one beside the shards)")
        ->check(tokenizer_spec());
    c->add_option("--input", input, "shard file, glob or directory (one split)")->check(non_empty());
    c->add_option("--ids", ids, "token ids to decode, separated by spaces or commas")->check(non_empty());
    c->add_option("--start", start, "first token")->check(integer(0))->capture_default_str();
    c->add_option("--count", count, "number of tokens (-1 = to the end)")
        ->check(integer(-1))
        ->capture_default_str();
    c->add_option("--eos", eos, "text printed for each EOS token (default: a newline)");
    c->add_option("--out", out, "output file (default: stdout; its directory must exist)")
        ->check(output_file());
    c->callback([this] { run(); });
  }

  void run() {
    if (input.empty() == ids.empty()) usage_error(*app, "decode needs exactly one of --input and --ids");
    if (tokenizer.empty()) {
      if (input.empty()) usage_error(*app, "decode --ids needs --tokenizer");
      tokenizer = infer_tokenizer(input);
    }
    auto tok = load_tokenizer(tokenizer);
    FILE* f = stdout;
    std::string tmp;
    // Atomic replace of a regular file; onto a device (/dev/null, ...) in place.
    struct stat st {};
    const bool atomic = !out.empty() && (::stat(out.c_str(), &st) != 0 || S_ISREG(st.st_mode));
    if (!out.empty()) {
      tmp = atomic ? out + ".tmp" : out;
      f = std::fopen(tmp.c_str(), "wb");
      WERSA_CHECK(f, "cannot create '", tmp, "': ", std::strerror(errno));
    }
    try {
      if (!ids.empty()) {
        std::vector<int32_t> v;
        std::string s = ids;
        for (char& ch : s)
          if (ch == ',') ch = ' ';
        std::istringstream is(s);
        std::string word;
        while (is >> word) {
          size_t used = 0;
          long long x = 0;
          try {
            x = std::stoll(word, &used);
          } catch (const std::exception&) {
            used = 0;
          }
          WERSA_CHECK(used == word.size(), "--ids: '", word, "' is not an integer");
          WERSA_CHECK(x >= 0 && x < tok->vocab_size(), "--ids: token id ", x,
                      " is outside the vocabulary of ", tok->vocab_size());
          v.push_back(static_cast<int32_t>(x));
        }
        const std::string text = tok->decode(v);
        std::fwrite(text.data(), 1, text.size(), f);
      } else {
        auto data = open_dataset(input, *tok, tok->vocab_size());
        decode_to(*data, *tok, start, count, eos, f);
      }
    } catch (...) {
      if (f != stdout) {
        std::fclose(f);
        if (atomic) std::remove(tmp.c_str());
      }
      throw;
    }
    if (f != stdout) {
      const bool failed = std::ferror(f) != 0;
      const bool closed = std::fclose(f) == 0;
      if (!closed || failed) {
        const int err = errno ? errno : EIO;
        if (atomic) std::remove(tmp.c_str());
        WERSA_FAIL(out, ": cannot write: ", std::strerror(err));
      }
      WERSA_CHECK(!atomic || std::rename(tmp.c_str(), out.c_str()) == 0, "cannot rename '", tmp, "' to '",
                  out, "'");
    } else {
      std::fflush(stdout);
    }
  }
};

// ---- stats ----------------------------------------------------------------------------------------

struct StatsCmd {
  std::string tokenizer, shards;
  std::vector<std::string> inputs;
  int64_t max_bytes = 20000000, vocab_size = 0;
  bool json = false;
  CorpusFlags corpus;
  CLI::App* app = nullptr;

  void add(CLI::App& root) {
    CLI::App* c = app = root.add_subcommand(
        "stats", "tokenizer statistics (vocab, tokens per word) and shard sizes, counts and id range");
    c->add_option("--tokenizer", tokenizer,
                  "SentencePiece model file or 'byte' (default: the one beside --shards, if any; without "
                  "one, shards are summarised by id)")
        ->check(tokenizer_spec());
    c->add_option("--input", inputs, "text to measure the tokenizer on (files / directories)")
        ->expected(1, -1)
        ->check(existing_path());
    c->add_option("--max-bytes", max_bytes, "text measured at most")
        ->check(integer(1))
        ->capture_default_str();
    c->add_option("--shards", shards, "shard file, glob or directory (one split) to summarise")
        ->check(non_empty());
    c->add_option("--vocab-size", vocab_size,
                  "check that every shard id is below this (default: the tokenizer's vocabulary, if any)")
        ->check(integer(1, int64_t(1) << 31));
    c->add_flag("--json", json, "print JSON");
    corpus.add(c);
    c->callback([this] { run(); });
  }

  void run() {
    if (tokenizer.empty() && !shards.empty() && tokenizer_beside(shards)) tokenizer = infer_tokenizer(shards);
    if (tokenizer.empty() && shards.empty())
      usage_error(*app, "stats needs --shards GLOB or --tokenizer FILE");
    if (tokenizer.empty() && !inputs.empty())
      usage_error(*app, "stats --input needs --tokenizer (there is none beside --shards)");
    std::unique_ptr<Tokenizer> tok;
    if (!tokenizer.empty()) tok = load_tokenizer(tokenizer);
    nlohmann::json j;
    j["tokenizer"] = nullptr;
    if (tok)
      j["tokenizer"] = {{"kind", tok->kind()},
                        {"vocab_size", tok->vocab_size()},
                        {"unk_id", tok->unk_id()},
                        {"bos_id", tok->bos_id()},
                        {"eos_id", tok->eos_id()},
                        {"pad_id", tok->pad_id()},
                        {"fingerprint", tok->fingerprint()}};
    if (!json)
      std::printf("tokenizer  %s\n", tok ? tokenizer_line(*tok).c_str()
                                         : "none (ids only; --tokenizer adds pieces and EOS counts)");
    if (!inputs.empty()) print_text(*tok, j);
    if (!shards.empty()) print_shards(tok.get(), j);
    if (json) std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }

  void print_text(const Tokenizer& tok, nlohmann::json& j) {
    const TextTokenStats s = measure_text(tok, inputs, max_bytes, corpus.options());
    j["text"] = {{"documents", s.documents},
                 {"bytes", s.bytes},
                 {"words", s.words},
                 {"tokens", s.tokens},
                 {"tokens_per_word", s.tokens_per_word()},
                 {"bytes_per_token", s.bytes_per_token()},
                 {"chars_per_token", s.tokens ? double(s.chars) / double(s.tokens) : 0.0},
                 {"byte_fallback_tokens", s.byte_fallback_tokens},
                 {"unk_tokens", s.unk_tokens}};
    if (!json)
      std::printf(
          "text       %s in %lld documents: %lld words -> %lld tokens\n"
          "           %.3f tokens/word, %.2f bytes/token, %.2f chars/token, %.3f%% byte-fallback, "
          "%lld unk\n",
          human_bytes(double(s.bytes)).c_str(), static_cast<long long>(s.documents),
          static_cast<long long>(s.words), static_cast<long long>(s.tokens), s.tokens_per_word(),
          s.bytes_per_token(), s.tokens ? double(s.chars) / double(s.tokens) : 0.0,
          s.tokens ? 100.0 * double(s.byte_fallback_tokens) / double(s.tokens) : 0.0,
          static_cast<long long>(s.unk_tokens));
  }

  // Without a tokenizer or --vocab-size, ids are only checked to fit an int32.
  void print_shards(const Tokenizer* tok, nlohmann::json& j) {
    const int64_t vocab = vocab_size > 0 ? vocab_size : tok ? tok->vocab_size() : int64_t(1) << 31;
    const bool known_vocab = vocab_size > 0 || tok;
    ShardDataset data(shards, vocab);
    const ShardStats s = shard_stats(data, tok ? tok->eos_id() : -1);
    auto piece = [&](int32_t id) -> std::string {
      return tok && id < tok->vocab_size() ? tok->piece_bytes(id) : std::string();
    };
    nlohmann::json list = nlohmann::json::array();
    for (const ShardInfo& sh : s.shards)
      list.push_back({{"path", sh.path}, {"tokens", sh.tokens}, {"token_bytes", sh.token_bytes}});
    nlohmann::json top = nlohmann::json::array();
    for (const auto& [id, n] : s.top) {
      nlohmann::json e = {{"id", id}, {"count", n}};
      if (tok && id < tok->vocab_size()) e["bytes"] = piece(id);
      top.push_back(e);
    }
    j["shards"] = {{"files", list},
                   {"tokens", s.tokens},
                   {"bytes", s.bytes},
                   {"documents_eos", nullptr},
                   {"distinct_ids", s.distinct_ids},
                   {"min_id", s.min_id},
                   {"max_id", s.max_id},
                   {"vocab_size", nullptr},
                   {"top", top}};
    if (tok) j["shards"]["documents_eos"] = s.eos;
    if (known_vocab) j["shards"]["vocab_size"] = vocab;
    if (json) return;
    std::printf("shards     %zu files, %lld tokens (%s on disk)", s.shards.size(),
                static_cast<long long>(s.tokens), human_bytes(double(s.bytes)).c_str());
    if (tok) std::printf(", %lld EOS", static_cast<long long>(s.eos));
    std::printf(", ids %d..%d, %lld distinct", s.min_id, s.max_id, static_cast<long long>(s.distinct_ids));
    if (known_vocab)
      std::printf(" (%lld of %lld ids used)", static_cast<long long>(s.distinct_ids),
                  static_cast<long long>(vocab));
    std::printf("\n");
    for (const ShardInfo& sh : s.shards)
      std::printf("           %s  %lld tokens x %d bytes\n", sh.path.c_str(),
                  static_cast<long long>(sh.tokens), sh.token_bytes);
    std::printf("top ids   ");
    for (const auto& [id, n] : s.top) {
      std::printf(" %d", id);
      if (tok && id < tok->vocab_size()) {
        const nlohmann::json p = piece(id);
        std::printf(" %s", p.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      }
      std::printf(" (%.2f%%)", 100.0 * double(n) / double(s.tokens));
    }
    std::printf("\n");
  }
};

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("wersa"));
  init_logging(false);
  CLI::App app("wersa-tokenize: text corpora -> SentencePiece tokenizer -> token shards", "wersa-tokenize");
  app.require_subcommand(1);
  TrainCmd train;
  EncodeCmd encode;
  DecodeCmd decode;
  StatsCmd stats;
  train.add(app);
  encode.add(app);
  decode.add(app);
  stats.add(app);
  return run_cli([&] {
    std::string help;
    if (parse_flags(app, argc, argv, &help)) std::fputs(help.c_str(), stdout);
    std::fflush(stdout);
    return 0;
  });
}

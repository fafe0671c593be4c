// Tokenizers: byte level and SentencePiece (trained here, in process, on real text): fixed
// special ids, exact round trips (non-ASCII included), the fast encoding path against
// libsentencepiece's own whole-string encoding, determinism, and corrupted model files.
#include <sentencepiece_processor.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "../src/data/spm_model_proto.h"
#include "testutil.h"
#include "wersa/common/error.h"
#include "wersa/common/sha256.h"
#include "wersa/data/sentencepiece_train.h"
#include "wersa/data/tokenizer.h"

using namespace wersa;
using namespace wersa::test;
using namespace wersa::data;
namespace fs = std::filesystem;

namespace {

// Real English prose plus text in other scripts, emoji, tabs, CRLF and runs of spaces.
const std::string kMixed =
    "  Leading spaces, \"quotes\" and   runs of   spaces.\n\nna\xc3\xafve caf\xc3\xa9 \xe2\x80\x94 "
    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac "
    "\xd0\xa0\xd1\x83\xd1\x81\xd1\x81\xd0\xba\xd0\xb8\xd0\xb9 \xf0\x9f\x99\x82\ttab\r\nend with space ";

// Real text where every third paragraph is indented by four spaces (as in many books), so that
// models learn whitespace-only pieces.
std::string indented_text(size_t bytes) {
  const std::string text = test::real_text(bytes);
  std::string out;
  size_t pos = 0;
  for (int line = 0; pos < text.size(); ++line) {
    size_t end = text.find('\n', pos);
    end = end == std::string::npos ? text.size() : end + 1;
    if (line % 3 == 1) out += "    ";
    out.append(text, pos, end - pos);
    pos = end;
  }
  return out;
}

// One SentencePiece model per type, trained once per test binary on ~1.5 MB of a real novel.
const std::string& trained_model(const std::string& type) {
  static TempDir dir;
  static std::map<std::string, std::string> paths;
  auto it = paths.find(type);
  if (it != paths.end()) return it->second;
  const std::string corpus = dir / ("corpus_" + type + ".txt");
  write_file(corpus, indented_text(type == "bpe" ? 1500000 : 600000));
  SentencePieceTrainOptions opt;
  opt.vocab_size = 1000;
  opt.model_type = type;
  opt.threads = 2;
  const std::string out = dir / (type + "/tokenizer.model");
  train_sentencepiece({corpus}, opt, out);
  return paths[type] = out;
}

}  // namespace

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Streaming in odd pieces gives the same digest as one update.
  const std::string text = test::real_text(10007);
  Sha256 h;
  for (size_t i = 0; i < text.size(); i += 61) h.update(std::string_view(text).substr(i, 61));
  EXPECT_EQ(h.hex(), sha256_hex(text));
}

TEST(ByteTokenizer, RoundTripAndSpecials) {
  auto tok = make_byte_tokenizer();
  EXPECT_EQ(tok->vocab_size(), 259);
  EXPECT_EQ(tok->bos_id(), 256);
  EXPECT_EQ(tok->eos_id(), 257);
  EXPECT_EQ(tok->pad_id(), 258);
  EXPECT_EQ(tok->unk_id(), -1);
  EXPECT_EQ(tok->kind(), "byte");
  EXPECT_EQ(tok->fingerprint(), "byte-v1");
  const std::string text = test::real_text(20000) + kMixed;
  const std::vector<int32_t> ids = tok->encode(text);
  ASSERT_EQ(ids.size(), text.size());
  for (size_t i = 0; i < text.size(); ++i) ASSERT_EQ(ids[i], static_cast<unsigned char>(text[i]));
  EXPECT_EQ(tok->decode(ids), text);
  std::vector<int32_t> with_specials = ids;
  with_specials.insert(with_specials.begin(), 256);
  with_specials.push_back(257);
  EXPECT_EQ(tok->decode(with_specials), text);  // specials decode to nothing
  EXPECT_EQ(tok->piece_bytes(0xC3), "\xc3");
  EXPECT_EQ(tok->piece_bytes(257), "");
  EXPECT_THROW(tok->decode({259}), Error);
  EXPECT_THROW(tok->decode({-1}), Error);
  EXPECT_EQ(load_tokenizer("")->kind(), "byte");
  EXPECT_EQ(load_tokenizer("byte")->kind(), "byte");
}

TEST(SentencePiece, TrainedModelHasFixedIdsAndRecordsThem) {
  const std::string path = trained_model("bpe");
  auto tok = load_sentencepiece(path);
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_EQ(tok->vocab_size(), 1000);
  EXPECT_EQ(tok->unk_id(), 0);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->pad_id(), 3);
  EXPECT_EQ(tok->piece_bytes(4), "\n");
  EXPECT_EQ(tok->piece_bytes(5), std::string(1, '\0'));  // byte pieces follow: <0x00> ...
  EXPECT_EQ(tok->piece_bytes(5 + 0xE2), "\xe2");
  for (int32_t id : {0, 1, 2, 3}) EXPECT_EQ(tok->piece_bytes(id), "") << id;
  EXPECT_EQ(tok->fingerprint(), sha256_hex(read_file(path)));  // = sha256sum of the file
  // The sidecar records the ids and the fingerprint.
  const std::string meta = read_file(fs::path(path).replace_extension(".json").string());
  EXPECT_NE(meta.find("\"eos\": 2"), std::string::npos) << meta;
  EXPECT_NE(meta.find(tok->fingerprint()), std::string::npos);
  // The model's own settings, read by the wire-format parser, are the round-trip ones.
  const spm::ModelInfo info = spm::parse_model(read_file(path), path);
  EXPECT_EQ(info.model_type, 2);
  EXPECT_EQ(info.vocab_size, 1000);
  EXPECT_EQ(info.normalizer_name, "identity");
  EXPECT_FALSE(info.add_dummy_prefix);
  EXPECT_FALSE(info.remove_extra_whitespaces);
  EXPECT_TRUE(info.byte_fallback);
  EXPECT_EQ(info.pad_id, 3);
  EXPECT_EQ(info.pieces.size(), 1000u);
}

TEST(SentencePiece, RoundTripIsExactOnRealAndNonAsciiText) {
  for (const char* type : {"bpe", "unigram"}) {
    auto tok = load_sentencepiece(trained_model(type));
    const std::string text = test::real_text(300000) + kMixed + test::real_text(5000);
    const std::vector<int32_t> ids = tok->encode(text);
    EXPECT_LT(ids.size(), text.size() / 2) << type << ": a trained vocabulary compresses prose";
    EXPECT_EQ(tok->decode(ids), text) << type;
    std::string streamed;
    for (int32_t id : ids) streamed += tok->piece_bytes(id);
    EXPECT_EQ(streamed, text) << type;
    const std::vector<int32_t> mixed = tok->encode(kMixed);
    EXPECT_EQ(tok->decode(mixed), kMixed) << type;
    EXPECT_TRUE(tok->encode("").empty());
    EXPECT_THROW(tok->decode({1000}), Error);
    EXPECT_THROW(tok->piece_bytes(-1), Error);
  }
}

TEST(SentencePiece, FastPathEqualsWholeStringEncoding) {
  // The cached unit-by-unit encoder (BPE) must give exactly what libsentencepiece gives for the
  // whole string (which is slow: ~1 MB/s for BPE, hence 200 KB). Unigram models are encoded
  // whole by libsentencepiece itself.
  for (const char* type : {"bpe", "unigram"}) {
    const std::string path = trained_model(type);
    auto tok = load_sentencepiece(path);
    sentencepiece::SentencePieceProcessor sp;
    ASSERT_TRUE(sp.Load(path).ok());
    const std::string text = kMixed + indented_text(200000) + "\n\n   \n" + kMixed;
    int whitespace_pieces = 0;
    for (int32_t id = 0; id < tok->vocab_size(); ++id)
      whitespace_pieces +=
          tok->piece_bytes(id).size() > 1 && tok->piece_bytes(id).find_first_not_of(' ') == std::string::npos;
    EXPECT_GT(whitespace_pieces, 0) << type << ": the model should have pieces of several spaces";
    const std::vector<int> ref = sp.EncodeAsIds(text);
    const std::vector<int32_t> got = tok->encode(text);
    ASSERT_EQ(got.size(), ref.size()) << type;
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], ref[i]) << type << " token " << i;
    // A second encode hits the per-thread cache and must agree too.
    EXPECT_EQ(tok->encode(text), got) << type;
  }
}

TEST(SentencePiece, TrainingIsDeterministic) {
  TempDir dir;
  write_file(dir / "c.txt", test::real_text(400000));
  SentencePieceTrainOptions opt;
  opt.vocab_size = 600;
  opt.threads = 2;
  opt.sample_sentences = 300;  // of ~1000 lines; sampling is seeded
  train_sentencepiece({dir / "c.txt"}, opt, dir / "a.model");
  train_sentencepiece({dir / "c.txt"}, opt, dir / "b.model");
  EXPECT_TRUE(read_file(dir / "a.model") == read_file(dir / "b.model"));
  opt.seed = 2;
  train_sentencepiece({dir / "c.txt"}, opt, dir / "c.model");
  EXPECT_TRUE(read_file(dir / "a.model") != read_file(dir / "c.model"))
      << "the seed must matter when sampling";
}

TEST(SentencePiece, TrainingRejectsBadOptions) {
  TempDir dir;
  write_file(dir / "c.txt", test::real_text(1000));
  SentencePieceTrainOptions opt;
  opt.vocab_size = 100;  // below the 5 specials + 256 bytes
  EXPECT_THROW(train_sentencepiece({dir / "c.txt"}, opt, dir / "m.model"), Error);
  opt.vocab_size = 1000;
  opt.model_type = "word";
  EXPECT_THROW(train_sentencepiece({dir / "c.txt"}, opt, dir / "m.model"), Error);
  opt.model_type = "bpe";
  EXPECT_THROW(train_sentencepiece({dir / "missing.txt"}, opt, dir / "m.model"), Error);
  write_file(dir / "empty.txt", "");
  EXPECT_THROW(train_sentencepiece({dir / "empty.txt"}, opt, dir / "m.model"), Error);
  EXPECT_FALSE(fs::exists(dir / "m.model"));
}

TEST(SentencePiece, CorruptedModelFilesAreRejectedNamingTheFile) {
  TempDir dir;
  const std::string good = read_file(trained_model("bpe"));
  auto expect_rejected = [&](const std::string& bytes, const std::string& what) {
    const std::string path = dir / "bad.model";
    write_file(path, bytes);
    try {
      load_sentencepiece(path);
      ADD_FAILURE() << what << ": accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << what << ": " << e.what();
    }
  };
  // Truncated anywhere, including inside the last field.
  for (size_t cut : {size_t(0), size_t(1), size_t(7), good.size() / 3, good.size() / 2, good.size() - 60,
                     good.size() - 17, good.size() - 1})
    expect_rejected(good.substr(0, cut), "truncated at " + std::to_string(cut));
  for (size_t k = 1; k < 64; ++k) expect_rejected(good.substr(0, good.size() * k / 64), "truncated at k/64");
  expect_rejected(test::real_text(5000), "a text file");
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(rng_bits(5, 0, i));
  expect_rejected(garbage, "random bytes");
  std::string bad_header = good;
  bad_header[0] = '\x07';  // wire type 7 does not exist
  expect_rejected(bad_header, "damaged first byte");
  // Missing files and directories.
  EXPECT_THROW(load_sentencepiece(dir / "missing.model"), Error);
  EXPECT_THROW(load_sentencepiece(dir.path), Error);
  // The good bytes still load (the checks are not over-eager).
  write_file(dir / "good.model", good);
  EXPECT_NO_THROW(load_sentencepiece(dir / "good.model"));
  // A directory holding tokenizer.model loads it.
  fs::create_directories(dir / "shards");
  write_file(dir / "shards/tokenizer.model", good);
  EXPECT_EQ(load_tokenizer(dir / "shards")->fingerprint(), sha256_hex(good));
}

TEST(SentencePiece, EncodeIsThreadSafe) {
  auto tok = load_sentencepiece(trained_model("bpe"));
  const std::string text = test::real_text(100000) + kMixed;
  const std::vector<int32_t> ref = tok->encode(text);
  std::vector<std::vector<int32_t>> got(4);
#pragma omp parallel for num_threads(4)
  for (int i = 0; i < 4; ++i) got[i] = tok->encode(text);
  for (const auto& g : got) EXPECT_EQ(g, ref);
}

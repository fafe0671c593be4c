// Corpus reading (files, directories, JSON Lines, .xz/.gz, segments, UTF-8 validation) and the
// corpus -> shards pipeline: exact round trips, the whole-document validation split,
// determinism, and the wersa-tokenize tool end to end.
#include <lzma.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "testutil.h"
#include "wersa/common/error.h"
#include "wersa/common/sha256.h"
#include "wersa/data/corpus.h"
#include "wersa/data/encode.h"
#include "wersa/data/sentencepiece_train.h"
#include "wersa/data/shard.h"
#include "wersa/data/tokenizer.h"

using namespace wersa;
using namespace wersa::test;
using namespace wersa::data;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string xz(const std::string& s) {
  std::string out(lzma_stream_buffer_bound(s.size()), '\0');
  size_t pos = 0;
  EXPECT_EQ(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, nullptr, reinterpret_cast<const uint8_t*>(s.data()),
                                    s.size(), reinterpret_cast<uint8_t*>(out.data()), &pos, out.size()),
            LZMA_OK);
  out.resize(pos);
  return out;
}
std::string gz(const std::string& s) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, s.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
  z.avail_in = static_cast<uInt>(s.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
std::string jsonl(const std::vector<std::string>& texts) {
  std::string s;
  for (const std::string& t : texts) s += json{{"id", s.size()}, {"text", t}}.dump() + "\n";
  return s;
}
std::vector<Document> read_all(CorpusReader& r) {
  std::vector<Document> docs;
  Document d;
  while (r.next(d)) docs.push_back(d);
  return docs;
}
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Distinct real-text documents: paragraphs of a novel, with a few in other scripts.
std::vector<std::string> real_documents(size_t n) {
  const std::string text = test::real_text(1000000);
  std::vector<std::string> docs;
  size_t pos = 0;
  while (docs.size() < n && pos < text.size()) {
    size_t end = text.find("\n", pos + 300);
    if (end == std::string::npos) end = text.size();
    std::string d = "Document " + std::to_string(docs.size()) + ".\n" + text.substr(pos, end - pos);
    if (docs.size() % 7 == 3)
      d += "\nna\xc3\xafve caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x99\x82";
    docs.push_back(d);
    pos = end + 1;
  }
  return docs;
}

// The documents of a shard split: the stream cut after each EOS, decoded.
std::vector<std::string> documents_of(const std::string& glob, const Tokenizer& tok) {
  std::vector<std::string> out;
  if (expand_glob(glob).empty()) return out;
  ShardDataset ds(glob, tok.vocab_size());
  std::vector<int32_t> ids(static_cast<size_t>(ds.size()));
  ds.read(0, ds.size(), ids.data());
  std::vector<int32_t> cur;
  for (int32_t id : ids) {
    if (id == tok.eos_id()) {
      out.push_back(tok.decode(cur));
      cur.clear();
    } else {
      cur.push_back(id);
    }
  }
  EXPECT_TRUE(cur.empty()) << glob << ": the last document is not followed by EOS";
  return out;
}

// wersa-tokenize with `args`.
ToolRun tokenize(const std::string& args) { return run_tool("wersa-tokenize " + args); }

}  // namespace

// ---- reading ------------------------------------------------------------------------------------

TEST(Utf8, FindsTheFirstInvalidByte) {
  const auto npos = std::string_view::npos;
  EXPECT_EQ(find_invalid_utf8(""), npos);
  EXPECT_EQ(find_invalid_utf8("plain ASCII text, long enough for the 8-byte path"), npos);
  EXPECT_EQ(find_invalid_utf8("na\xc3\xafve \xe6\x97\xa5 \xf0\x9f\x99\x82 \xf4\x8f\xbf\xbf"), npos);
  EXPECT_EQ(find_invalid_utf8("abcdefghij\x80"), 10u);   // lone continuation byte
  EXPECT_EQ(find_invalid_utf8("ab\xc0\xaf"), 2u);        // overlong '/'
  EXPECT_EQ(find_invalid_utf8("ab\xe0\x80\xaf"), 2u);    // overlong, 3 bytes
  EXPECT_EQ(find_invalid_utf8("abc\xed\xa0\x80"), 3u);   // surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("\xf5\x80\x80\x80"), 0u);
  EXPECT_EQ(find_invalid_utf8("ok \xe6\x97"), 3u);      // truncated at the end
  EXPECT_EQ(find_invalid_utf8("ok \xe6\x41\x41"), 3u);  // bad continuation
  EXPECT_EQ(find_invalid_utf8("caf\xe9 latin-1"), 3u);
}

TEST(Corpus, ListsDirectoriesRecursivelyInSortedOrder) {
  TempDir dir;
  write_file(dir / "in/b.txt", "b");
  write_file(dir / "in/a.jsonl", jsonl({"a"}));
  write_file(dir / "in/sub/c.txt.xz", xz("c"));
  write_file(dir / "in/sub/d.JSONL.gz", gz(jsonl({"d"})));
  write_file(dir / "in/notes.md", "not a corpus file");
  write_file(dir / "in/.hidden.txt", "hidden");
  write_file(dir / "other.dat", "named explicitly: read as text");
  const auto files = list_corpus_files({dir / "in", dir / "other.dat"});
  ASSERT_EQ(files.size(), 5u);
  EXPECT_EQ(files[0].path, dir / "in/a.jsonl");
  EXPECT_EQ(files[0].format, InputFormat::Jsonl);
  EXPECT_EQ(files[1].path, dir / "in/b.txt");
  EXPECT_EQ(files[2].path, dir / "in/sub/c.txt.xz");
  EXPECT_EQ(files[2].compression, Compression::Xz);
  EXPECT_EQ(files[2].format, InputFormat::Text);
  EXPECT_EQ(files[3].compression, Compression::Gzip);
  EXPECT_EQ(files[3].format, InputFormat::Jsonl);
  EXPECT_EQ(files[4].path, dir / "other.dat");
  EXPECT_TRUE(contains(error_of([&] { list_corpus_files({dir / "nope"}); }), "does not exist"));
  fs::create_directories(dir / "empty");
  EXPECT_TRUE(contains(error_of([&] { list_corpus_files({dir / "empty"}); }), "holds no"));
}

TEST(Corpus, ReadsTextJsonlAndCompressedFilesAsDocuments) {
  TempDir dir;
  const std::string novel = test::real_text(200000);
  write_file(dir / "c/1.txt", novel);
  write_file(dir / "c/2.jsonl", jsonl({"first record", "second \xe6\x97\xa5"}) + "\n  \n" + jsonl({""}) +
                                    "{\"text\": \"no newline at the end\"}");
  write_file(dir / "c/3.jsonl.gz", gz(jsonl({"gz one"})) + gz(jsonl({"gz two (second member)"})));
  write_file(dir / "c/4.txt.xz", xz(novel.substr(0, 50000)));
  write_file(dir / "c/5.jsonl.xz", xz(jsonl({"xz record"})));
  CorpusReader r({dir / "c"});
  const auto docs = read_all(r);
  std::vector<std::string> texts;
  for (const auto& d : docs) texts.push_back(d.text);
  const std::vector<std::string> want = {
      novel,    "first record",           "second \xe6\x97\xa5",  "no newline at the end",
      "gz one", "gz two (second member)", novel.substr(0, 50000), "xz record"};
  EXPECT_EQ(texts, want);
  EXPECT_EQ(docs[2].file, 1);
  EXPECT_EQ(docs[2].line, 2);
  EXPECT_EQ(docs[3].line, 6);
  EXPECT_EQ(docs[3].index, 2);
  const CorpusStats s = r.stats();
  EXPECT_EQ(s.documents, 8);
  EXPECT_EQ(s.skipped_empty, 1);
  EXPECT_EQ(s.skipped_invalid, 0);
  EXPECT_EQ(r.input_bytes_read(), r.total_input_bytes());
  // Another field name.
  write_file(dir / "f.jsonl", "{\"body\": \"in body\"}\n");
  CorpusOptions opt;
  opt.jsonl_field = "body";
  CorpusReader rb({dir / "f.jsonl"}, opt);
  EXPECT_EQ(read_all(rb).at(0).text, "in body");
}

TEST(Corpus, LongTextIsDeliveredInSegmentsCutAtLinesOrCharacters) {
  TempDir dir;
  std::string text = test::real_text(30000) + "\n";
  for (int i = 0; i < 1500; ++i) text += "\xc3\xa9";  // a 3000-byte line of 2-byte characters
  text += "\n" + test::real_text(7000);
  write_file(dir / "long.txt", text);
  write_file(dir / "short.txt", "short");
  CorpusOptions opt;
  opt.max_segment_bytes = 1001;  // odd, so that cuts fall inside characters if done wrong
  CorpusReader r({dir / "long.txt", dir / "short.txt"}, opt);
  const auto docs = read_all(r);
  ASSERT_GT(docs.size(), 20u);
  std::string joined;
  for (size_t i = 0; i + 1 < docs.size(); ++i) {
    const Document& d = docs[i];
    EXPECT_EQ(d.first, i == 0) << i;
    EXPECT_EQ(d.last, i + 2 == docs.size()) << i;
    EXPECT_EQ(d.offset, static_cast<int64_t>(joined.size())) << i;
    EXPECT_EQ(find_invalid_utf8(d.text), std::string_view::npos) << "segment " << i << " splits a character";
    joined += d.text;
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(docs.back().text, "short");
  EXPECT_TRUE(docs.back().first && docs.back().last);
  EXPECT_EQ(r.stats().documents, 2);
}

TEST(Corpus, InvalidUtf8IsReportedWithFileAndOffsetThenSkippedOrRejected) {
  TempDir dir;
  write_file(dir / "a.txt", "good line\nbad \xff line\nlast line\n");
  write_file(dir / "b.jsonl", "{\"text\": \"fine\"}\n{\"text\": \"caf\xe9\"}\n{\"text\": \"also fine\"}\n");
  CorpusReader skip({dir / "a.txt", dir / "b.jsonl"});
  const auto docs = read_all(skip);
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].text, "good line\nlast line\n");  // only the bad line is left out
  EXPECT_EQ(docs[1].text, "fine");
  EXPECT_EQ(docs[2].text, "also fine");
  EXPECT_EQ(skip.stats().skipped_invalid, 2);
  EXPECT_EQ(skip.file_stats()[1].skipped_invalid, 1);

  CorpusOptions reject;
  reject.invalid_utf8 = InvalidUtf8::Reject;
  std::string msg = error_of([&] {
    CorpusReader r({dir / "a.txt"}, reject);
    read_all(r);
  });
  EXPECT_TRUE(contains(msg, dir / "a.txt") && contains(msg, "byte offset 14") && contains(msg, "line 2"))
      << msg;
  msg = error_of([&] {
    CorpusReader r({dir / "b.jsonl"}, reject);
    read_all(r);
  });
  EXPECT_TRUE(contains(msg, dir / "b.jsonl") && contains(msg, "byte offset 30") && contains(msg, "line 2"))
      << msg;
  // Offsets count decoded bytes in compressed files.
  write_file(dir / "c.txt.gz", gz("0123456789\xfe"));
  msg = error_of([&] {
    CorpusReader r({dir / "c.txt.gz"}, reject);
    read_all(r);
  });
  EXPECT_TRUE(contains(msg, "byte offset 10 of the decompressed text")) << msg;
}

TEST(Corpus, BadJsonLinesAndDamagedCompressionAreErrors) {
  TempDir dir;
  auto error_reading = [&](const std::string& name, const std::string& bytes) {
    write_file(dir / name, bytes);
    return error_of([&] {
      CorpusReader r({dir / name});
      read_all(r);
    });
  };
  std::string msg = error_reading("a.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n");
  EXPECT_TRUE(contains(msg, dir / "a.jsonl" + ":2") && contains(msg, "invalid JSON")) << msg;
  msg = error_reading("b.jsonl", "{\"title\": \"no text\"}\n");
  EXPECT_TRUE(contains(msg, ":1") && contains(msg, "no \"text\" field")) << msg;
  msg = error_reading("c.jsonl", "{\"text\": 42}\n");
  EXPECT_TRUE(contains(msg, "expected a string")) << msg;
  msg = error_reading("d.jsonl", "[\"text\"]\n");
  EXPECT_TRUE(contains(msg, "expected a JSON object")) << msg;
  const std::string packed = xz(test::real_text(100000));
  msg = error_reading("e.txt.xz", packed.substr(0, packed.size() / 2));
  EXPECT_TRUE(contains(msg, dir / "e.txt.xz") && contains(msg, "truncated")) << msg;
  std::string damaged = packed;
  damaged[damaged.size() / 2] ^= 0x55;
  msg = error_reading("f.txt.xz", damaged);
  EXPECT_TRUE(contains(msg, dir / "f.txt.xz") && contains(msg, "corrupt")) << msg;
  msg = error_reading("g.txt.xz", "this is not xz data at all");
  EXPECT_TRUE(contains(msg, "not in .xz format")) << msg;
  const std::string packed_gz = gz(test::real_text(100000));
  msg = error_reading("h.txt.gz", packed_gz.substr(0, packed_gz.size() / 2));
  EXPECT_TRUE(contains(msg, dir / "h.txt.gz") && contains(msg, "truncated")) << msg;
  std::string damaged_gz = packed_gz;
  damaged_gz[damaged_gz.size() / 2] ^= 0x55;
  msg = error_reading("i.txt.gz", damaged_gz);
  EXPECT_TRUE(contains(msg, dir / "i.txt.gz")) << msg;
}

namespace {

struct Streamed {
  int64_t docs = 0, bytes = 0;
  size_t longest = 0;
};

// Streams a corpus of whole documents (no segmenting): each document in one piece, nothing
// skipped, the whole input read; returns what it saw.
Streamed stream_all(const std::string& path) {
  CorpusReader r({path});
  Document d;
  Streamed s;
  while (r.next(d)) {
    ++s.docs, s.bytes += static_cast<int64_t>(d.text.size());
    s.longest = std::max(s.longest, d.text.size());
    EXPECT_TRUE(d.first && d.last);
  }
  EXPECT_EQ(r.stats().skipped_invalid, 0);
  EXPECT_EQ(r.input_bytes_read(), r.total_input_bytes());
  return s;
}

}  // namespace

// A novels-like corpus written here (JSON Lines, xz: 12 texts of real English, the longest over
// 1 MiB, longer than any read buffer) everywhere; the real novels98 corpus where ../shared/data
// has it (98 novels, ~75 MB, the longest over 1 MiB).
TEST(Corpus, StreamsTheNovelsCorpus) {
  TempDir dir;
  const std::string text = test::real_text(1300000);
  std::vector<std::string> docs;
  int64_t bytes = 0;
  size_t longest = 0;
  for (size_t i = 0; i < 12; ++i) {
    docs.push_back(i == 5 ? text : text.substr(i * 1000, 20000 + 9000 * i));
    bytes += int64_t(docs.back().size()), longest = std::max(longest, docs.back().size());
  }
  ASSERT_GT(longest, size_t(1) << 20);
  write_file(dir / "novels.jsonl.xz", xz(jsonl(docs)));
  const Streamed s = stream_all(dir / "novels.jsonl.xz");
  EXPECT_EQ(s.docs, 12);
  EXPECT_EQ(s.bytes, bytes);
  EXPECT_EQ(s.longest, longest);
  const std::string novels = test::shared_data("novels98.jsonl.xz");
  if (novels.empty()) return;
  const Streamed n = stream_all(novels);
  EXPECT_EQ(n.docs, 98);
  EXPECT_GT(n.bytes, 70000000);  // ~75 MB of text
  EXPECT_GT(n.longest, size_t(1) << 20);
}

// ---- encoding -----------------------------------------------------------------------------------

TEST(Encode, RoundTripAndWholeDocumentSplit) {
  TempDir dir;
  const auto docs = real_documents(150);
  ASSERT_EQ(docs.size(), 150u);
  write_file(dir / "in/part1.jsonl", jsonl(std::vector<std::string>(docs.begin(), docs.begin() + 100)));
  write_file(dir / "in/part2.jsonl.gz", gz(jsonl(std::vector<std::string>(docs.begin() + 100, docs.end()))));
  SentencePieceTrainOptions topt;
  topt.vocab_size = 400;
  train_sentencepiece({dir / "in"}, topt, dir / "tok/tokenizer.model");
  auto sp = load_sentencepiece(dir / "tok/tokenizer.model");
  auto bytes = make_byte_tokenizer();

  for (const Tokenizer* tok : {bytes.get(), sp.get()}) {
    SCOPED_TRACE(tok->kind());
    const std::string out = dir / ("out_" + tok->kind());
    EncodeOptions opt;
    opt.val_fraction = 0.2;
    opt.shard_tokens = 7000;
    opt.threads = 2;
    const EncodeSummary s =
        encode_corpus({dir / "in"}, *tok, tok->kind() == "byte" ? "" : dir / "tok/tokenizer.model", out, opt);
    // Every document exactly once, in exactly one split, and exactly as written.
    const auto train = documents_of(out + "/train_*.bin", *tok);
    const auto val = documents_of(out + "/val_*.bin", *tok);
    EXPECT_EQ(static_cast<int64_t>(train.size()), s.train.documents);
    EXPECT_EQ(static_cast<int64_t>(val.size()), s.val.documents);
    std::multiset<std::string> got(train.begin(), train.end());
    got.insert(val.begin(), val.end());
    EXPECT_TRUE(got == std::multiset<std::string>(docs.begin(), docs.end()));
    std::set<std::string> train_set(train.begin(), train.end());
    for (const std::string& v : val) EXPECT_EQ(train_set.count(v), 0u) << "a document is in both splits";
    EXPECT_GT(val.size(), 10u);
    const double share = double(s.val.tokens) / double(s.train.tokens + s.val.tokens);
    EXPECT_NEAR(share, 0.2, 0.05);
    // Shards: all full except the last of each split.
    ASSERT_GT(s.train.shards.size(), 2u);
    for (size_t i = 0; i + 1 < s.train.shards.size(); ++i) EXPECT_EQ(s.train.shards[i].tokens, 7000);
    EXPECT_EQ(s.train.shards[0].token_bytes, 2);
    // dataset.json agrees, and a SentencePiece directory carries its tokenizer.
    const json meta = json::parse(read_file(out + "/dataset.json"));
    EXPECT_EQ(meta["tokenizer"]["fingerprint"], tok->fingerprint());
    EXPECT_EQ(meta["split"]["train"]["tokens"], s.train.tokens);
    EXPECT_EQ(meta["split"]["val"]["documents"], s.val.documents);
    EXPECT_EQ(meta["split"]["val_documents"].size(), val.size());
    EXPECT_EQ(meta["totals"]["documents"], 150);
    EXPECT_EQ(meta["sources"].size(), 2u);
    EXPECT_EQ(meta["sources"][1]["compression"], "gzip");
    if (tok->kind() == "sentencepiece") {
      EXPECT_EQ(sha256_hex(read_file(out + "/tokenizer.model")), tok->fingerprint());
      EXPECT_EQ(load_tokenizer(out)->fingerprint(), tok->fingerprint());
    } else {
      EXPECT_FALSE(fs::exists(out + "/tokenizer.model"));
      EXPECT_EQ(load_tokenizer(out)->kind(), "byte");  // from dataset.json
    }
    EXPECT_NO_THROW(open_dataset(out + "/train_*.bin", *tok, tok->vocab_size()));
  }
}

TEST(Encode, SameInputTwiceGivesIdenticalShards) {
  TempDir dir;
  // ~3 MB of real novels when the shared corpus is present, else real text documents.
  std::vector<std::string> docs;
  const std::string novels = test::shared_data("novels98.jsonl.xz");
  if (!novels.empty()) {
    CorpusReader r({novels});
    Document d;
    for (size_t bytes = 0; bytes < 3000000 && r.next(d); bytes += d.text.size()) docs.push_back(d.text);
  } else {
    docs = real_documents(400);
  }
  write_file(dir / "in.jsonl.xz", xz(jsonl(docs)));
  SentencePieceTrainOptions topt;
  topt.vocab_size = 2000;
  train_sentencepiece({dir / "in.jsonl.xz"}, topt, dir / "tokenizer.model");
  auto tok = load_sentencepiece(dir / "tokenizer.model");
  EncodeOptions opt;
  opt.val_fraction = 0.3;
  // Several shards of each split either way (the fallback documents are a few hundred KB).
  opt.shard_tokens = novels.empty() ? 20000 : 200000;
  opt.threads = 1;
  encode_corpus({dir / "in.jsonl.xz"}, *tok, dir / "tokenizer.model", dir / "a", opt);
  opt.threads = 2;
  encode_corpus({dir / "in.jsonl.xz"}, *tok, dir / "tokenizer.model", dir / "b", opt);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir / "a")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  ASSERT_GT(names.size(), 4u);
  for (const std::string& n : names)
    EXPECT_TRUE(read_file(dir / ("a/" + n)) == read_file(dir / ("b/" + n))) << n << " differs";
  EXPECT_EQ(std::distance(fs::directory_iterator(dir / "b"), fs::directory_iterator{}),
            static_cast<std::ptrdiff_t>(names.size()));
}

TEST(Encode, SegmentedDocumentsStayWholeInTrain) {
  TempDir dir;
  const std::string big = test::real_text(60000);
  write_file(dir / "in/big.txt", big);
  for (int i = 0; i < 6; ++i)
    write_file(dir / ("in/small" + std::to_string(i) + ".txt"), real_documents(6)[i]);
  auto tok = make_byte_tokenizer();
  EncodeOptions opt;
  opt.val_fraction = 0.5;  // would take the big document if it were whole
  opt.corpus.max_segment_bytes = 4096;
  const EncodeSummary s = encode_corpus({dir / "in"}, *tok, "", dir / "out", opt);
  const auto train = documents_of(dir / "out/train_*.bin", *tok);
  EXPECT_EQ(std::count(train.begin(), train.end(), big), 1);
  EXPECT_EQ(s.train.documents + s.val.documents, 7);
  EXPECT_GT(s.val.documents, 0);
}

TEST(Encode, RefusesToMixWithEarlierOutputUnlessOverwriting) {
  TempDir dir;
  write_file(dir / "a.txt", test::real_text(5000));
  auto tok = make_byte_tokenizer();
  EncodeOptions opt;
  opt.val_fraction = 0;
  encode_corpus({dir / "a.txt"}, *tok, "", dir / "out", opt);
  write_file(dir / "out/train_000007.bin", "stale");
  const std::string msg = error_of([&] { encode_corpus({dir / "a.txt"}, *tok, "", dir / "out", opt); });
  EXPECT_TRUE(contains(msg, "--overwrite")) << msg;
  opt.overwrite = true;
  encode_corpus({dir / "a.txt"}, *tok, "", dir / "out", opt);
  EXPECT_FALSE(fs::exists(dir / "out/train_000007.bin"));
  EXPECT_EQ(ShardDataset(dir / "out/train_*.bin", 259).size(), 5001);  // text + EOS
  // Rejected input: an error, and no dataset.json claiming a complete directory.
  write_file(dir / "bad.txt", "x\xff");
  opt.corpus.invalid_utf8 = InvalidUtf8::Reject;
  EXPECT_THROW(encode_corpus({dir / "bad.txt"}, *tok, "", dir / "out2", opt), Error);
  EXPECT_FALSE(fs::exists(dir / "out2/dataset.json"));
  EXPECT_TRUE(fs::is_empty(dir / "out2"));
}

// ---- the tool -----------------------------------------------------------------------------------

TEST(Tool, TrainEncodeDecodeStatsEndToEnd) {
  TempDir dir;
  const auto docs = real_documents(40);
  write_file(dir / "in.jsonl", jsonl(docs));
  ToolRun r = tokenize("train --input " + dir / "in.jsonl" + " --vocab-size 400 --quiet --out " +
                       dir / "tok/tokenizer.model");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "tok/tokenizer.json"));
  r = tokenize("encode --tokenizer " + dir / "tok/tokenizer.model" + " --input " + dir / "in.jsonl" +
               " --out " + dir / "shards" + " --val-fraction 0 --quiet");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "encoded 40 documents")) << r.out;
  // decode finds the tokenizer beside the shards.
  r = tokenize("decode --input " + dir / "shards/train_000000.bin" + " --eos '<EOS>'");
  ASSERT_EQ(r.status, 0) << r.err;
  std::string want;
  for (const std::string& d : docs) want += d + "<EOS>";
  EXPECT_TRUE(r.out == want) << r.out.substr(0, 300);
  r = tokenize("decode --tokenizer " + dir / "tok/tokenizer.model" + " --ids '1, 2,3'");
  EXPECT_EQ(r.status, 0) << r.err;
  r = tokenize("stats --shards " + dir / "shards/train_*.bin" + " --input " + dir / "in.jsonl");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "tokens/word") && contains(r.out, "40 EOS")) << r.out;
}

TEST(Tool, ErrorsAreOneLineOnStderrWithNonZeroExit) {
  TempDir dir;
  write_file(dir / "bad.bin", std::string(2048, 'x'));
  auto one_error_line = [](const ToolRun& r, const std::string& needle, int status = 1) {
    expect_one_line_error(r, needle, status);
  };
  one_error_line(tokenize("decode --tokenizer byte --input " + dir / "bad.bin"), dir / "bad.bin");
  one_error_line(tokenize("encode --tokenizer " + dir / "missing.model" + " --input x --out y"),
                 "missing.model", 2);
  one_error_line(tokenize("encode --tokenizer byte --input " + dir / "nope.txt" + " --out " + dir / "o"),
                 "nope.txt", 2);
  one_error_line(tokenize("train --input " + dir / "bad.bin"), "--vocab-size", 2);
  one_error_line(
      tokenize("encode --tokenizer byte --input " + dir / "bad.bin" + " --out " + dir / "o --val-fraction 2"),
      "fraction", 2);
}

// A GPT-2 shard as llm.c writes it (256 x int32 header: magic 20240520, version 1, count; then
// uint16 ids up to 50256 = <|endoftext|>), without a tokenizer beside it.
TEST(Tool, StatsSummarisesAForeignGpt2ShardWithoutATokenizer) {
  TempDir dir;
  const std::vector<uint16_t> ids = {464,  2068, 7586,  50256, 21831, 18045, 625,   262, 16931,
                                     3290, 13,   50256, 464,   3290,  13,    50256, 198, 50256};
  std::vector<int32_t> header(256, 0);
  header[0] = 20240520, header[1] = 1, header[2] = static_cast<int32_t>(ids.size());
  const std::string shard = dir / "fineweb_train_000001.bin";
  {
    std::ofstream f(shard, std::ios::binary);
    f.write(reinterpret_cast<const char*>(header.data()), 1024);
    f.write(reinterpret_cast<const char*>(ids.data()), static_cast<std::streamsize>(2 * ids.size()));
  }
  ToolRun r = tokenize("stats --shards " + shard);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "18 tokens") && contains(r.out, "ids 13..50256, 12 distinct")) << r.out;
  EXPECT_TRUE(contains(r.out, "top ids    50256 (22.22%)")) << r.out;
  r = tokenize("stats --json --shards " + shard + " --vocab-size 50257");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["tokenizer"].is_null());
  EXPECT_EQ(j["shards"]["tokens"], 18);
  EXPECT_EQ(j["shards"]["min_id"], 13);
  EXPECT_EQ(j["shards"]["max_id"], 50256);
  EXPECT_EQ(j["shards"]["distinct_ids"], 12);
  EXPECT_EQ(j["shards"]["vocab_size"], 50257);
  EXPECT_EQ(j["shards"]["top"][0]["id"], 50256);
  EXPECT_EQ(j["shards"]["top"][0]["count"], 4);
  EXPECT_EQ(j["shards"]["top"][1]["id"], 13);  // ties: the lower id first
  // A vocabulary too small: one line naming the shard, the position and the id.
  r = tokenize("stats --shards " + shard + " --vocab-size 50000");
  expect_one_line_error(r, shard);
  EXPECT_TRUE(contains(r.err, "token 3 has id 50256")) << r.err;
  EXPECT_EQ(r.status, 1);
  // --input still needs a tokenizer.
  expect_one_line_error(tokenize("stats --shards " + shard + " --input " + shard), "--tokenizer", 2);
}

// uint32 shards (llm.c's Llama-3 format, written by the project's own writer) with ids beyond
// any dense histogram.
TEST(Tool, StatsCountsLargeIdsOfUint32Shards) {
  TempDir dir;
  const std::string shard = dir / "big_000.bin";
  data::write_shard(shard, {5, 128000, 30000000, 30000000, 5, 5}, 4);
  const ToolRun r = tokenize("stats --json --shards " + shard);
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["shards"]["max_id"], 30000000);
  EXPECT_EQ(j["shards"]["distinct_ids"], 3);
  EXPECT_EQ(j["shards"]["top"][0]["id"], 5);
  EXPECT_EQ(j["shards"]["top"][1]["id"], 30000000);
  EXPECT_EQ(j["shards"]["top"][1]["count"], 2);
  EXPECT_TRUE(j["shards"]["vocab_size"].is_null());
}

// The quick start's text on a machine without ../shared: the Debian licence texts, gathered by
// scripts/licence-corpus.sh as .txt files (the directory itself holds files without extensions,
// which the corpus reader does not take), then encoded as the quick start does.
TEST(Tool, QuickstartFallbackTextsEncode) {
  if (!fs::is_directory("/usr/share/common-licenses")) GTEST_SKIP() << "no /usr/share/common-licenses here";
  TempDir dir;
  const std::string cmd = "bash " + source_dir() + "/scripts/licence-corpus.sh " + dir / "texts" + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ToolRun r = tokenize("encode --tokenizer byte --input " + dir / "texts" + " --out " + dir / "bytes" +
                       " --val-fraction 0.02 --overwrite");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "bytes/train_000000.bin"));
  EXPECT_TRUE(fs::exists(dir / "bytes/val_000000.bin")) << r.out;
}

// Labelled documents (data/labeled.h): reading real arXiv records and synthetic files (plain,
// .gz, .xz), every reading error naming file:line and the field, class maps, the stratified
// split, tokenizing with head / head_tail truncation (against slices of the full encoding, and
// independent of the thread count) and the length-bucketed batcher (coverage, padding against
// random batches, resuming, evaluation order).
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>

#include "synthdata.h"
#include "testutil.h"
#include "wersa/common/error.h"
#include "wersa/common/json.h"
#include "wersa/common/rng.h"
#include "wersa/data/labeled.h"
#include "wersa/data/sentencepiece_train.h"
#include "wersa/data/tokenizer.h"

using namespace wersa;
using namespace wersa::test;
using namespace wersa::data;

namespace {

const std::set<std::string> kArxivClasses = {"astro-ph", "cond-mat", "cs",      "gr-qc",
                                             "hep-ph",   "hep-th",   "math",    "nlin",
                                             "nucl-th",  "physics",  "quant-ph"};

bool have_tool(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

// The output of a shell command.
std::string shell_output(const std::string& cmd) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  char buf[1 << 16];
  size_t k;
  while (p && (k = fread(buf, 1, sizeof buf, p.get())) > 0) out.append(buf, k);
  return out;
}

// The first 200 records of the real arXiv set, or an empty data set when it is not here.
const LabeledDataset& arxiv200() {
  static LabeledDataset data = [] {
    const std::string path = shared_data("arxiv11.jsonl.xz");
    LabeledReadOptions opt;
    opt.max_records = 200;
    return path.empty() ? LabeledDataset{} : read_labeled_jsonl(path, opt);
  }();
  return data;
}

std::string rec(const std::string& id, const std::string& label, const std::string& text,
                const std::string& split = "") {
  nlohmann::json j = {{"id", id}, {"label", label}, {"text", text}};
  if (!split.empty()) j["split"] = split;
  return j.dump() + "\n";
}

// A data set of `sizes[c]` records for class "c<c>", ids "d<i>", short random texts.
std::string synthetic_classes(const std::vector<int>& sizes) {
  std::string out;
  int i = 0;
  for (size_t c = 0; c < sizes.size(); ++c)
    for (int k = 0; k < sizes[c]; ++k, ++i)
      out += rec("d" + std::to_string(i), "c" + std::to_string(c),
                 std::string(1 + rng_bits(5, 0, i) % 50, char('a' + i % 26)));
  return out;
}

// A tokenizer that encodes bytes, but gives no ids for "EMPTY" and throws for "THROW".
class OddTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    if (text == "EMPTY") return {};
    if (text == "THROW") throw Error("odd tokenizer: cannot encode THROW");
    return bytes_->encode(text);
  }
  std::string decode(const std::vector<int32_t>& ids) const override { return bytes_->decode(ids); }
  std::string piece_bytes(int32_t id) const override { return bytes_->piece_bytes(id); }
  int64_t vocab_size() const override { return 259; }
  int32_t bos_id() const override { return 256; }
  int32_t eos_id() const override { return 257; }
  int32_t pad_id() const override { return 258; }
  int32_t unk_id() const override { return -1; }
  std::string kind() const override { return "odd"; }
  std::string fingerprint() const override { return "odd"; }

 private:
  std::unique_ptr<Tokenizer> bytes_ = make_byte_tokenizer();
};

std::vector<int32_t> bytes_of(const std::string& s, size_t from, size_t n) {
  std::vector<int32_t> out;
  for (size_t i = from; i < from + n; ++i) out.push_back(static_cast<unsigned char>(s[i]));
  return out;
}

void expect_same_set(const DocumentSet& a, const DocumentSet& b) {
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.offset, b.offset);
  EXPECT_EQ(a.length, b.length);
  EXPECT_EQ(a.full_length, b.full_length);
  EXPECT_EQ(a.label, b.label);
  EXPECT_EQ(a.split, b.split);
}

}  // namespace

// ---- real data ------------------------------------------------------------------------------

namespace {

// Checks of any arXiv-like excerpt of 200 records with given splits: ids, labels among `classes`,
// the label map, and given splits kept by assign_splits.
void expect_arxiv_like(const LabeledDataset& data, const std::set<std::string>& classes) {
  ASSERT_EQ(data.records.size(), 200u);
  EXPECT_TRUE(data.has_split);
  std::map<Split, int> per_split;
  for (const LabeledRecord& r : data.records) {
    EXPECT_FALSE(r.id.empty());
    EXPECT_FALSE(r.label_is_int());
    EXPECT_TRUE(classes.count(r.label)) << r.label;
    EXPECT_NE(r.split, Split::None);
    ++per_split[r.split];
  }
  EXPECT_GT(per_split[Split::Train], 100);  // both files list mostly training records
  const LabelMap labels = LabelMap::from_records(data);
  EXPECT_TRUE(std::is_sorted(labels.names().begin(), labels.names().end()));
  EXPECT_GE(labels.num_classes(), 5);
  for (const std::string& n : labels.names()) EXPECT_TRUE(classes.count(n)) << n;
  // Given splits are kept.
  LabeledDataset copy = data;
  assign_splits(copy, labels, {0.3, 0.3, 99});
  for (size_t i = 0; i < data.records.size(); ++i) EXPECT_EQ(copy.records[i].split, data.records[i].split);
}

// The synthetic arXiv-like set (tests/synthdata.h): 200 records, .xz compressed when the xz tool is
// here, read back record by record as generated.
LabeledDataset synthetic200(const TempDir& dir, std::vector<SynthRecord>* recs = nullptr) {
  const std::vector<SynthRecord> gen = synthetic_arxiv(200, 600, 5000);
  write_file(dir / "synth.jsonl", synthetic_jsonl(gen));
  std::string path = dir / "synth.jsonl";
  if (have_tool("xz")) {
    EXPECT_EQ(std::system(("xz -k -1 '" + path + "'").c_str()), 0);
    path += ".xz";
  }
  if (recs) *recs = gen;
  return read_labeled_jsonl(path);
}

}  // namespace

TEST(Labeled, SyntheticArxivIsReadAsWritten) {
  TempDir dir;
  std::vector<SynthRecord> gen;
  const LabeledDataset data = synthetic200(dir, &gen);
  std::set<std::string> classes;
  for (const SynthClass& c : synth_classes()) classes.insert(c.name);
  expect_arxiv_like(data, classes);
  ASSERT_EQ(data.records.size(), gen.size());
  std::map<std::string, int> per_class, want_class;
  std::array<int, 3> per_split{}, want_split{};
  for (size_t i = 0; i < gen.size(); ++i) {
    const LabeledRecord& r = data.records[i];
    EXPECT_EQ(r.id, gen[i].id);
    EXPECT_EQ(r.label, gen[i].label);
    EXPECT_EQ(r.text, gen[i].text);
    EXPECT_EQ(split_name(r.split), gen[i].split);
    ++per_class[r.label], ++per_split[static_cast<int>(r.split)];
    ++want_class[gen[i].label];
    ++want_split[gen[i].split == "train" ? 0 : gen[i].split == "validation" ? 1 : 2];
  }
  EXPECT_EQ(per_class, want_class);
  EXPECT_EQ(per_split, (std::array<int, 3>{140, 30, 30}));  // 14:3:3 of every 20 records
  EXPECT_EQ(per_split, want_split);
  const LabelMap labels = LabelMap::from_records(data);
  const DocumentSet set = encode_documents(data, labels, *make_byte_tokenizer(), 4096, Truncation::HeadTail);
  const DocumentStats st = document_stats(set);
  EXPECT_EQ(st.split[1].docs, 30);
  EXPECT_EQ(set.indices(Split::Test).size(), 30u);
  int cs = 0;
  for (int k = 0; k < 3; ++k) cs += st.split[k].per_class[labels.find("cs")];
  EXPECT_EQ(cs, want_class["cs"]);
}

// Needs the real file (tests/allowed-skips.txt: no-shared); its synthetic counterpart above runs
// everywhere.
TEST(Labeled, RealArxivExcerptIsReadAsWritten) {
  const LabeledDataset& data = arxiv200();
  if (data.records.empty()) GTEST_SKIP() << "../shared/data/arxiv11.jsonl.xz not found";
  expect_arxiv_like(data, kArxivClasses);
  // The same 200 lines decoded by the xz tool and parsed one by one.
  if (have_tool("xz")) {
    const std::string text = shell_output("xz -dc '" + shared_data("arxiv11.jsonl.xz") + "' | head -n 200");
    size_t pos = 0;
    for (const LabeledRecord& r : data.records) {
      const size_t nl = text.find('\n', pos);
      ASSERT_NE(nl, std::string::npos);
      const nlohmann::json j = parse_json(std::string_view(text).substr(pos, nl - pos), "line");
      pos = nl + 1;
      EXPECT_EQ(j.at("id").get<std::string>(), r.id);
      EXPECT_EQ(j.at("label").get<std::string>(), r.label);
      EXPECT_EQ(j.at("text").get<std::string>(), r.text);
      EXPECT_EQ(j.at("split").get<std::string>(), split_name(r.split));
    }
  }
}

// Needs the real file (tests/allowed-skips.txt: no-shared).
TEST(Labeled, RealArxivWholeFileHasTheDocumentedSplitsAndClasses) {
  const std::string path = shared_data("arxiv11.jsonl.xz");
  if (path.empty()) GTEST_SKIP() << "../shared/data/arxiv11.jsonl.xz not found";
  const LabeledDataset data = read_labeled_jsonl(path);
  ASSERT_EQ(data.records.size(), 3905u);  // the counts of ../shared/data/README.md
  const LabelMap labels = LabelMap::from_records(data);
  EXPECT_EQ(labels.names(), std::vector<std::string>(kArxivClasses.begin(), kArxivClasses.end()));
  std::map<std::string, int> per_class;
  std::array<int, 3> per_split{};
  for (const LabeledRecord& r : data.records) ++per_class[r.label], ++per_split[static_cast<int>(r.split)];
  EXPECT_EQ(per_split, (std::array<int, 3>{2726, 586, 593}));
  const std::map<std::string, int> want = {{"astro-ph", 827}, {"math", 627},    {"hep-ph", 600},
                                           {"cond-mat", 444}, {"hep-th", 428},  {"quant-ph", 282},
                                           {"gr-qc", 248},    {"physics", 171}, {"nucl-th", 114},
                                           {"nlin", 87},      {"cs", 77}};
  EXPECT_EQ(per_class, want);
  const DocumentSet set = encode_documents(data, labels, *make_byte_tokenizer(), 4096, Truncation::HeadTail);
  const DocumentStats st = document_stats(set);
  std::printf("%s\n", describe(st, labels).c_str());
  EXPECT_EQ(st.split[1].docs, 586);
  EXPECT_EQ(st.split[2].per_class[labels.find("cs")] + st.split[1].per_class[labels.find("cs")] +
                st.split[0].per_class[labels.find("cs")],
            77);
  EXPECT_EQ(set.indices(Split::Test).size(), 593u);
}

namespace {

// Byte tokens of each of 200 records are its UTF-8 bytes; head and head_tail truncation at 1000
// are the slices of them; at least `min_truncated` records are longer than that.
void expect_byte_slices(const LabeledDataset& data, int min_truncated) {
  const LabelMap labels = LabelMap::from_records(data);
  auto tok = make_byte_tokenizer();
  const int64_t max = 1000;  // head 250, tail 750
  const DocumentSet head = encode_documents(data, labels, *tok, max, Truncation::Head, 2);
  const DocumentSet ht = encode_documents(data, labels, *tok, max, Truncation::HeadTail, 2);
  ASSERT_EQ(head.size(), 200);
  int truncated = 0;
  for (int64_t i = 0; i < head.size(); ++i) {
    const std::string& text = data.records[i].text;
    const size_t n = text.size();  // byte tokenizer: one id per UTF-8 byte
    ASSERT_EQ(head.full_length[i], static_cast<int64_t>(n));
    EXPECT_EQ(head.label[i], labels.find(data.records[i].label));
    EXPECT_EQ(head.split[i], data.records[i].split);
    const std::vector<int32_t> h(head.doc(i), head.doc(i) + head.length[i]);
    const std::vector<int32_t> t(ht.doc(i), ht.doc(i) + ht.length[i]);
    if (n <= size_t(max)) {
      EXPECT_EQ(h, bytes_of(text, 0, n));
      EXPECT_EQ(t, h);
      continue;
    }
    ++truncated;
    EXPECT_EQ(h, bytes_of(text, 0, max));
    std::vector<int32_t> want = bytes_of(text, 0, 250);
    const std::vector<int32_t> tail = bytes_of(text, n - 750, 750);
    want.insert(want.end(), tail.begin(), tail.end());
    EXPECT_EQ(t, want);
  }
  EXPECT_GT(truncated, min_truncated);
  const DocumentStats st = document_stats(head);
  EXPECT_EQ(st.all.docs, 200);
  EXPECT_EQ(st.all.truncated, truncated);
  EXPECT_EQ(st.split[0].docs + st.split[1].docs + st.split[2].docs, 200);
  const std::string line = describe(st, labels);
  EXPECT_NE(line.find("200 documents"), std::string::npos) << line;
  EXPECT_NE(line.find(std::to_string(truncated) + " truncated to 1000 (head)"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

}  // namespace

// On the synthetic set (texts of 600 to 5000 bytes: 91% longer than 1000) everywhere, and on real
// papers (thousands of words) where ../shared/data has them.
TEST(Labeled, ByteTokensAndTruncationAreSlicesOfTheText) {
  TempDir dir;
  {
    SCOPED_TRACE("synthetic");
    expect_byte_slices(synthetic200(dir), 160);
  }
  if (!arxiv200().records.empty()) {
    SCOPED_TRACE("arxiv11");
    expect_byte_slices(arxiv200(), 150);
  }
}

TEST(Labeled, EncodingDoesNotDependOnTheThreadCount) {
  TempDir dir;
  LabeledDataset data = arxiv200();
  if (data.records.empty()) {  // synthetic stand-in: real English text cut into documents
    const std::string text = real_text(400000);
    std::string file;
    for (int i = 0; i < 200; ++i)
      file += rec("r" + std::to_string(i), i % 3 ? "x" : "y", text.substr(i * 1900, 500 + i * 7));
    write_file(dir / "s.jsonl", file);
    data = read_labeled_jsonl(dir / "s.jsonl");
  }
  const LabelMap labels = LabelMap::from_records(data);
  std::string corpus;
  for (int i = 0; i < 40; ++i) corpus += data.records[i].text + "\n";
  write_file(dir / "corpus.txt", corpus);
  SentencePieceTrainOptions opt;
  opt.vocab_size = 600;
  opt.threads = 2;
  train_sentencepiece({dir / "corpus.txt"}, opt, dir / "m.model");
  auto spm = load_sentencepiece(dir / "m.model");
  auto bytes = make_byte_tokenizer();
  for (const Tokenizer* tok : {spm.get(), bytes.get()}) {
    for (Truncation t : {Truncation::Head, Truncation::HeadTail}) {
      const DocumentSet one = encode_documents(data, labels, *tok, 777, t, 1);
      const DocumentSet two = encode_documents(data, labels, *tok, 777, t, 2);
      expect_same_set(one, two);
      for (int64_t i = 0; i < one.size(); i += 17) {
        const std::vector<int32_t> full = tok->encode(data.records[i].text);
        EXPECT_EQ(one.full_length[i], static_cast<int64_t>(full.size()));
        EXPECT_EQ(std::vector<int32_t>(one.doc(i), one.doc(i) + one.length[i]), truncate_ids(full, 777, t));
      }
    }
  }
}

// ---- reading: formats and errors ------------------------------------------------------------

TEST(Labeled, CompressedFilesReadLikeThePlainOne) {
  TempDir dir;
  const std::string plain = dir / "d.jsonl";
  write_file(plain, rec("a", "x", "first text", "train") + "\n  \n" + rec("b", "y", "second", "val") +
                        rec("c", "x", "third \xc3\xa9", "test"));
  const LabeledDataset ref = read_labeled_jsonl(plain);
  ASSERT_EQ(ref.records.size(), 3u);
  EXPECT_EQ(ref.records[1].line, 4);  // blank lines count
  EXPECT_EQ(ref.records[1].split, Split::Validation);
  EXPECT_EQ(ref.records[2].text, "third \xc3\xa9");
  LabeledReadOptions two;
  two.max_records = 2;
  EXPECT_EQ(read_labeled_jsonl(plain, two).records.size(), 2u);
  int tested = 0;
  for (const std::string& tool : {std::string("gzip"), std::string("xz")}) {
    if (!have_tool(tool)) continue;
    const std::string z = plain + (tool == "xz" ? ".xz" : ".gz");
    ASSERT_EQ(std::system((tool + " -c '" + plain + "' > '" + z + "'").c_str()), 0);
    const LabeledDataset got = read_labeled_jsonl(z);
    ASSERT_EQ(got.records.size(), ref.records.size()) << tool;
    for (size_t i = 0; i < got.records.size(); ++i) {
      EXPECT_EQ(got.records[i].id, ref.records[i].id);
      EXPECT_EQ(got.records[i].text, ref.records[i].text);
      EXPECT_EQ(got.records[i].label, ref.records[i].label);
      EXPECT_EQ(got.records[i].split, ref.records[i].split);
      EXPECT_EQ(got.records[i].line, ref.records[i].line);
    }
    ++tested;
  }
  if (tested == 0) GTEST_SKIP() << "neither gzip nor xz is installed";
}

TEST(Labeled, SplitNamesAndFieldOptions) {
  Split s;
  for (const char* v : {"validation", "valid", "val", "dev"}) {
    ASSERT_TRUE(parse_split(v, &s)) << v;
    EXPECT_EQ(s, Split::Validation);
  }
  EXPECT_FALSE(parse_split("Train", &s));
  EXPECT_FALSE(parse_split("training", &s));
  TempDir dir;
  write_file(dir / "f.jsonl", "{\"body\": \"hello\", \"y\": 3, \"key\": 17}\n{\"body\": \"x\", \"y\": 0}\n");
  LabeledReadOptions opt;
  opt.text_field = "body", opt.label_field = "y", opt.id_field = "key";
  const LabeledDataset d = read_labeled_jsonl(dir / "f.jsonl", opt);
  ASSERT_EQ(d.records.size(), 2u);
  EXPECT_EQ(d.records[0].id, "17");
  EXPECT_EQ(d.records[0].label_int, 3);
  EXPECT_TRUE(d.records[0].label_is_int());
  EXPECT_EQ(d.records[1].id, "");
  EXPECT_FALSE(d.has_split);
  opt.label_field = "body";
  expect_error_contains([&] { read_labeled_jsonl(dir / "f.jsonl", opt); }, "\"body\" is used twice");
}

TEST(Labeled, ReadingErrorsNameFileLineAndField) {
  TempDir dir;
  const std::string good = rec("a", "x", "fine", "") + "\n";  // line 1, then a blank line 2
  int n = 0;
  // Writes good + `bad` (line 3) to a fresh file; the error must name file:3 and contain `needle`.
  auto expect_bad = [&](const std::string& bad, const std::string& needle) {
    const std::string path = dir / ("e" + std::to_string(n++) + ".jsonl");
    write_file(path, good + bad + "\n" + good);
    const std::string msg = expect_error_contains([&] { read_labeled_jsonl(path); }, needle);
    EXPECT_NE(msg.find(path + ":3"), std::string::npos) << msg;
  };
  expect_bad("[1, 2]", "expected a JSON object, got array");
  expect_bad("{\"text\": \"a\", \"label\": \"x\"", "invalid JSON");
  expect_bad("{\"label\": \"x\"}", "no \"text\" field");
  expect_bad("{\"text\": 5, \"label\": \"x\"}", "field \"text\" is a number, expected a string");
  expect_bad("{\"text\": \"\", \"label\": \"x\"}", "field \"text\" is empty");
  expect_bad("{\"text\": \"a\"}", "no \"label\" field");
  expect_bad("{\"text\": \"a\", \"label\": \"\"}", "field \"label\" is an empty string");
  expect_bad("{\"text\": \"a\", \"label\": -1}", "field \"label\" is -1");
  expect_bad("{\"text\": \"a\", \"label\": 1.5}", "field \"label\" is 1.5");
  expect_bad("{\"text\": \"a\", \"label\": true}", "field \"label\" is true");
  expect_bad("{\"text\": \"a\", \"label\": null}", "field \"label\" is null");
  expect_bad("{\"text\": \"a\", \"label\": [\"x\"]}", "field \"label\"");
  expect_bad("{\"text\": \"a\", \"label\": 99999999}", "above the largest class number");
  expect_bad("{\"text\": \"a\", \"label\": \"x\", \"id\": {}}", "field \"id\"");
  expect_bad("{\"text\": \"a\", \"label\": \"x\", \"id\": 2, \"id\": 3}", "duplicate key 'id'");
  expect_bad("{\"text\": \"a\", \"label\": \"x\", \"text\": \"b\"}", "duplicate key 'text'");
  expect_bad("{\"text\": \"caf\xc3\", \"label\": \"x\"}", "invalid UTF-8");

  // Splits: unknown values, and files that give a split for some records only.
  const std::string s1 = dir / "s1.jsonl", s2 = dir / "s2.jsonl", s3 = dir / "s3.jsonl";
  write_file(s1, rec("a", "x", "t", "train") + rec("b", "x", "t", "training"));
  std::string msg = expect_error_contains([&] { read_labeled_jsonl(s1); }, "field \"split\" is \"training\"");
  EXPECT_NE(msg.find(s1 + ":2"), std::string::npos) << msg;
  write_file(s2, rec("a", "x", "t", "train") + rec("b", "x", "t", "test") + rec("c", "x", "t"));
  msg = expect_error_contains([&] { read_labeled_jsonl(s2); }, "no \"split\" field, but line 1 has one");
  EXPECT_NE(msg.find(s2 + ":3"), std::string::npos) << msg;
  write_file(s3, rec("a", "x", "t") + rec("b", "x", "t", "test"));
  msg =
      expect_error_contains([&] { read_labeled_jsonl(s3); }, "field \"split\" is given, but line 1 has none");
  EXPECT_NE(msg.find(s3 + ":2"), std::string::npos) << msg;
  write_file(s3, rec("a", "x", "t", "train") + "{\"text\": \"t\", \"label\": \"x\", \"split\": 1}\n");
  expect_error_contains([&] { read_labeled_jsonl(s3); }, s3 + ":2: field \"split\" is 1");

  // Invalid UTF-8: skipped and counted on request.
  const std::string u = dir / "u.jsonl";
  write_file(u, rec("a", "x", "ok") + "{\"text\": \"\xff\", \"label\": \"x\"}\n" + rec("c", "x", "ok"));
  expect_error_contains([&] { read_labeled_jsonl(u); }, u + ":2: invalid UTF-8 at byte 10");
  LabeledReadOptions skip;
  skip.invalid_utf8 = InvalidUtf8::Skip;
  const LabeledDataset d = read_labeled_jsonl(u, skip);
  EXPECT_EQ(d.records.size(), 2u);
  EXPECT_EQ(d.skipped_invalid, 1);
  EXPECT_EQ(d.records[1].line, 3);

  expect_error_contains([&] { read_labeled_jsonl(dir / "missing.jsonl"); }, "missing.jsonl");
  // A damaged compressed file is named too.
  write_file(dir / "bad.jsonl.xz", "not xz at all");
  expect_error_contains([&] { read_labeled_jsonl(dir / "bad.jsonl.xz"); }, "bad.jsonl.xz");
}

// ---- labels ---------------------------------------------------------------------------------

TEST(Labeled, LabelMapsFromDataAndFromNames) {
  TempDir dir;
  write_file(dir / "s.jsonl",
             rec("a", "zeta", "t") + rec("b", "Alpha", "t") + rec("c", "beta", "t") + rec("d", "zeta", "t"));
  const LabeledDataset s = read_labeled_jsonl(dir / "s.jsonl");
  const LabelMap m = LabelMap::from_records(s);
  EXPECT_EQ(m.names(), (std::vector<std::string>{"Alpha", "beta", "zeta"}));  // byte order
  EXPECT_EQ(m.id_of(s.records[0], s.path), 2);
  EXPECT_EQ(m.find("beta"), 1);
  EXPECT_EQ(m.find("gamma"), -1);
  expect_error_contains([&] { LabelMap::from_records(s, 4); }, "3 class names found, but num_classes is 4");

  write_file(dir / "i.jsonl", "{\"text\": \"t\", \"label\": 2}\n{\"text\": \"t\", \"label\": 0}\n");
  const LabeledDataset i = read_labeled_jsonl(dir / "i.jsonl");
  const LabelMap mi = LabelMap::from_records(i);
  EXPECT_EQ(mi.names(), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(mi.id_of(i.records[0], i.path), 2);
  EXPECT_EQ(LabelMap::from_records(i, 5).num_classes(), 5);
  expect_error_contains([&] { LabelMap::from_records(i, 2); },
                        i.path + ":1: label 2 is outside num_classes 2");

  write_file(dir / "m.jsonl", "{\"text\": \"t\", \"label\": \"a\"}\n\n{\"text\": \"t\", \"label\": 1}\n");
  const LabeledDataset mixed = read_labeled_jsonl(dir / "m.jsonl");
  expect_error_contains([&] { LabelMap::from_records(mixed); },
                        mixed.path + ":3: label 1 is an integer, but the label on line 1 is a string");

  // A trained model's classes, in its order: unknown labels name the label and the line.
  const LabelMap given = LabelMap::from_names({"zeta", "beta"});
  EXPECT_EQ(given.id_of(s.records[0], s.path), 0);
  EXPECT_EQ(given.id_of(s.records[2], s.path), 1);
  expect_error_contains([&] { given.id_of(s.records[1], s.path); },
                        s.path + ":2: label \"Alpha\" is not one of the 2 classes (zeta, beta)");
  auto tok = make_byte_tokenizer();
  expect_error_contains([&] { encode_documents(s, given, *tok, 10, Truncation::Head); }, "\"Alpha\"");
  expect_error_contains([&] { LabelMap::from_names({"a", "b", "a"}); }, "\"a\" appears twice");
  expect_error_contains([&] { LabelMap::from_names({}); }, "empty");
  expect_error_contains([&] { LabelMap::from_names({"a", ""}); }, "class 1 has an empty name");
  EXPECT_EQ(LabelMap::from_names({"0", "1", "2"}).id_of(i.records[0], i.path), 2);
}

// ---- splits ---------------------------------------------------------------------------------

TEST(Labeled, StratifiedSplitCountsSeedsAndOrder) {
  TempDir dir;
  const std::vector<int> sizes = {100, 37, 10, 7, 5, 2, 1};
  write_file(dir / "d.jsonl", synthetic_classes(sizes));
  const LabeledDataset d = read_labeled_jsonl(dir / "d.jsonl");
  const LabelMap labels = LabelMap::from_records(d);
  const SplitOptions opt{0.1, 0.2, 7};
  LabeledDataset a = d;
  assign_splits(a, labels, opt);
  EXPECT_TRUE(a.has_split);
  std::map<std::string, std::array<int, 3>> count;  // class -> train, validation, test
  for (const LabeledRecord& r : a.records) {
    ASSERT_NE(r.split, Split::None);  // every record in exactly one split
    ++count[r.label][static_cast<int>(r.split)];
  }
  // round(n * 0.1) validation, round(n * 0.2) test (half away from zero), by hand:
  const std::map<std::string, std::array<int, 3>> want = {
      {"c0", {70, 10, 20}}, {"c1", {26, 4, 7}}, {"c2", {7, 1, 2}}, {"c3", {5, 1, 1}},
      {"c4", {3, 1, 1}},    {"c5", {2, 0, 0}},  {"c6", {1, 0, 0}}};
  EXPECT_EQ(count, want);

  LabeledDataset b = d, other = d;
  assign_splits(b, labels, opt);
  assign_splits(other, labels, {0.1, 0.2, 8});
  int differ = 0;
  for (size_t i = 0; i < d.records.size(); ++i) {
    EXPECT_EQ(a.records[i].split, b.records[i].split);
    differ += a.records[i].split != other.records[i].split;
  }
  EXPECT_GT(differ, 10);

  // The order of the file does not matter: the same ids land in the same splits.
  LabeledDataset rev = d;
  std::reverse(rev.records.begin(), rev.records.end());
  std::swap(rev.records[3], rev.records[40]);
  assign_splits(rev, labels, opt);
  std::map<std::string, Split> by_id;
  for (const LabeledRecord& r : a.records) by_id[r.id] = r.split;
  for (const LabeledRecord& r : rev.records) EXPECT_EQ(r.split, by_id.at(r.id)) << r.id;

  LabeledDataset bad = d;
  expect_error_contains([&] { assign_splits(bad, labels, {0.5, 0.5, 1}); }, "expected less than 1");
  expect_error_contains([&] { assign_splits(bad, labels, {-0.1, 0.1, 1}); }, "validation fraction is -0.1");
  // Half a record rounds up.
  write_file(dir / "one.jsonl", rec("a", "x", "t"));
  LabeledDataset one = read_labeled_jsonl(dir / "one.jsonl");
  assign_splits(one, LabelMap::from_records(one), {0.5, 0.49, 1});
  EXPECT_EQ(one.records[0].split, Split::Validation);
}

// ---- tokens ---------------------------------------------------------------------------------

TEST(Labeled, TruncationRules) {
  std::vector<int32_t> ids(100);
  for (int i = 0; i < 100; ++i) ids[i] = i;
  auto range = [](int lo, int hi) {
    std::vector<int32_t> v;
    for (int i = lo; i < hi; ++i) v.push_back(i);
    return v;
  };
  EXPECT_EQ(truncate_ids(ids, 10, Truncation::Head), range(0, 10));
  std::vector<int32_t> ht = range(0, 2);  // floor(10 / 4) = 2 head, 8 tail
  for (int32_t v : range(92, 100)) ht.push_back(v);
  EXPECT_EQ(truncate_ids(ids, 10, Truncation::HeadTail), ht);
  EXPECT_EQ(truncate_ids(ids, 3, Truncation::HeadTail), range(97, 100));  // no head below 4
  EXPECT_EQ(truncate_ids(ids, 100, Truncation::HeadTail), ids);
  EXPECT_EQ(truncate_ids(ids, 500, Truncation::Head), ids);
  EXPECT_EQ(parse_truncation("head_tail"), Truncation::HeadTail);
  expect_error_contains([] { parse_truncation("tail", "data.truncation"); },
                        "data.truncation is \"tail\", expected \"head\" or \"head_tail\"");
}

TEST(Labeled, EncodingErrorsNameTheRecord) {
  TempDir dir;
  write_file(dir / "d.jsonl",
             rec("a", "x", "fine") + "\n" + rec("doc-7", "x", "EMPTY") + rec("t", "y", "THROW"));
  const LabeledDataset d = read_labeled_jsonl(dir / "d.jsonl");
  const LabelMap labels = LabelMap::from_records(d);
  const OddTokenizer odd;
  for (int threads : {1, 2})
    expect_error_contains(
        [&] { encode_documents(d, labels, odd, 16, Truncation::Head, threads); },
        d.path + ":3: the text of record \"doc-7\" encodes to no tokens with the odd tokenizer");
  LabeledDataset later = d;
  std::swap(later.records[1], later.records[2]);  // the tokenizer's own error comes first now
  expect_error_contains([&] { encode_documents(later, labels, odd, 16, Truncation::Head, 2); },
                        "cannot encode THROW");
  expect_error_contains([&] { encode_documents(d, labels, odd, 0, Truncation::Head); }, "max_tokens is 0");
}

// ---- batching -------------------------------------------------------------------------------

namespace {
// n documents of byte lengths spread uniformly over 1..4000 (none truncated).
DocumentSet spread_lengths(int n) {
  std::string file;
  for (int i = 0; i < n; ++i)
    file += rec("d" + std::to_string(i), i % 2 ? "a" : "b", std::string(1 + rng_bits(11, 0, i) % 4000, 'x'),
                "train");
  TempDir dir;
  write_file(dir / "d.jsonl", file);
  const LabeledDataset d = read_labeled_jsonl(dir / "d.jsonl");
  return encode_documents(d, LabelMap::from_records(d), *make_byte_tokenizer(), 4096, Truncation::Head);
}

std::vector<std::vector<int64_t>> take(DocBatcher& b, int64_t k) {
  std::vector<std::vector<int64_t>> out;
  for (int64_t i = 0; i < k; ++i) out.push_back(b.next());
  return out;
}

std::vector<std::vector<int64_t>> sorted_batches(std::vector<std::vector<int64_t>> v) {
  for (auto& b : v) std::sort(b.begin(), b.end());
  std::sort(v.begin(), v.end());
  return v;
}
}  // namespace

TEST(Labeled, BatcherCoversEveryDocumentOncePerEpochWithLittlePadding) {
  const DocumentSet set = spread_lengths(1000);
  std::vector<int64_t> docs = set.indices(Split::Train);
  ASSERT_EQ(docs.size(), 1000u);
  docs.erase(docs.begin() + 500, docs.begin() + 503);  // 997 documents: one smaller batch
  DocBatcher bucketed(set, docs, {8, 32, 5, false});
  DocBatcher random(set, docs, {8, 1, 5, false});
  ASSERT_EQ(bucketed.batches_per_epoch(), 125);
  int64_t padded_b = 0, padded_r = 0, real = 0;
  for (int epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> seen;
    int small = 0;
    for (const auto& batch : take(bucketed, 125)) {
      seen.insert(seen.end(), batch.begin(), batch.end());
      if (batch.size() != 8) {
        ++small;
        EXPECT_EQ(batch.size(), 5u);
      }
      padded_b += padded_tokens(set, batch);
      real += batch_tokens(set, batch);
    }
    EXPECT_EQ(small, 1);
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, docs) << "epoch " << epoch;
    seen.clear();
    for (const auto& batch : take(random, 125)) {
      seen.insert(seen.end(), batch.begin(), batch.end());
      padded_r += padded_tokens(set, batch);
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, docs);
  }
  EXPECT_EQ(bucketed.position(), (BatchPosition{3, 0}));
  // Padding overhead (slots beyond the real tokens), bucketed vs random batches.
  const int64_t over_b = padded_b - real, over_r = padded_r - real;
  std::printf("real tokens %lld, padding: bucketed %lld (%.1f%%), random %lld (%.1f%%)\n", (long long)real,
              (long long)over_b, 100.0 * over_b / real, (long long)over_r, 100.0 * over_r / real);
  EXPECT_GE(over_b, 0);
  EXPECT_LT(2 * over_b, over_r);

  // Epochs and seeds give different batches (as sets of documents, not just in another order).
  const auto e0 = sorted_batches(bucketed.epoch_batches(0));
  EXPECT_NE(e0, sorted_batches(bucketed.epoch_batches(1)));
  EXPECT_NE(e0, sorted_batches(DocBatcher(set, docs, {8, 32, 6, false}).epoch_batches(0)));
  EXPECT_EQ(bucketed.epoch_batches(2), DocBatcher(set, docs, {8, 32, 5, false}).epoch_batches(2));

  // drop_last: only full batches, the few documents left over differ by epoch.
  DocBatcher drop(set, docs, {8, 32, 5, true});
  EXPECT_EQ(drop.batches_per_epoch(), 124);
  for (const auto& batch : drop.epoch_batches(1)) EXPECT_EQ(batch.size(), 8u);
  // A bucket factor beyond the data: one window of everything (no overflow).
  DocBatcher whole(set, docs, {8, int64_t(1) << 60, 5, false});
  EXPECT_EQ(whole.epoch_batches(0).size(), 125u);
  expect_error_contains([&] { DocBatcher(set, {1, 2, 3}, {8, 32, 5, true}); }, "no batch at all");
  expect_error_contains([&] { DocBatcher(set, docs, {0, 32, 5, false}); }, "batch size is 0");
  expect_error_contains([&] { DocBatcher(set, {}, {8, 32, 5, false}); }, "no documents");
}

TEST(Labeled, BatcherResumesFromItsPosition) {
  const DocumentSet set = spread_lengths(300);
  const std::vector<int64_t> docs = set.indices(Split::Train);
  const BatcherOptions opt{7, 4, 123, false};  // 43 batches per epoch, the last of 6
  for (int64_t skip : {0, 1, 20, 42, 43, 44, 100}) {
    DocBatcher a(set, docs, opt);
    take(a, skip);
    const BatchPosition p = a.position();
    EXPECT_EQ(p.epoch * 43 + p.batch, skip);
    const auto want = take(a, 60);
    DocBatcher b(set, docs, opt);
    b.seek(p);
    EXPECT_EQ(take(b, 60), want) << "resumed after " << skip;
  }
  DocBatcher c(set, docs, opt);
  c.seek({0, 43});  // the end of epoch 0 is the start of epoch 1
  EXPECT_EQ(c.position(), (BatchPosition{1, 0}));
  EXPECT_EQ(take(c, 43), c.epoch_batches(1));
  expect_error_contains([&] { c.seek({0, 44}); }, "batcher position epoch 0 batch 44 is out of range");
  expect_error_contains([&] { c.seek({-1, 0}); }, "out of range");
}

TEST(Labeled, EvalOrderIsEveryDocumentOnceSortedByLength) {
  const DocumentSet set = spread_lengths(300);
  std::vector<int64_t> docs;
  for (int64_t i = 0; i < set.size(); i += 2) docs.push_back(i);
  const auto batches = eval_batches(set, docs, 16);
  ASSERT_EQ(batches.size(), 10u);  // 150 = 9 x 16 + 6
  EXPECT_EQ(batches.back().size(), 6u);
  std::vector<int64_t> flat;
  for (const auto& b : batches) flat.insert(flat.end(), b.begin(), b.end());
  for (size_t i = 1; i < flat.size(); ++i) EXPECT_LE(set.length[flat[i - 1]], set.length[flat[i]]);
  std::vector<int64_t> sorted = flat;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, docs);
  std::vector<int64_t> shuffled = docs;
  std::reverse(shuffled.begin(), shuffled.end());
  EXPECT_EQ(eval_batches(set, shuffled, 16), batches);  // deterministic, whatever the input order
  // padded_tokens: batch size x the longest document.
  const std::vector<int64_t> b = {flat[0], flat[70], flat[149]};
  EXPECT_EQ(padded_tokens(set, b), 3 * set.length[flat[149]]);
  EXPECT_EQ(batch_tokens(set, b), set.length[flat[0]] + set.length[flat[70]] + set.length[flat[149]]);
}

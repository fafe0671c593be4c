// Token shards: llm.c header format, atomic writes, header/size/token validation with clear
// errors, the concatenated multi-shard view, text datasets and open_dataset's choices.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "testutil.h"
#include "wersa/common/error.h"
#include "wersa/data/shard.h"
#include "wersa/data/tokenizer.h"

using namespace wersa;
using namespace wersa::test;
using namespace wersa::data;
namespace fs = std::filesystem;

namespace {

std::vector<uint32_t> random_tokens(size_t n, uint32_t vocab, uint64_t seed) {
  std::vector<uint32_t> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = static_cast<uint32_t>(rng_bits(seed, 3, i) % vocab);
  return t;
}

int32_t le32(const std::string& bytes, size_t off) {
  return static_cast<int32_t>(uint32_t(uint8_t(bytes[off])) | uint32_t(uint8_t(bytes[off + 1])) << 8 |
                              uint32_t(uint8_t(bytes[off + 2])) << 16 |
                              uint32_t(uint8_t(bytes[off + 3])) << 24);
}

// Runs f and returns the wersa::Error message ("" when nothing was thrown).
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

}  // namespace

TEST(Shard, WriteThenReadHeaderUint16AndUint32) {
  TempDir dir;
  const auto t16 = random_tokens(1000, 50257, 1);
  write_shard(dir / "a.bin", t16, 2);
  const std::string a = read_file(dir / "a.bin");
  ASSERT_EQ(a.size(), 1024u + 2 * 1000);
  EXPECT_EQ(le32(a, 0), 20240520);
  EXPECT_EQ(le32(a, 4), 1);
  EXPECT_EQ(le32(a, 8), 1000);
  for (size_t i = 12; i < 1024; ++i) ASSERT_EQ(a[i], 0) << "header byte " << i;
  EXPECT_EQ(uint8_t(a[1024]) | uint8_t(a[1025]) << 8, t16[0]);
  ShardInfo h = read_shard_header(dir / "a.bin");
  EXPECT_EQ(h.tokens, 1000);
  EXPECT_EQ(h.token_bytes, 2);
  EXPECT_EQ(h.path, dir / "a.bin");

  const auto t32 = random_tokens(777, 128256, 2);
  write_shard(dir / "b.bin", t32, 4);
  const std::string b = read_file(dir / "b.bin");
  ASSERT_EQ(b.size(), 1024u + 4 * 777);
  EXPECT_EQ(le32(b, 0), 20240801);
  EXPECT_EQ(le32(b, 4), 7);
  EXPECT_EQ(le32(b, 8), 777);
  EXPECT_EQ(static_cast<uint32_t>(le32(b, 1024 + 4 * 5)), t32[5]);
  h = read_shard_header(dir / "b.bin");
  EXPECT_EQ(h.tokens, 777);
  EXPECT_EQ(h.token_bytes, 4);
  EXPECT_EQ(shard_token_bytes(65536), 2);
  EXPECT_EQ(shard_token_bytes(65537), 4);
  EXPECT_FALSE(fs::exists(dir / "a.bin.tmp"));
}

TEST(Shard, WriteRejectsIdsThatDoNotFitAndLeavesNothingBehind) {
  TempDir dir;
  std::vector<uint32_t> t = {1, 2, 65536, 3};
  const std::string msg = error_of([&] { write_shard(dir / "x.bin", t, 2); });
  EXPECT_TRUE(contains(msg, "65536") && contains(msg, "index 2")) << msg;
  EXPECT_FALSE(fs::exists(dir / "x.bin"));
  EXPECT_FALSE(fs::exists(dir / "x.bin.tmp"));
  EXPECT_THROW(write_shard(dir / "x.bin", t, 3), Error);
  EXPECT_NO_THROW(write_shard(dir / "x.bin", t, 4));
  // A streaming writer dropped before finish() leaves no file.
  {
    ShardWriter w(dir / "y.bin", 2);
    const int32_t ids[3] = {1, 2, 3};
    w.append(ids, 3);
  }
  EXPECT_FALSE(fs::exists(dir / "y.bin"));
  EXPECT_FALSE(fs::exists(dir / "y.bin.tmp"));
}

TEST(Shard, DamagedHeadersAndSizesGiveClearErrors) {
  TempDir dir;
  write_shard(dir / "good.bin", random_tokens(500, 1000, 3), 2);
  const std::string good = read_file(dir / "good.bin");

  write_file(dir / "trunc.bin", good.substr(0, good.size() - 7));
  std::string msg = error_of([&] { read_shard_header(dir / "trunc.bin"); });
  EXPECT_TRUE(contains(msg, dir / "trunc.bin") && contains(msg, std::to_string(good.size())) &&
              contains(msg, std::to_string(good.size() - 7)) && contains(msg, "truncated"))
      << msg;

  write_file(dir / "long.bin", good + "xx");
  msg = error_of([&] { read_shard_header(dir / "long.bin"); });
  EXPECT_TRUE(contains(msg, "trailing")) << msg;

  std::string bad_magic = good;
  bad_magic[0] = 'X';
  write_file(dir / "magic.bin", bad_magic);
  msg = error_of([&] { read_shard_header(dir / "magic.bin"); });
  EXPECT_TRUE(contains(msg, dir / "magic.bin") && contains(msg, "magic") && contains(msg, "20240520")) << msg;

  std::string bad_version = good;
  bad_version[4] = 9;
  write_file(dir / "version.bin", bad_version);
  msg = error_of([&] { read_shard_header(dir / "version.bin"); });
  EXPECT_TRUE(contains(msg, "version 9")) << msg;

  write_file(dir / "tiny.bin", good.substr(0, 100));
  msg = error_of([&] { read_shard_header(dir / "tiny.bin"); });
  EXPECT_TRUE(contains(msg, "too small")) << msg;

  msg = error_of([&] { read_shard_header(dir / "missing.bin"); });
  EXPECT_TRUE(contains(msg, "does not exist")) << msg;
  // The dataset refuses the same files.
  EXPECT_THROW(ShardDataset(dir / "trunc.bin", 1000), Error);
  EXPECT_THROW(ShardDataset(dir / "magic.bin", 1000), Error);
}

TEST(Shard, DatasetConcatenatesShardsInSortedOrder) {
  TempDir dir;
  // Written out of order, with an empty shard in the middle and mixed token widths.
  const auto a = random_tokens(1000, 70000, 4), b = random_tokens(333, 70000, 5),
             c = random_tokens(2049, 60000, 6);
  write_shard(dir / "s_002.bin", c, 2);
  write_shard(dir / "s_000.bin", a, 4);
  write_shard(dir / "s_001.bin", {}, 2);
  write_shard(dir / "s_003.bin", b, 4);
  std::vector<uint32_t> all = a;
  all.insert(all.end(), c.begin(), c.end());
  all.insert(all.end(), b.begin(), b.end());

  ShardDataset ds(dir / "s_*.bin", 70000);
  ASSERT_EQ(ds.size(), static_cast<int64_t>(all.size()));
  ASSERT_EQ(ds.shards().size(), 4u);
  EXPECT_EQ(ds.shards()[2].path, dir / "s_002.bin");
  std::vector<int32_t> got(all.size());
  ds.read(0, ds.size(), got.data());
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(static_cast<uint32_t>(got[i]), all[i]) << i;
  // Windows that straddle shard boundaries (including the empty one).
  for (int64_t pos : {int64_t(0), int64_t(990), int64_t(1000), int64_t(3040), ds.size() - 17}) {
    std::vector<int32_t> w(17);
    ds.read(pos, 17, w.data());
    for (int64_t i = 0; i < 17; ++i) ASSERT_EQ(static_cast<uint32_t>(w[i]), all[pos + i]) << pos << "+" << i;
  }
  EXPECT_TRUE(contains(ds.describe(), "4 shards"));
  // A directory means DIR/*.bin.
  ShardDataset by_dir(dir.path, 70000);
  EXPECT_EQ(by_dir.size(), ds.size());
  const std::string msg = error_of([&] { ShardDataset(dir / "nothing_*.bin", 10); });
  EXPECT_TRUE(contains(msg, "no files match") && contains(msg, "nothing_*.bin")) << msg;
}

TEST(Shard, TokenNotBelowVocabIsReportedWithFileIndexAndId) {
  TempDir dir;
  auto t = random_tokens(3 << 20, 500, 7);  // three validation chunks
  t[(2 << 20) + 12345] = 777;
  t[(2 << 20) + 22345] = 999;  // later: not the one reported
  write_shard(dir / "v_000.bin", random_tokens(100, 500, 8), 2);
  write_shard(dir / "v_001.bin", t, 2);
  const std::string msg = error_of([&] { ShardDataset(dir / "v_*.bin", 500); });
  EXPECT_TRUE(contains(msg, dir / "v_001.bin") &&
              contains(msg, "token " + std::to_string((2 << 20) + 12345)) && contains(msg, "id 777") &&
              contains(msg, "500"))
      << msg;
  EXPECT_NO_THROW(ShardDataset(dir / "v_*.bin", 1000));
}

TEST(Shard, ExpandGlobSortsAndAcceptsPlainPaths) {
  TempDir dir;
  for (const char* n : {"b.bin", "a.bin", "c.txt", "a10.bin"}) write_file(dir / n, "x");
  const auto g = expand_glob(dir / "*.bin");
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0], dir / "a.bin");
  EXPECT_EQ(g[1], dir / "a10.bin");
  EXPECT_EQ(g[2], dir / "b.bin");
  EXPECT_EQ(expand_glob(dir / "c.txt"), std::vector<std::string>{dir / "c.txt"});
  EXPECT_THROW(expand_glob(dir / "d.txt"), Error);
  EXPECT_THROW(expand_glob(dir / "*.json"), Error);
}

TEST(Shard, TextDatasetEncodesAFileAndRejectsInvalidUtf8) {
  TempDir dir;
  const std::string text =
      test::real_text(2500000) + "\nna\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\n";  // > 2 pieces
  write_file(dir / "t.txt", text);
  auto bytes = make_byte_tokenizer();
  TextDataset ds(dir / "t.txt", *bytes);
  ASSERT_EQ(ds.size(), static_cast<int64_t>(text.size()));
  std::vector<int32_t> got(text.size());
  ds.read(0, ds.size(), got.data());
  for (size_t i = 0; i < text.size(); i += 997) ASSERT_EQ(got[i], static_cast<unsigned char>(text[i])) << i;
  EXPECT_EQ(bytes->decode(got), text);

  std::string bad = "line one\nline two \xff\xfe bad\n";
  write_file(dir / "bad.txt", bad);
  const std::string msg = error_of([&] { TextDataset(dir / "bad.txt", *bytes); });
  EXPECT_TRUE(contains(msg, dir / "bad.txt") && contains(msg, "byte offset 18") && contains(msg, "line 2"))
      << msg;
  write_file(dir / "empty.txt", "");
  EXPECT_THROW(TextDataset(dir / "empty.txt", *bytes), Error);
}

TEST(Shard, OpenDatasetPicksTextOrShardsAndRefusesAmbiguity) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  write_file(dir / "data.txt", test::real_text(5000));
  write_file(dir / "notes", test::real_text(3000));  // a regular file that is not a shard -> text
  fs::create_directories(dir / "shards");
  write_shard(dir / "shards/train_000000.bin", random_tokens(4000, 259, 9), 2);
  write_shard(dir / "shards/val_000000.bin", random_tokens(1000, 259, 10), 2);

  auto text = open_dataset(dir / "data.txt", *tok, 259);
  EXPECT_EQ(text->size(), 5000);
  EXPECT_TRUE(contains(text->describe(), "text"));
  EXPECT_EQ(open_dataset(dir / "notes", *tok, 259)->size(), 3000);
  EXPECT_EQ(open_dataset(dir / "shards/train_*.bin", *tok, 259)->size(), 4000);
  EXPECT_EQ(open_dataset(dir / "shards/val_000000.bin", *tok, 259)->size(), 1000);
  const std::string msg = error_of([&] { open_dataset(dir / "shards", *tok, 259); });
  EXPECT_TRUE(contains(msg, "train_*.bin") && contains(msg, "val_*.bin")) << msg;
  fs::remove(dir / "shards/val_000000.bin");
  EXPECT_EQ(open_dataset(dir / "shards", *tok, 259)->size(), 4000);
  // Tokens beyond the model's vocabulary, a tokenizer too big for the model, a shard
  // directory encoded with another tokenizer.
  EXPECT_THROW(open_dataset(dir / "shards/train_*.bin", *tok, 100), Error);
  EXPECT_THROW(open_dataset(dir / "data.txt", *tok, 100), Error);
  write_file(dir / "shards/dataset.json",
             R"({"tokenizer": {"kind": "sentencepiece", "fingerprint": "abc123"}})");
  const std::string fp = error_of([&] { open_dataset(dir / "shards/train_*.bin", *tok, 259); });
  EXPECT_TRUE(contains(fp, "abc123") && contains(fp, "byte-v1")) << fp;
  EXPECT_THROW(open_dataset(dir / "missing.txt", *tok, 259), Error);
  EXPECT_THROW(open_dataset("", *tok, 259), Error);
}

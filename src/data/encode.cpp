#include "wersa/data/encode.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "wersa/common/error.h"
#include "wersa/common/log.h"
#include "wersa/common/sha256.h"
#include "wersa/data/sentencepiece_train.h"

namespace wersa::data {
namespace fs = std::filesystem;
namespace {

constexpr size_t kBatchText = size_t(1) << 20;

struct Batch {
  uint64_t seq = 0;
  std::vector<Document> docs;  // text is released once encoded
  std::vector<std::vector<int32_t>> ids;
  int64_t input_bytes = 0;  // corpus bytes read (on disk) when the batch was complete
  int64_t text_bytes = 0;
};

// Tokens of one split, cut into shards of shard_tokens.
class SplitWriter {
 public:
  SplitWriter(std::string dir, std::string prefix, int token_bytes, int64_t shard_tokens)
      : dir_(std::move(dir)),
        prefix_(std::move(prefix)),
        token_bytes_(token_bytes),
        shard_tokens_(shard_tokens) {}
  void append(const int32_t* p, int64_t n) {
    while (n > 0) {
      if (!cur_) {
        char name[64];
        std::snprintf(name, sizeof name, "%s_%06zu.bin", prefix_.c_str(), summary.shards.size());
        cur_ = std::make_unique<ShardWriter>((fs::path(dir_) / name).string(), token_bytes_);
      }
      const int64_t k = std::min(n, shard_tokens_ - cur_->tokens());
      cur_->append(p, k);
      p += k, n -= k;
      summary.tokens += k;
      if (cur_->tokens() == shard_tokens_) close();
    }
  }
  void close() {
    if (cur_) summary.shards.push_back(cur_->finish());
    cur_.reset();
  }
  SplitSummary summary;

 private:
  std::string dir_, prefix_;
  int token_bytes_;
  int64_t shard_tokens_;
  std::unique_ptr<ShardWriter> cur_;
};

bool is_output_name(const std::string& name) {
  auto shard = [&](const char* prefix) {
    const size_t n = std::strlen(prefix);
    return name.rfind(prefix, 0) == 0 &&
           (name.size() > 4 && (name.compare(name.size() - 4, 4, ".bin") == 0 ||
                                (name.size() > 8 && name.compare(name.size() - 8, 8, ".bin.tmp") == 0))) &&
           name.size() > n;
  };
  return shard("train_") || shard("val_") || name == "dataset.json";
}

// Makes out_dir ready: created, and free of (or cleared of) earlier outputs.
void prepare_out_dir(const std::string& out_dir, bool overwrite, bool byte_tokenizer) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  WERSA_CHECK(!ec && fs::is_directory(out_dir), "cannot create output directory '", out_dir, "'",
              ec ? ": " + ec.message() : std::string());
  std::vector<fs::path> old;
  for (const auto& e : fs::directory_iterator(out_dir)) {
    const std::string name = e.path().filename().string();
    if (is_output_name(name) || (byte_tokenizer && name == "tokenizer.model")) old.push_back(e.path());
  }
  std::sort(old.begin(), old.end());
  if (old.empty()) return;
  WERSA_CHECK(overwrite, "output directory '", out_dir, "' already holds ", old.size(), " output file",
              old.size() == 1 ? "" : "s", " (", old.front().filename().string(),
              old.size() > 1 ? ", ..." : "", "); pass --overwrite to replace them");
  // dataset.json first: an interrupted run never leaves it beside shards it does not describe.
  fs::remove(fs::path(out_dir) / "dataset.json", ec);
  for (const fs::path& p : old) fs::remove(p, ec);
}

void copy_tokenizer(const std::string& src, const Tokenizer& tok, const std::string& out_dir) {
  std::ifstream f(src, std::ios::binary);
  WERSA_CHECK(f.good(), "cannot read tokenizer model '", src, "'");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  WERSA_CHECK(sha256_hex(bytes) == tok.fingerprint(), "tokenizer model '", src,
              "' changed since it was loaded (its hash no longer matches)");
  const fs::path dst = fs::path(out_dir) / "tokenizer.model";
  std::error_code ec;
  if (fs::exists(dst) && fs::equivalent(src, dst, ec)) return;
  write_file_atomic(dst.string(), bytes);
}

const char* compression_name(Compression c) {
  return c == Compression::Xz ? "xz" : c == Compression::Gzip ? "gzip" : "none";
}

}  // namespace

EncodeSummary encode_corpus(const std::vector<std::string>& inputs, const Tokenizer& tok,
                            const std::string& tokenizer_path, const std::string& out_dir,
                            const EncodeOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  WERSA_CHECK(opt.val_fraction >= 0 && opt.val_fraction < 1, "validation fraction must be in [0, 1), got ",
              opt.val_fraction);
  WERSA_CHECK(opt.shard_tokens > 0 && opt.shard_tokens <= 2147483647,
              "shard tokens must be in [1, 2^31-1], got ", opt.shard_tokens);
  WERSA_CHECK(tok.eos_id() >= 0, "the tokenizer has no EOS id, so documents cannot be separated");
  WERSA_CHECK(tok.kind() == "byte" || !tokenizer_path.empty(),
              "encode_corpus: a SentencePiece tokenizer needs its "
              "model path");
  CorpusReader reader(inputs, opt.corpus);  // validates the inputs before anything is written
  prepare_out_dir(out_dir, opt.overwrite, tok.kind() == "byte");
  if (!tokenizer_path.empty()) copy_tokenizer(tokenizer_path, tok, out_dir);

  const int token_bytes = shard_token_bytes(tok.vocab_size());
  const int threads = opt.threads > 0 ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  const int max_in_flight = 2 * threads + 2;

  std::mutex m;
  std::condition_variable cv_work, cv_done, cv_space;
  std::deque<std::unique_ptr<Batch>> work;
  std::map<uint64_t, std::unique_ptr<Batch>> done;
  int in_flight = 0;
  bool reader_finished = false, abort = false;
  uint64_t batches = 0;
  std::exception_ptr error;
  auto fail = [&](std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lk(m);
      if (!error) error = e;
      abort = true;
    }
    cv_work.notify_all(), cv_done.notify_all(), cv_space.notify_all();
  };

  std::thread read_thread([&] {
    try {
      bool end = false;
      for (uint64_t seq = 0; !end; ++seq) {
        auto b = std::make_unique<Batch>();
        b->seq = seq;
        size_t bytes = 0;
        while (bytes < kBatchText) {
          Document d;
          if (!reader.next(d)) {
            end = true;
            break;
          }
          bytes += d.text.size();
          b->docs.push_back(std::move(d));
        }
        if (b->docs.empty()) break;
        b->input_bytes = reader.input_bytes_read();
        b->text_bytes = static_cast<int64_t>(bytes);
        std::unique_lock<std::mutex> lk(m);
        cv_space.wait(lk, [&] { return in_flight < max_in_flight || abort; });
        if (abort) return;
        ++in_flight;
        work.push_back(std::move(b));
        batches = seq + 1;
        lk.unlock();
        cv_work.notify_one();
      }
    } catch (...) {
      fail(std::current_exception());
    }
    {
      std::lock_guard<std::mutex> lk(m);
      reader_finished = true;
    }
    cv_work.notify_all(), cv_done.notify_all();
  });

  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&] {
      while (true) {
        std::unique_ptr<Batch> b;
        {
          std::unique_lock<std::mutex> lk(m);
          cv_work.wait(lk, [&] { return !work.empty() || reader_finished || abort; });
          if (abort || work.empty()) return;
          b = std::move(work.front());
          work.pop_front();
        }
        try {
          b->ids.resize(b->docs.size());
          for (size_t i = 0; i < b->docs.size(); ++i) {
            b->ids[i] = tok.encode(b->docs[i].text);
            std::string().swap(b->docs[i].text);
          }
        } catch (...) {
          fail(std::current_exception());
          return;
        }
        {
          std::lock_guard<std::mutex> lk(m);
          done.emplace(b->seq, std::move(b));
        }
        cv_done.notify_all();
      }
    });
  }

  auto join_all = [&] {
    read_thread.join();
    for (std::thread& t : workers) t.join();
  };

  SplitWriter train(out_dir, "train", token_bytes, opt.shard_tokens);
  SplitWriter val(out_dir, "val", token_bytes, opt.shard_tokens);
  EncodeSummary sum;
  struct FileCounts {
    int64_t train_docs = 0, val_docs = 0, tokens = 0;
  };
  std::vector<FileCounts> per_file(reader.files().size());
  nlohmann::json val_docs = nlohmann::json::array();
  const int32_t eos = tok.eos_id();
  EncodeProgress prog;
  prog.input_total = reader.total_input_bytes();
  try {
    SplitWriter* cur = &train;
    for (uint64_t next = 0;; ++next) {
      std::unique_ptr<Batch> b;
      {
        std::unique_lock<std::mutex> lk(m);
        cv_done.wait(lk, [&] { return abort || done.count(next) || (reader_finished && next >= batches); });
        if (abort) break;
        if (!done.count(next)) break;  // all batches written
        b = std::move(done[next]);
        done.erase(next);
        --in_flight;
      }
      cv_space.notify_one();
      for (size_t i = 0; i < b->docs.size(); ++i) {
        const Document& d = b->docs[i];
        const std::vector<int32_t>& ids = b->ids[i];
        if (d.first) {
          // Whole documents only: a segmented one (first but not last) stays in train.
          const double n = static_cast<double>(ids.size() + 1);
          const double total = static_cast<double>(train.summary.tokens + val.summary.tokens);
          const bool to_val =
              d.last && opt.val_fraction > 0 &&
              static_cast<double>(val.summary.tokens) + n / 2 < opt.val_fraction * (total + n);
          cur = to_val ? &val : &train;
          ++cur->summary.documents;
          ++(to_val ? per_file[d.file].val_docs : per_file[d.file].train_docs);
          if (to_val) val_docs.push_back({d.file, d.index});
        }
        cur->append(ids.data(), static_cast<int64_t>(ids.size()));
        if (d.last) cur->append(&eos, 1);
        per_file[d.file].tokens += static_cast<int64_t>(ids.size()) + (d.last ? 1 : 0);
        prog.tokens += static_cast<int64_t>(ids.size()) + (d.last ? 1 : 0);
        prog.documents += d.first ? 1 : 0;
      }
      prog.input_bytes = b->input_bytes;
      prog.text_bytes += b->text_bytes;
      prog.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (opt.progress) opt.progress(prog);
    }
  } catch (...) {
    fail(std::current_exception());
  }
  join_all();
  if (!error) {
    try {
      train.close();
      val.close();
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (error) {
    // Leave no shards of a failed run behind (open ones remove themselves).
    std::error_code ec;
    for (const SplitWriter* w : {&train, &val})
      for (const ShardInfo& sh : w->summary.shards) fs::remove(sh.path, ec);
    std::rethrow_exception(error);
  }

  sum.train = train.summary;
  sum.val = val.summary;
  sum.corpus = reader.stats();
  sum.input_bytes = reader.total_input_bytes();
  WERSA_CHECK(sum.train.tokens + sum.val.tokens > 0, "the corpus holds no text to encode");
  if (opt.val_fraction > 0 && sum.val.documents == 0)
    spdlog::warn(
        "no document went to validation ({} document{}, val fraction {}): add documents or raise "
        "the fraction",
        sum.train.documents, sum.train.documents == 1 ? "" : "s", opt.val_fraction);

  // dataset.json, last: its presence marks a complete directory.
  auto split_json = [&](const SplitSummary& s) {
    nlohmann::json shards = nlohmann::json::array();
    for (const ShardInfo& sh : s.shards)
      shards.push_back({{"file", fs::path(sh.path).filename().string()}, {"tokens", sh.tokens}});
    return nlohmann::json{{"documents", s.documents}, {"tokens", s.tokens}, {"shards", shards}};
  };
  nlohmann::json sources = nlohmann::json::array();
  const auto& fstats = reader.file_stats();
  for (size_t i = 0; i < reader.files().size(); ++i) {
    const CorpusFile& f = reader.files()[i];
    sources.push_back({{"path", f.path},
                       {"bytes", f.size},
                       {"format", f.format == InputFormat::Jsonl ? "jsonl" : "text"},
                       {"compression", compression_name(f.compression)},
                       {"documents", fstats[i].documents},
                       {"train_documents", per_file[i].train_docs},
                       {"val_documents", per_file[i].val_docs},
                       {"text_bytes", fstats[i].text_bytes},
                       {"tokens", per_file[i].tokens},
                       {"skipped_invalid_utf8", fstats[i].skipped_invalid},
                       {"skipped_empty", fstats[i].skipped_empty}});
  }
  const int64_t total_tokens = sum.train.tokens + sum.val.tokens;
  nlohmann::json j = {
      {"format", "llm.c token shards"},
      {"magic", token_bytes == 2 ? kShardMagicU16 : kShardMagicU32},
      {"version", token_bytes == 2 ? kShardVersionU16 : kShardVersionU32},
      {"token_bytes", token_bytes},
      {"shard_tokens", opt.shard_tokens},
      {"tokenizer",
       {{"kind", tok.kind()},
        {"fingerprint", tok.fingerprint()},
        {"file", tokenizer_path.empty() ? nlohmann::json(nullptr) : nlohmann::json("tokenizer.model")},
        {"vocab_size", tok.vocab_size()},
        {"bos_id", tok.bos_id()},
        {"eos_id", tok.eos_id()},
        {"pad_id", tok.pad_id()},
        {"unk_id", tok.unk_id()}}},
      {"documents_end_with", "eos"},
      {"split",
       {{"val_fraction", opt.val_fraction},
        {"rule", "whole documents; a document goes to val when val + n/2 < val_fraction * (total + n)"},
        {"val_token_share", total_tokens ? double(sum.val.tokens) / double(total_tokens) : 0.0},
        {"train", split_json(sum.train)},
        {"val", split_json(sum.val)},
        {"val_documents", val_docs}}},
      {"totals",
       {{"documents", sum.corpus.documents},
        {"text_bytes", sum.corpus.text_bytes},
        {"tokens", total_tokens},
        {"skipped_invalid_utf8", sum.corpus.skipped_invalid},
        {"skipped_empty", sum.corpus.skipped_empty}}},
      {"sources", sources},
  };
  sum.dataset_json = (fs::path(out_dir) / "dataset.json").string();
  write_file_atomic(sum.dataset_json, j.dump(2) + "\n");
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace wersa::data

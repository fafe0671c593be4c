// Labelled documents, second half: tokenizing with truncation (OpenMP over documents), summary
// statistics, the length-bucketed training batcher and the evaluation order. See labeled.h.
#include <omp.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <numeric>
#include <sstream>

#include "wersa/common/error.h"
#include "wersa/common/json.h"
#include "wersa/common/rng.h"
#include "wersa/data/labeled.h"

namespace wersa::data {

// ---- tokens ---------------------------------------------------------------------------------

const char* truncation_name(Truncation t) { return t == Truncation::HeadTail ? "head_tail" : "head"; }

Truncation parse_truncation(const std::string& s, const std::string& what) {
  if (s == "head") return Truncation::Head;
  if (s == "head_tail") return Truncation::HeadTail;
  WERSA_FAIL(what, " is \"", printable(s), "\", expected \"head\" or \"head_tail\"");
}

std::vector<int32_t> truncate_ids(const std::vector<int32_t>& ids, int64_t max_tokens, Truncation t) {
  WERSA_ASSERT(max_tokens >= 1, "max_tokens ", max_tokens);
  const size_t n = ids.size(), keep = static_cast<size_t>(max_tokens);
  if (n <= keep) return ids;
  if (t == Truncation::Head) return std::vector<int32_t>(ids.begin(), ids.begin() + keep);
  // Head + tail: Sun et al. 2019, "How to Fine-Tune BERT for Text Classification?", found that
  // keeping the beginning and the end of a long document (128 + 382 tokens for BERT's 512)
  // classifies better than the head or the tail alone. Here a quarter head, the rest tail.
  const size_t head = keep / 4, tail = keep - head;
  std::vector<int32_t> out(ids.begin(), ids.begin() + head);
  out.insert(out.end(), ids.end() - tail, ids.end());
  return out;
}

std::vector<int64_t> DocumentSet::indices(Split s) const {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < size(); ++i)
    if (split[i] == s) out.push_back(i);
  return out;
}

DocumentSet encode_documents(const LabeledDataset& data, const LabelMap& labels, const Tokenizer& tok,
                             int64_t max_tokens, Truncation truncation, int threads) {
  WERSA_CHECK(max_tokens >= 1 && max_tokens <= std::numeric_limits<int32_t>::max(), "max_tokens is ",
              max_tokens, ", expected 1 to ", std::numeric_limits<int32_t>::max());
  const int64_t n = static_cast<int64_t>(data.records.size());
  DocumentSet set;
  set.max_tokens = max_tokens;
  set.truncation = truncation;
  set.num_classes = labels.num_classes();
  set.label.resize(n);
  set.split.resize(n);
  for (int64_t i = 0; i < n; ++i) {  // label errors first, in file order
    set.label[i] = labels.id_of(data.records[i], data.path);
    set.split[i] = data.records[i].split;
  }
  std::vector<std::vector<int32_t>> kept(n);
  set.full_length.assign(n, 0);
  int64_t failed = n;  // lowest document whose encoding threw
  std::exception_ptr error;
  const int nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (int64_t i = 0; i < n; ++i) {
    try {
      const std::vector<int32_t> ids = tok.encode(data.records[i].text);
      set.full_length[i] = static_cast<int64_t>(ids.size());
      kept[i] = truncate_ids(ids, max_tokens, truncation);
    } catch (...) {
#pragma omp critical(wersa_labeled_encode)
      if (i < failed) failed = i, error = std::current_exception();
    }
  }
  int64_t total = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (i == failed) std::rethrow_exception(error);
    const LabeledRecord& r = data.records[i];
    WERSA_CHECK(set.full_length[i] > 0, data.path, ":", r.line, ": the text of record ",
                r.id.empty() ? "" : "\"" + printable(r.id) + "\" ", "encodes to no tokens with the ",
                tok.kind(), " tokenizer");
    total += static_cast<int64_t>(kept[i].size());
  }
  set.tokens.reserve(total);
  set.offset.resize(n);
  set.length.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    set.offset[i] = static_cast<int64_t>(set.tokens.size());
    set.length[i] = static_cast<int32_t>(kept[i].size());
    set.tokens.insert(set.tokens.end(), kept[i].begin(), kept[i].end());
    std::vector<int32_t>().swap(kept[i]);
  }
  WERSA_ASSERT(static_cast<int64_t>(set.tokens.size()) == total, "packed ", set.tokens.size(), " of ", total);
  return set;
}

// ---- statistics -----------------------------------------------------------------------------

DocumentStats document_stats(const DocumentSet& set) {
  DocumentStats st;
  st.max_tokens = set.max_tokens;
  st.truncation = set.truncation;
  auto add = [&](SplitStats& s, int64_t i) {
    if (s.per_class.empty()) s.per_class.assign(set.num_classes, 0);
    ++s.docs;
    ++s.per_class[set.label[i]];
    s.tokens += set.length[i];
    s.full_tokens += set.full_length[i];
    s.max_length = std::max(s.max_length, set.full_length[i]);
    if (set.full_length[i] > set.max_tokens) ++s.truncated;
  };
  for (int64_t i = 0; i < set.size(); ++i) {
    add(st.all, i);
    if (set.split[i] != Split::None) add(st.split[static_cast<int>(set.split[i])], i);
  }
  return st;
}

std::string describe(const DocumentStats& st, const LabelMap& labels) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(0);
  const SplitStats& a = st.all;
  os << a.docs << " documents, " << labels.num_classes() << " classes";
  const char* sep = ": ";
  for (int s = 0; s < 3; ++s) {
    if (st.split[s].docs == 0) continue;
    os << sep << split_name(static_cast<Split>(s)) << " " << st.split[s].docs;
    sep = ", ";
  }
  const double d = a.docs > 0 ? double(a.docs) : 1.0;
  os << "; tokens per document mean " << double(a.full_tokens) / d << " max " << a.max_length << ", "
     << a.truncated << " truncated to " << st.max_tokens << " (" << truncation_name(st.truncation)
     << "), kept mean " << double(a.tokens) / d << "; classes";
  for (int64_t c = 0; c < labels.num_classes() && c < static_cast<int64_t>(a.per_class.size()); ++c)
    os << (c ? ", " : " ") << printable(labels.name(c)) << " " << a.per_class[c];
  return os.str();
}

// ---- batching -------------------------------------------------------------------------------

namespace {
constexpr uint64_t kDocStream = 0x6261746368646f63ull;    // per-epoch shuffle of the documents
constexpr uint64_t kBatchStream = 0x62617463686f7264ull;  // per-epoch shuffle of the batches

template <class T>
void shuffle(std::vector<T>& v, Rng rng) {
  for (size_t k = v.size(); k > 1; --k) std::swap(v[k - 1], v[rng.below(k)]);
}
}  // namespace

DocBatcher::DocBatcher(const DocumentSet& set, std::vector<int64_t> docs, BatcherOptions opt)
    : docs_(std::move(docs)), opt_(opt) {
  WERSA_CHECK(opt_.batch_size >= 1, "batch size is ", opt_.batch_size, ", expected at least 1");
  WERSA_CHECK(opt_.bucket_factor >= 1, "bucket factor is ", opt_.bucket_factor, ", expected at least 1");
  WERSA_CHECK(!docs_.empty(), "no documents to batch");
  lengths_.reserve(docs_.size());
  for (int64_t d : docs_) {
    WERSA_ASSERT(d >= 0 && d < set.size(), "document ", d, " of ", set.size());
    lengths_.push_back(set.length[d]);
  }
  WERSA_CHECK(batches_per_epoch() >= 1, "only ", docs_.size(), " documents, fewer than the batch size ",
              opt_.batch_size, ", and the smaller last batch is dropped: no batch at all");
}

int64_t DocBatcher::batches_per_epoch() const {
  const int64_t n = static_cast<int64_t>(docs_.size()), b = opt_.batch_size;
  return n / b + (n % b != 0 && !opt_.drop_last ? 1 : 0);
}

std::vector<std::vector<int64_t>> DocBatcher::epoch_batches(int64_t epoch) const {
  WERSA_ASSERT(epoch >= 0, "epoch ", epoch);
  const int64_t n = static_cast<int64_t>(docs_.size()), b = opt_.batch_size;
  std::vector<int64_t> order(n);  // positions in docs_
  std::iota(order.begin(), order.end(), int64_t(0));
  shuffle(order, Rng{opt_.seed, kDocStream ^ mix64(static_cast<uint64_t>(epoch)), 0});
  const int64_t window = opt_.bucket_factor >= (n + b - 1) / b ? n : b * opt_.bucket_factor;
  std::vector<std::vector<int64_t>> batches;
  for (int64_t w = 0; w < n; w += window) {
    const auto lo = order.begin() + w, hi = order.begin() + std::min(n, w + window);
    std::sort(lo, hi, [&](int64_t x, int64_t y) {
      return lengths_[x] != lengths_[y] ? lengths_[x] < lengths_[y] : docs_[x] < docs_[y];
    });
    for (auto it = lo; it < hi; it += std::min<int64_t>(b, hi - it)) {
      std::vector<int64_t> batch;
      for (auto k = it; k < it + std::min<int64_t>(b, hi - it); ++k) batch.push_back(docs_[*k]);
      batches.push_back(std::move(batch));
    }
  }
  if (opt_.drop_last && static_cast<int64_t>(batches.back().size()) < b) batches.pop_back();
  WERSA_ASSERT(static_cast<int64_t>(batches.size()) == batches_per_epoch(), batches.size(), " batches");
  shuffle(batches, Rng{opt_.seed, kBatchStream ^ mix64(static_cast<uint64_t>(epoch)), 0});
  return batches;
}

std::vector<int64_t> DocBatcher::next() {
  if (cached_epoch_ != pos_.epoch) {
    cache_ = epoch_batches(pos_.epoch);
    cached_epoch_ = pos_.epoch;
  }
  std::vector<int64_t> out = cache_[pos_.batch];
  if (++pos_.batch == batches_per_epoch()) ++pos_.epoch, pos_.batch = 0;
  return out;
}

void DocBatcher::seek(BatchPosition p) {
  WERSA_CHECK(p.epoch >= 0 && p.batch >= 0 && p.batch <= batches_per_epoch(), "batcher position epoch ",
              p.epoch, " batch ", p.batch, " is out of range (", batches_per_epoch(), " batches per epoch)");
  if (p.batch == batches_per_epoch()) ++p.epoch, p.batch = 0;
  pos_ = p;
}

std::vector<std::vector<int64_t>> eval_batches(const DocumentSet& set, std::vector<int64_t> docs,
                                               int64_t batch_size) {
  WERSA_CHECK(batch_size >= 1, "batch size is ", batch_size, ", expected at least 1");
  for (int64_t d : docs) WERSA_ASSERT(d >= 0 && d < set.size(), "document ", d, " of ", set.size());
  std::sort(docs.begin(), docs.end(), [&](int64_t x, int64_t y) {
    return set.length[x] != set.length[y] ? set.length[x] < set.length[y] : x < y;
  });
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < docs.size(); i += static_cast<size_t>(batch_size))
    out.emplace_back(docs.begin() + i,
                     docs.begin() + std::min(docs.size(), i + static_cast<size_t>(batch_size)));
  return out;
}

int64_t padded_tokens(const DocumentSet& set, const std::vector<int64_t>& batch) {
  int64_t longest = 0;
  for (int64_t d : batch) longest = std::max<int64_t>(longest, set.length[d]);
  return longest * static_cast<int64_t>(batch.size());
}

int64_t batch_tokens(const DocumentSet& set, const std::vector<int64_t>& batch) {
  int64_t t = 0;
  for (int64_t d : batch) t += set.length[d];
  return t;
}

}  // namespace wersa::data

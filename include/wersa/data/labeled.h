// Labelled documents for classification: reading, class labels, splits, tokenizing with
// truncation, and length-bucketed batching.
//
// Input: JSON Lines (plain, or .xz / .gz by the file name, decoded in process as corpus.h does),
// one record per non-blank line, an object with a text field, a label field (a class name as a
// non-empty string, or a class number as a non-negative integer; kept as written) and optionally
// an id (string or integer) and a split field ("train", "validation" or "test"; "valid", "val"
// and "dev" are read as validation; exact lower case). Either every record names its split or
// none does. Every problem is a one-line wersa::Error naming file:line and the field.
//
// Splits: records that carry a split keep it. Otherwise assign_splits draws a seeded stratified
// split; it depends only on the set of records (id, text, label) and the seed, not on their order
// in the file (see assign_splits).
//
// Tokens: encode_documents encodes every record (OpenMP over documents; the result does not
// depend on the thread count), truncates it to max_tokens ("head", or "head_tail") and packs
// all ids into one array. No BOS/EOS/CLS is added: callers reserve room for their own.
//
// Batching: DocBatcher yields batches of document indices for training (random per epoch, but
// each batch holds documents of similar length, so little padding); eval_batches gives a
// deterministic length-sorted order for evaluation. Both are pure functions of their inputs,
// the seed and the position, so a resumed run sees exactly the batches it would have seen.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "wersa/data/corpus.h"
#include "wersa/data/tokenizer.h"

namespace wersa::data {

// ---- records --------------------------------------------------------------------------------

enum class Split : int8_t { None = -1, Train = 0, Validation = 1, Test = 2 };
const char* split_name(Split s);  // "none", "train", "validation", "test"
// "train", "validation" (also "valid", "val", "dev"), "test"; false for anything else.
bool parse_split(std::string_view s, Split* out);

struct LabeledRecord {
  std::string id;  // "" when the record has none; an integer id is kept in decimal
  std::string text;
  std::string label;       // the class name, when the label is a string ("" otherwise)
  int64_t label_int = -1;  // the class number, when the label is an integer (-1 otherwise)
  Split split = Split::None;
  int64_t line = 0;  // 1-based line in the file
  bool label_is_int() const { return label_int >= 0; }
  std::string label_text() const { return label_is_int() ? std::to_string(label_int) : label; }
};

struct LabeledDataset {
  std::string path;  // the file read (for error messages)
  std::vector<LabeledRecord> records;
  bool has_split = false;       // the records carry their split
  int64_t skipped_invalid = 0;  // records skipped for invalid UTF-8 (InvalidUtf8::Skip)
};

struct LabeledReadOptions {
  std::string text_field = "text";
  std::string label_field = "label";
  std::string split_field = "split";
  std::string id_field = "id";
  int64_t max_records = 0;  // 0 = all; else stop after this many records (the rest is not read)
  // Default Reject: a silently dropped record would change what a classifier is evaluated on.
  InvalidUtf8 invalid_utf8 = InvalidUtf8::Reject;
  int max_reports = 20;  // skipped records logged one by one (Skip), later ones only counted
};

// Integer labels above this are refused (a typo like 10000000 would otherwise mean 10M classes).
constexpr int64_t kMaxLabelInt = 1 << 20;

LabeledDataset read_labeled_jsonl(const std::string& path, const LabeledReadOptions& opt = {});

// ---- labels ---------------------------------------------------------------------------------

// Class names <-> ids 0..num_classes-1. A record's class is looked up by its label text (a string
// label, or an integer label in decimal), so a map of names "0", "1", ... serves integer labels.
class LabelMap {
 public:
  LabelMap() = default;
  // From the data: string labels -> the distinct names sorted by bytes; integer labels ->
  // classes 0..max (names "0", "1", ...), or 0..num_classes-1 when num_classes is larger.
  // num_classes 0 = as found. Errors: strings mixed with integers (naming the first record of
  // the other kind), num_classes smaller than the classes found, or (string labels) not equal.
  static LabelMap from_records(const LabeledDataset& data, int64_t num_classes = 0);
  // A given list (e.g. a trained model's classes, in its order): non-empty, no duplicates, no "".
  static LabelMap from_names(std::vector<std::string> names);

  int64_t num_classes() const { return static_cast<int64_t>(names_.size()); }
  const std::vector<std::string>& names() const { return names_; }
  const std::string& name(int64_t id) const;
  int64_t find(std::string_view name) const;  // -1 when absent
  // The class of a record; wersa::Error "path:line: label "x" is not one of the N classes ...".
  int32_t id_of(const LabeledRecord& r, const std::string& path) const;

 private:
  std::vector<std::string> names_;
  std::vector<int32_t> sorted_;  // ids ordered by name, for find()
};

// ---- splits ---------------------------------------------------------------------------------

struct SplitOptions {
  double validation_fraction = 0.1;
  double test_fraction = 0.1;
  uint64_t seed = 0;
};

// When data.has_split, nothing changes (the file's split is used). Otherwise, per class c with
// n_c records: the records are put in a canonical order (sorted by id, then text; records equal
// in both are interchangeable), shuffled with Rng(seed, stream from the class name), and the
// first round(n_c * validation_fraction) go to validation, the next round(n_c * test_fraction)
// to test, the rest to train (round: half away from zero; with the fractions' sum below 1 the
// two shares never exceed n_c). Fractions: each >= 0, sum < 1. Sets has_split.
void assign_splits(LabeledDataset& data, const LabelMap& labels, const SplitOptions& opt = {});

// ---- tokens ---------------------------------------------------------------------------------

enum class Truncation { Head, HeadTail };
const char* truncation_name(Truncation t);  // "head", "head_tail"
// "head" or "head_tail"; wersa::Error naming `what` and the value otherwise.
Truncation parse_truncation(const std::string& s, const std::string& what = "truncation");

// Documents after tokenizing and truncation; document i is records[i] of the data encoded.
struct DocumentSet {
  std::vector<int32_t> tokens;       // the kept ids of every document, concatenated
  std::vector<int64_t> offset;       // where document i starts in tokens
  std::vector<int32_t> length;       // ids kept (<= max_tokens)
  std::vector<int64_t> full_length;  // ids before truncation
  std::vector<int32_t> label;        // class id
  std::vector<Split> split;
  int64_t max_tokens = 0;
  Truncation truncation = Truncation::Head;
  int64_t num_classes = 0;

  int64_t size() const { return static_cast<int64_t>(length.size()); }
  const int32_t* doc(int64_t i) const { return tokens.data() + offset[i]; }
  std::vector<int64_t> indices(Split s) const;  // documents of split s, ascending
};

// Encodes data.records (every record must have a class in `labels`). Documents longer than
// max_tokens (>= 1) keep the first max_tokens ids (Head) or the first floor(max_tokens / 4) and
// the last max_tokens - floor(max_tokens / 4) ids (HeadTail). A record encoding to no ids is an
// error naming file:line. threads <= 0: OpenMP's default.
DocumentSet encode_documents(const LabeledDataset& data, const LabelMap& labels, const Tokenizer& tok,
                             int64_t max_tokens, Truncation truncation, int threads = 0);

// The ids document i of the data keeps: the slice rule above, applied to its full encoding.
std::vector<int32_t> truncate_ids(const std::vector<int32_t>& ids, int64_t max_tokens, Truncation t);

struct SplitStats {
  int64_t docs = 0;
  std::vector<int64_t> per_class;  // documents of each class
  int64_t tokens = 0;              // kept ids
  int64_t full_tokens = 0;         // ids before truncation
  int64_t max_length = 0;          // longest document before truncation
  int64_t truncated = 0;           // documents longer than max_tokens
};
struct DocumentStats {
  SplitStats all;
  SplitStats split[3];  // train, validation, test
  int64_t max_tokens = 0;
  Truncation truncation = Truncation::Head;
};
DocumentStats document_stats(const DocumentSet& set);
// One line for the log: documents per split, mean/max length, truncated count, class counts.
std::string describe(const DocumentStats& st, const LabelMap& labels);

// ---- batching -------------------------------------------------------------------------------

struct BatchPosition {
  int64_t epoch = 0;
  int64_t batch = 0;  // index of the next batch within the epoch
  bool operator==(const BatchPosition& o) const { return epoch == o.epoch && batch == o.batch; }
};

struct BatcherOptions {
  int64_t batch_size = 8;
  int64_t bucket_factor = 32;  // documents sorted by length in windows of batch_size * this
  uint64_t seed = 0;
  bool drop_last = false;  // drop the epoch's one smaller batch (when n % batch_size != 0)
};

// Training order over some documents of a set (usually set.indices(Split::Train)). Epoch e:
// shuffle the documents with Rng(seed, stream from e); cut the order into windows of
// batch_size * bucket_factor; sort each window by (length, document index); cut each window into
// batches of batch_size (only the last window's last batch can be smaller); shuffle the order of
// all the epoch's batches with a second stream of e. bucket_factor 1 = plain random batches.
class DocBatcher {
 public:
  DocBatcher(const DocumentSet& set, std::vector<int64_t> docs, BatcherOptions opt);

  std::vector<int64_t> next();  // document indices of the next batch; moves to the next epoch
  BatchPosition position() const { return pos_; }
  void seek(BatchPosition p);  // p.batch <= batches_per_epoch(); == means the next epoch's first
  int64_t batches_per_epoch() const;
  // All batches of epoch e, in order (what next() yields from {e, 0}).
  std::vector<std::vector<int64_t>> epoch_batches(int64_t epoch) const;

 private:
  std::vector<int64_t> docs_;
  std::vector<int32_t> lengths_;  // parallel to docs_
  BatcherOptions opt_;
  BatchPosition pos_;
  int64_t cached_epoch_ = -1;
  std::vector<std::vector<int64_t>> cache_;
};

// Evaluation order: every document of `docs` once, sorted by (length, index), cut into batches
// of batch_size (the last may be smaller). Deterministic.
std::vector<std::vector<int64_t>> eval_batches(const DocumentSet& set, std::vector<int64_t> docs,
                                               int64_t batch_size);

// Token slots a padded batch takes: batch size x its longest (kept) document.
int64_t padded_tokens(const DocumentSet& set, const std::vector<int64_t>& batch);
// Kept ids of a batch (without padding).
int64_t batch_tokens(const DocumentSet& set, const std::vector<int64_t>& batch);

}  // namespace wersa::data

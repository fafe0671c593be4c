// Labelled JSON Lines documents: reading (streamed, by line, through corpus.h's InputStream),
// class labels and the seeded stratified split. Tokenizing and batching: labeled_batch.cpp.
#include "wersa/data/labeled.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "wersa/common/error.h"
#include "wersa/common/json.h"
#include "wersa/common/log.h"
#include "wersa/common/rng.h"

namespace wersa::data {

const char* split_name(Split s) {
  switch (s) {
    case Split::Train:
      return "train";
    case Split::Validation:
      return "validation";
    case Split::Test:
      return "test";
    default:
      return "none";
  }
}

bool parse_split(std::string_view s, Split* out) {
  if (s == "train")
    *out = Split::Train;
  else if (s == "validation" || s == "valid" || s == "val" || s == "dev")
    *out = Split::Validation;
  else if (s == "test")
    *out = Split::Test;
  else
    return false;
  return true;
}

// ---- reading --------------------------------------------------------------------------------

namespace {

constexpr size_t kBlock = size_t(1) << 20;

// Lines of a (decompressed) file; a view stays valid until the next call.
class LineReader {
 public:
  LineReader(const std::string& path, Compression c) : in_(path, c) {}
  bool next(std::string_view* line) {
    while (true) {
      const size_t nl = buf_.find('\n', scan_);
      if (nl != std::string::npos || (eof_ && pos_ < buf_.size())) {
        const size_t end = nl == std::string::npos ? buf_.size() : nl;
        *line = std::string_view(buf_.data() + pos_, end - pos_);
        pos_ = scan_ = std::min(end + 1, buf_.size());
        ++line_;
        return true;
      }
      if (eof_) return false;
      buf_.erase(0, pos_);
      pos_ = 0;
      scan_ = buf_.size();
      const size_t old = buf_.size();
      buf_.resize(old + kBlock);
      const size_t k = in_.read(&buf_[old], kBlock);
      buf_.resize(old + k);
      if (k == 0) eof_ = true;
    }
  }
  int64_t line() const { return line_; }  // number of the line last returned (1-based)

 private:
  InputStream in_;
  std::string buf_;
  size_t pos_ = 0, scan_ = 0;
  bool eof_ = false;
  int64_t line_ = 0;
};

const char* kLabelExpected = "expected a class name (non-empty string) or a non-negative integer";

LabeledRecord parse_record(std::string_view line, const std::string& where, const LabeledReadOptions& opt) {
  nlohmann::json j = parse_json(line, where);
  WERSA_CHECK(j.is_object(), where, ": expected a JSON object, got ", j.type_name());
  LabeledRecord r;

  auto text = j.find(opt.text_field);
  WERSA_CHECK(text != j.end(), where, ": no \"", opt.text_field, "\" field (the document text)");
  WERSA_CHECK(text->is_string(), where, ": field \"", opt.text_field, "\" is a ", text->type_name(),
              ", expected a string");
  r.text = std::move(text->get_ref<std::string&>());
  WERSA_CHECK(!r.text.empty(), where, ": field \"", opt.text_field,
              "\" is empty, expected the document text");

  auto label = j.find(opt.label_field);
  WERSA_CHECK(label != j.end(), where, ": no \"", opt.label_field, "\" field (the class)");
  if (label->is_string()) {
    r.label = label->get<std::string>();
    WERSA_CHECK(!r.label.empty(), where, ": field \"", opt.label_field, "\" is an empty string, ",
                kLabelExpected);
  } else if (label->is_number_unsigned() || (label->is_number_integer() && label->get<int64_t>() >= 0)) {
    const uint64_t v = label->get<uint64_t>();
    WERSA_CHECK(v <= static_cast<uint64_t>(kMaxLabelInt), where, ": field \"", opt.label_field, "\" is ", v,
                ", above the largest class number accepted (", kMaxLabelInt, ")");
    r.label_int = static_cast<int64_t>(v);
  } else {
    WERSA_FAIL(where, ": field \"", opt.label_field, "\" is ", json_brief(*label), " (", label->type_name(),
               "), ", kLabelExpected);
  }

  auto id = j.find(opt.id_field);
  if (id != j.end()) {
    if (id->is_string())
      r.id = id->get<std::string>();
    else if (id->is_number_integer())
      r.id = id->dump();
    else
      WERSA_FAIL(where, ": field \"", opt.id_field, "\" is ", json_brief(*id), " (", id->type_name(),
                 "), expected a string or an integer");
  }

  auto split = j.find(opt.split_field);
  if (split != j.end()) {
    const bool ok = split->is_string() && parse_split(split->get_ref<const std::string&>(), &r.split);
    WERSA_CHECK(ok, where, ": field \"", opt.split_field, "\" is ", json_brief(*split),
                ", expected \"train\", \"validation\" (or \"valid\", \"val\", \"dev\") or \"test\"");
  }
  return r;
}

}  // namespace

LabeledDataset read_labeled_jsonl(const std::string& path, const LabeledReadOptions& opt) {
  WERSA_CHECK(opt.max_records >= 0, "max_records is ", opt.max_records, ", expected 0 (all) or more");
  const std::vector<const std::string*> fields = {&opt.text_field, &opt.label_field, &opt.split_field,
                                                  &opt.id_field};
  for (size_t a = 0; a < fields.size(); ++a) {
    WERSA_CHECK(!fields[a]->empty(), "labelled data: a field name is empty");
    for (size_t b = a + 1; b < fields.size(); ++b)
      WERSA_CHECK(*fields[a] != *fields[b], "labelled data: field name \"", *fields[a], "\" is used twice");
  }
  const CorpusFile file = corpus_file(path);  // checks that it exists; compression from the name
  LabeledDataset data;
  data.path = path;
  LineReader lines(path, file.compression);
  int64_t first_with = 0, first_without = 0;  // lines of the first record with / without a split
  int reports = 0;
  std::string_view line;
  while ((opt.max_records == 0 || static_cast<int64_t>(data.records.size()) < opt.max_records) &&
         lines.next(&line)) {
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const int64_t no = lines.line();
    const std::string where = path + ":" + std::to_string(no);
    const size_t bad = find_invalid_utf8(line);
    if (bad != std::string_view::npos) {
      const std::string msg = detail::cat(where, ": invalid UTF-8 at byte ", bad, " of the line");
      WERSA_CHECK(opt.invalid_utf8 == InvalidUtf8::Skip, msg);
      ++data.skipped_invalid;
      if (reports < opt.max_reports) spdlog::warn("{}: record skipped", msg);
      if (++reports == opt.max_reports)
        spdlog::warn("further invalid UTF-8 reports are not shown, only counted");
      continue;
    }
    LabeledRecord r = parse_record(line, where, opt);
    r.line = no;
    const char* rule = ": either every record names its split or none does";
    if (r.split == Split::None) {
      WERSA_CHECK(first_with == 0, where, ": no \"", opt.split_field, "\" field, but line ", first_with,
                  " has one", rule);
      if (first_without == 0) first_without = no;
    } else {
      WERSA_CHECK(first_without == 0, where, ": field \"", opt.split_field, "\" is given, but line ",
                  first_without, " has none", rule);
      if (first_with == 0) first_with = no;
    }
    data.records.push_back(std::move(r));
  }
  data.has_split = first_with != 0;
  return data;
}

// ---- labels ---------------------------------------------------------------------------------

LabelMap LabelMap::from_records(const LabeledDataset& data, int64_t num_classes) {
  WERSA_CHECK(!data.records.empty(), data.path, ": no records, so no classes");
  WERSA_CHECK(num_classes >= 0 && num_classes <= kMaxLabelInt + 1, "num_classes is ", num_classes,
              ", expected 0 (as found) to ", kMaxLabelInt + 1);
  const LabeledRecord& r0 = data.records.front();
  const LabeledRecord* top = &r0;  // the record with the largest integer label
  std::vector<std::string> names;
  for (const LabeledRecord& r : data.records) {
    WERSA_CHECK(r.label_is_int() == r0.label_is_int(), data.path, ":", r.line, ": label ",
                r.label_is_int() ? r.label_text() : "\"" + printable(r.label) + "\"", " is ",
                r.label_is_int() ? "an integer" : "a string", ", but the label on line ", r0.line, " is ",
                r0.label_is_int() ? "an integer" : "a string",
                ": labels must be all class names or all class numbers");
    if (r.label_is_int()) {
      if (r.label_int > top->label_int) top = &r;
    } else {
      names.push_back(r.label);
    }
  }
  LabelMap m;
  if (r0.label_is_int()) {
    const int64_t found = top->label_int + 1;
    WERSA_CHECK(num_classes == 0 || num_classes >= found, data.path, ":", top->line, ": label ",
                top->label_int, " is outside num_classes ", num_classes, " (expected 0 to ", num_classes - 1,
                ")");
    const int64_t n = std::max(found, num_classes);
    for (int64_t c = 0; c < n; ++c) m.names_.push_back(std::to_string(c));
  } else {
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    WERSA_CHECK(num_classes == 0 || num_classes == static_cast<int64_t>(names.size()), data.path, ": ",
                names.size(), " class names found, but num_classes is ", num_classes,
                " (with string labels it must be 0 or the number of names)");
    m.names_ = std::move(names);
  }
  return from_names(std::move(m.names_));
}

LabelMap LabelMap::from_names(std::vector<std::string> names) {
  WERSA_CHECK(!names.empty(), "the list of class names is empty");
  WERSA_CHECK(static_cast<int64_t>(names.size()) <= kMaxLabelInt + 1, "too many classes (", names.size(),
              ")");
  LabelMap m;
  m.names_ = std::move(names);
  m.sorted_.resize(m.names_.size());
  for (size_t i = 0; i < m.sorted_.size(); ++i) {
    WERSA_CHECK(!m.names_[i].empty(), "class ", i, " has an empty name");
    m.sorted_[i] = static_cast<int32_t>(i);
  }
  std::sort(m.sorted_.begin(), m.sorted_.end(),
            [&](int32_t a, int32_t b) { return m.names_[a] < m.names_[b]; });
  for (size_t i = 1; i < m.sorted_.size(); ++i)
    WERSA_CHECK(m.names_[m.sorted_[i - 1]] != m.names_[m.sorted_[i]], "class name \"",
                printable(m.names_[m.sorted_[i]]), "\" appears twice (classes ", m.sorted_[i - 1], " and ",
                m.sorted_[i], ")");
  return m;
}

const std::string& LabelMap::name(int64_t id) const {
  WERSA_ASSERT(id >= 0 && id < num_classes(), "class id ", id, " of ", num_classes());
  return names_[id];
}

int64_t LabelMap::find(std::string_view name) const {
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), name,
                             [&](int32_t a, std::string_view n) { return names_[a] < n; });
  return it != sorted_.end() && names_[*it] == name ? *it : -1;
}

int32_t LabelMap::id_of(const LabeledRecord& r, const std::string& path) const {
  const std::string key = r.label_text();
  const int64_t id = find(key);
  if (id >= 0) return static_cast<int32_t>(id);
  std::string known;
  for (int64_t c = 0; c < std::min<int64_t>(num_classes(), 12); ++c)
    known += (c ? ", " : "") + printable(names_[c]);
  if (num_classes() > 12) known += ", ...";
  WERSA_FAIL(path, ":", r.line, ": label ", r.label_is_int() ? key : "\"" + printable(key) + "\"",
             " is not one of the ", num_classes(), " classes (", known, ")");
}

// ---- splits ---------------------------------------------------------------------------------

namespace {
uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a, as rng.h's hash_name, but NUL-safe
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}
}  // namespace

void assign_splits(LabeledDataset& data, const LabelMap& labels, const SplitOptions& opt) {
  if (data.has_split) return;
  const double fv = opt.validation_fraction, ft = opt.test_fraction;
  WERSA_CHECK(std::isfinite(fv) && fv >= 0 && fv < 1, "validation fraction is ", fv, ", expected 0 <= f < 1");
  WERSA_CHECK(std::isfinite(ft) && ft >= 0 && ft < 1, "test fraction is ", ft, ", expected 0 <= f < 1");
  WERSA_CHECK(fv + ft < 1, "validation + test fractions are ", fv + ft, ", expected less than 1");
  std::vector<std::vector<size_t>> members(labels.num_classes());
  for (size_t i = 0; i < data.records.size(); ++i)
    members[labels.id_of(data.records[i], data.path)].push_back(i);
  const uint64_t base = hash_bytes("wersa/labeled/stratified-split");
  for (size_t c = 0; c < members.size(); ++c) {
    std::vector<size_t>& m = members[c];
    // Canonical order first, so that the split does not depend on the order of the file.
    std::stable_sort(m.begin(), m.end(), [&](size_t a, size_t b) {
      const LabeledRecord &ra = data.records[a], &rb = data.records[b];
      if (ra.id != rb.id) return ra.id < rb.id;
      return ra.text < rb.text;
    });
    Rng rng{opt.seed, base ^ mix64(hash_bytes(labels.name(static_cast<int64_t>(c)))), 0};
    for (size_t k = m.size(); k > 1; --k) std::swap(m[k - 1], m[rng.below(k)]);
    const int64_t n = static_cast<int64_t>(m.size());
    const int64_t nv = std::llround(n * fv);
    const int64_t nt = std::llround(n * ft);
    // round(a) + round(b) <= a + b + 1 < n + 1, so the two never take more than the class.
    WERSA_ASSERT(nv >= 0 && nt >= 0 && nv + nt <= n, "split of ", n, " records: ", nv, " + ", nt);
    for (int64_t k = 0; k < n; ++k)
      data.records[m[k]].split = k < nv ? Split::Validation : k < nv + nt ? Split::Test : Split::Train;
  }
  data.has_split = true;
}

}  // namespace wersa::data

// Fuzz target: a classifier's document file. Feeds the input as a JSON Lines file to
// read_labeled_jsonl (records, fields, label types, split values, UTF-8), then, for an accepted
// file, the class map, the seeded split when the file has none, byte-level encoding with
// truncation, and one epoch of length-bucketed batches, as wersa-train does for task classify.
// Expected: a wersa::Error for a bad file. A finding: any other exception, a crash, an assert, a
// sanitizer report, or batches that do not cover the train split exactly once.
// libfuzzer-options: -max_len=8192
#include <set>

#include "fuzz_util.h"
#include "wersa/common/error.h"
#include "wersa/data/labeled.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wersa::data;
  const std::string path = wersa::fuzz::write_temp("docs.jsonl", data, size);
  static const auto tok = load_tokenizer("byte");
  try {
    LabeledDataset recs = read_labeled_jsonl(path);
    if (recs.records.empty()) return 0;
    const LabelMap labels = LabelMap::from_records(recs);
    if (!recs.has_split) assign_splits(recs, labels, {0.2, 0.2, 7});
    const DocumentSet set = encode_documents(recs, labels, *tok, 48, Truncation::HeadTail, 1);
    for (int64_t i = 0; i < set.size(); ++i)
      if (set.length[size_t(i)] < 1 || set.length[size_t(i)] > 48) wersa::fuzz::property_failed("bad length");
    const std::vector<int64_t> train = set.indices(Split::Train);
    if (train.empty()) return 0;
    DocBatcher batcher(set, train, {3, 2, 11, false});
    std::multiset<int64_t> seen;
    for (int64_t b = 0; b < batcher.batches_per_epoch(); ++b)
      for (int64_t i : batcher.next()) seen.insert(i);
    if (seen != std::multiset<int64_t>(train.begin(), train.end()))
      wersa::fuzz::property_failed("an epoch does not cover the train split exactly once");
  } catch (const wersa::Error&) {
    return 0;
  }
  return 0;
}

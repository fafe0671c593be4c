// Synthetic labelled documents, so that the tests of classification data, training and
// experiments run on every machine, with or without ../shared/data: arXiv-like abstracts in the
// format of ../shared/data/arxiv11.jsonl.xz (one JSON object a line: id, label, text, split),
// written from sentence templates whose words come partly from a vocabulary of their own class,
// so that the classes are separable but share most of their words and all of their syntax.
// Deterministic: the same arguments give the same bytes.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wersa/common/rng.h"

namespace wersa::test {

// The longest prefix of s of at most n bytes that ends on a UTF-8 character boundary.
inline std::string utf8_prefix(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// The classes of the synthetic set (a subset of arxiv11's names) and their own words.
struct SynthClass {
  const char* name;
  std::vector<const char*> words;
};
inline const std::vector<SynthClass>& synth_classes() {
  static const std::vector<SynthClass> c = {
      {"astro-ph",
       {"galaxy", "redshift", "stellar", "accretion", "quasar", "supernova", "halo", "luminosity"}},
      {"cs", {"algorithm", "graph", "complexity", "compiler", "network", "protocol", "scheduler", "cache"}},
      {"hep-th", {"gauge", "string", "brane", "anomaly", "supersymmetry", "duality", "instanton", "moduli"}},
      {"math", {"manifold", "theorem", "lemma", "homology", "operator", "ideal", "sheaf", "conjecture"}},
      {"quant-ph",
       {"qubit", "entanglement", "decoherence", "photon", "measurement", "channel", "cavity",
        "teleportation"}}};
  return c;
}

// An abstract of class `cls` (index into synth_classes()), document `i`, at least `bytes` long
// (whole sentences, so a little longer).
inline std::string synthetic_abstract(size_t cls, uint64_t i, size_t bytes) {
  static const char* common[] = {"model",  "method", "result",   "structure", "limit",
                                 "energy", "state",  "system",   "field",     "approach",
                                 "bound",  "phase",  "estimate", "spectrum"};
  static const char* adj[] = {"new",   "general", "local",    "nonlinear", "simple", "explicit", "large",
                              "small", "finite",  "critical", "stable",    "random", "exact",    "effective"};
  static const char* templ[] = {"We study the %a %c of %w in the %a regime. ",
                                "Using a %a %c, we show that the %w is %a for every %w. ",
                                "Our %c gives an %a %c of order $O(n^{%d})$ for the %w. ",
                                "In this paper we prove that %a %w admit a %a %c (see Section %d). ",
                                "Numerical experiments with %d samples confirm the %a %c of the %w. ",
                                "This extends earlier work on the %w and the %a %c to %d dimensions. ",
                                "As a consequence, the %c of the %w is bounded by %d.%d percent. "};
  const auto& own = synth_classes()[cls].words;
  std::string out;
  for (uint64_t s = 0; out.size() < bytes; ++s) {
    uint64_t r = rng_bits(0x5e7, i * 1000003 + cls, s);
    const char* t = templ[r % (sizeof templ / sizeof *templ)];
    for (const char* p = t; *p; ++p) {
      if (*p != '%') {
        out += *p;
        continue;
      }
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      const uint64_t k = r >> 33;
      switch (*++p) {
        case 'a':
          out += adj[k % (sizeof adj / sizeof *adj)];
          break;
        case 'c':
          out += common[k % (sizeof common / sizeof *common)];
          break;
        case 'w':
          out += own[k % own.size()];
          break;
        default:
          out += std::to_string(2 + k % 97);
      }
    }
  }
  return out;
}

// One labelled record of the synthetic set.
struct SynthRecord {
  std::string id, label, text, split;
};

// n records in the format of arxiv11.jsonl.xz: classes in the proportions 5:4:3:2:1 (astro-ph
// most, quant-ph least), interleaved; text lengths between min_bytes and max_bytes; splits train,
// validation and test in the proportions 7:1.5:1.5 when `splits`, else no split field.
inline std::vector<SynthRecord> synthetic_arxiv(int n, size_t min_bytes, size_t max_bytes,
                                                bool splits = true) {
  static const int weight[] = {5, 4, 3, 2, 1};
  std::vector<size_t> cycle;
  for (size_t c = 0; c < 5; ++c)
    for (int k = 0; k < weight[c]; ++k) cycle.push_back(c);
  std::vector<SynthRecord> out;
  for (int i = 0; i < n; ++i) {
    const size_t cls = cycle[size_t(i) % cycle.size()];
    const size_t len = min_bytes + size_t(rng_bits(0x1e9, 0, uint64_t(i)) % (max_bytes - min_bytes + 1));
    SynthRecord r;
    r.id = "synth." + std::to_string(1000 + i);
    r.label = synth_classes()[cls].name;
    r.text = synthetic_abstract(cls, uint64_t(i), len);
    if (splits) {
      const int m = i % 20;
      r.split = m < 14 ? "train" : m < 17 ? "validation" : "test";
    }
    out.push_back(r);
  }
  return out;
}

// The records as JSON Lines.
inline std::string synthetic_jsonl(const std::vector<SynthRecord>& recs) {
  std::string out;
  for (const SynthRecord& r : recs) {
    nlohmann::json j = {{"id", r.id}, {"label", r.label}, {"text", r.text}};
    if (!r.split.empty()) j["split"] = r.split;
    out += j.dump() + "\n";
  }
  return out;
}

}  // namespace wersa::test

// Writes the seed corpora of the fuzz targets with the engine's own writers, so that every seed
// is a valid file of the current formats: make_seeds OUT_DIR SOURCE_DIR writes
// OUT_DIR/{config,safetensors,shard,tokenizer}/ (SOURCE_DIR: the checkout, for configs/).
// Run by hand when a format changes; the output is committed as tests/fuzz/seeds/.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "wersa/common/error.h"
#include "wersa/data/sentencepiece_train.h"
#include "wersa/data/shard.h"
#include "wersa/io/safetensors.h"
#include "wersa/model/config.h"

namespace fs = std::filesystem;
using namespace wersa;

namespace {

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
  WERSA_CHECK(f.good(), p.string(), ": cannot write");
}

void config_seeds(const fs::path& out, const fs::path& src) {
  write_text(out / "default.json", config_to_json(Config{}).dump(2) + "\n");
  for (const char* name : {"tiny", "small"}) {
    const fs::path p = src / "configs" / (std::string(name) + ".json");
    std::ifstream in(p, std::ios::binary);
    const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write_text(out / (std::string(name) + ".json"), raw);
    write_text(out / (std::string(name) + "-resolved.json"),
               config_to_json(config_from_file(p.string())).dump(2) + "\n");
  }
}

void safetensors_seeds(const fs::path& out) {
  std::vector<float> a{1.5f, -2.0f, 0.0f, 3.25f, 1e-3f, -7.0f};
  std::vector<double> b{0.125};
  std::vector<int32_t> c{-1, 0, 7, 1 << 20};
  std::vector<uint16_t> d{1, 65535, 3};
  std::vector<uint32_t> e{42};
  const std::vector<Tensor> ts{Tensor(a.data(), DType::F32, Device::CPU, {2, 3}, "layers.0.weight"),
                               Tensor(b.data(), DType::F64, Device::CPU, {1, 1}, "scale"),
                               Tensor(c.data(), DType::I32, Device::CPU, {4}, "ids"),
                               Tensor(d.data(), DType::U16, Device::CPU, {3}, "u16"),
                               Tensor(e.data(), DType::U32, Device::CPU, {}, "scalar"),
                               Tensor(nullptr, DType::F32, Device::CPU, {0, 5}, "empty")};
  io::save_safetensors((out / "mixed.safetensors").string(), ts, {{"format", "pt"}, {"step", "12"}});
  io::save_safetensors((out / "one.safetensors").string(), {ts[0]});
  io::save_safetensors((out / "none.safetensors").string(), {});
}

void shard_seeds(const fs::path& out) {
  data::write_shard((out / "u16.bin").string(), {0, 1, 2, 258, 299, 300, 65535, 17}, 2);
  data::write_shard((out / "u32.bin").string(), {0, 5, 65536, 1u << 24, 299, 7}, 4);
  data::write_shard((out / "empty.bin").string(), {}, 2);
}

void tokenizer_seeds(const fs::path& out, const fs::path& tmp) {
  // A few lines of text written for this purpose; the model only has to be a real one.
  const std::string text =
      "the quick brown fox jumps over the lazy dog\n"
      "a tokenizer turns text into pieces and pieces back into text\n"
      "the model reads the pieces one after another\n"
      "numbers 123 456 and caf\xc3\xa9 na\xc3\xafve words\n"
      "pack my box with five dozen liquor jugs\n";
  fs::create_directories(tmp);
  std::string corpus;
  for (int i = 0; i < 20; ++i) corpus += text;
  write_text(tmp / "corpus.txt", corpus);
  data::SentencePieceTrainOptions opt;
  opt.vocab_size = 300;
  opt.sample_sentences = 0;
  opt.threads = 1;
  for (const char* type : {"bpe", "unigram"}) {
    opt.model_type = type;
    const std::string stem = std::string(type) + "-300";
    data::train_sentencepiece({(tmp / "corpus.txt").string()}, opt, (out / (stem + ".model")).string());
    fs::remove(out / (stem + ".json"));  // the training record, not a model
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR SOURCE_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out(argv[1]), src(argv[2]);
  try {
    for (const char* d : {"config", "safetensors", "shard", "tokenizer"}) fs::create_directories(out / d);
    config_seeds(out / "config", src);
    safetensors_seeds(out / "safetensors");
    shard_seeds(out / "shard");
    tokenizer_seeds(out / "tokenizer", fs::temp_directory_path() / "wersa-make-seeds");
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

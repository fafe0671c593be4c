// The layering the README states, checked on the source tree: every #include of every file under
// include/, src/ and tools/ points down (or within its layer), private headers stay private, and
// the code above the ops never dereferences tensor memory except through the checked host
// accessor.
//   common <- backend <- tensor <- ops API (include/wersa/ops) <- kernels (src/kernels)
//          <- ops dispatch (src/ops) <- model <- optim | data | io <- train <- tools
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "testutil.h"

namespace fs = std::filesystem;

namespace {

const std::map<std::string, int> kRank = {{"common", 0},  {"backend", 1}, {"tensor", 2}, {"ops-api", 3},
                                          {"kernels", 4}, {"ops", 5},     {"model", 6},  {"optim", 7},
                                          {"data", 7},    {"io", 7},      {"train", 8},  {"tools", 9}};

// The layer of a file, from its path relative to the source root ("" when not checked).
std::string layer_of(const std::string& rel) {
  std::smatch m;
  static const std::regex inc("^include/wersa/([a-z]+)/"), src("^src/([a-z]+)/");
  if (std::regex_search(rel, m, inc)) return m[1] == "ops" ? "ops-api" : std::string(m[1]);
  if (std::regex_search(rel, m, src)) return m[1];
  if (rel.rfind("tools/", 0) == 0) return "tools";
  return "";
}

struct Include {
  std::string target;  // path relative to the source root
  bool is_private;     // a header of src/ (not of include/)
};

// Quoted includes of `file`, resolved against include/ ("wersa/...") or the file's directory.
std::vector<Include> includes_of(const fs::path& root, const fs::path& file) {
  std::vector<Include> out;
  std::ifstream in(file);
  static const std::regex re("^\\s*#\\s*include\\s+\"([^\"]+)\"");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, re)) continue;
    const std::string name = m[1];
    if (name.rfind("wersa/", 0) == 0) {
      out.push_back({"include/" + name, false});
    } else {
      const fs::path p = fs::weakly_canonical(file.parent_path() / name);
      out.push_back({fs::relative(p, root).generic_string(), true});
    }
  }
  return out;
}

std::vector<fs::path> sources(const fs::path& root) {
  std::vector<fs::path> out;
  for (const char* dir : {"include", "src", "tools"})
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      const std::string ext = e.path().extension().string();
      if (e.is_regular_file() &&
          (ext == ".h" || ext == ".cpp" || ext == ".cu" || ext == ".cuh" || ext == ".inc"))
        out.push_back(e.path());
    }
  return out;
}

}  // namespace

TEST(Layering, EveryIncludePointsDown) {
  const fs::path root = fs::canonical(wersa::test::source_dir());
  int checked = 0;
  for (const fs::path& f : sources(root)) {
    const std::string rel = fs::relative(f, root).generic_string();
    const std::string from = layer_of(rel);
    ASSERT_TRUE(kRank.count(from)) << rel << ": not in a layer";
    for (const Include& inc : includes_of(root, f)) {
      const std::string to = layer_of(inc.target);
      ASSERT_TRUE(kRank.count(to)) << rel << " includes " << inc.target << ", which is in no layer";
      ++checked;
      if (from == to) continue;
      EXPECT_LT(kRank.at(to), kRank.at(from)) << rel << " (" << from << ") includes " << inc.target << " ("
                                              << to << "): an arrow running up or sideways";
      // Private headers are used by their own layer only, except the kernels' declarations,
      // which the op dispatchers call.
      if (inc.is_private)
        EXPECT_TRUE(from == "ops" && to == "kernels") << rel << " includes the private header " << inc.target;
    }
  }
  EXPECT_GT(checked, 200);  // the walk saw the tree
}

TEST(Layering, PublicHeadersIncludeOnlyPublicHeaders) {
  const fs::path root = fs::canonical(wersa::test::source_dir());
  for (const auto& e : fs::recursive_directory_iterator(root / "include"))
    for (const Include& inc : includes_of(root, e.path()))
      EXPECT_FALSE(inc.is_private) << e.path() << " includes " << inc.target;
}

TEST(Layering, BackendKnowsNoTensor) {
  const fs::path root = fs::canonical(wersa::test::source_dir());
  for (const fs::path& f : sources(root)) {
    const std::string rel = fs::relative(f, root).generic_string();
    if (layer_of(rel) != "backend") continue;
    std::ifstream in(f);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str().find("Tensor"), std::string::npos) << rel;
  }
}

// Above the ops, tensor memory is reached through host<T>() (which asserts a CPU tensor) or not
// at all; ptr<T>() is the kernels' accessor.
TEST(Layering, CodeAboveTheOpsUsesTheCheckedHostAccessor) {
  const fs::path root = fs::canonical(wersa::test::source_dir());
  const std::regex raw("\\.ptr<");
  for (const fs::path& f : sources(root)) {
    const std::string rel = fs::relative(f, root).generic_string();
    const std::string l = layer_of(rel);
    if (kRank.at(l) <= kRank.at("ops")) continue;
    std::ifstream in(f);
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      ++n;
      EXPECT_FALSE(std::regex_search(line, raw)) << rel << ":" << n << ": " << line;
    }
  }
}

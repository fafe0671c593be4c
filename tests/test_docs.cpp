// Keeps README.md and docs/*.md true to the engine: every command-line flag they name exists in
// the `--help` of the tool it belongs to, every config key they name exists in
// `wersa-train --help-config`, and every relative link resolves to a file (and its #anchor to a
// heading). The flags and keys are taken from the built tools' real output, never from a list.
//
// Which tool a flag belongs to:
// - A command (a code-block line, `\` continuations joined, or a code span) whose first word is
//   a tool (`build/wersa-eval ...`, `wersa-bench train ...`): every flag in it is that tool's,
//   checked against that subcommand's `--help` when a subcommand follows the tool.
// - A code span that contains a tool later (`error: wersa-generate: --temp: ...`): the flags after
//   the tool are that tool's. A command or span that starts with another word (`bash ...`,
//   `env -u X`, `valgrind --tool=callgrind`) is not ours and is skipped.
// - A code span that starts with a flag (`--max-memory SIZE`, `-n N`): the tool named last before
//   it in the same paragraph, table row or list item (in prose or code); else the tool named in
//   the section's heading; else the page's tool (training.md: wersa-train, ...); else (README,
//   design, history) any tool's help must have it. Without a subcommand in that context, the
//   tool's own help and all its subcommands' helps count.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "testutil.h"

namespace fs = std::filesystem;
using wersa::test::run_tool;

namespace {

const std::vector<std::string> kTools = {"wersa-train",    "wersa-eval",  "wersa-tokenize",
                                         "wersa-generate", "wersa-bench", "wersa-experiment",
                                         "wersa-server"};

// The tool a page is about, for flags whose paragraph and heading name none.
std::string page_tool(const std::string& rel) {
  static const std::map<std::string, std::string> m = {
      {"docs/training.md", "wersa-train"},      {"docs/classification.md", "wersa-train"},
      {"docs/generation.md", "wersa-generate"}, {"docs/experiments.md", "wersa-experiment"},
      {"docs/performance.md", "wersa-bench"},   {"docs/server.md", "wersa-server"}};
  const auto it = m.find(rel);
  return it == m.end() ? "" : it->second;
}

struct Doc {
  std::string rel;  // relative to the source directory
  std::string text;
};

std::vector<Doc> docs() {
  const fs::path root = wersa::test::source_dir();
  std::vector<Doc> out;
  out.push_back({"README.md", wersa::test::read_file((root / "README.md").string())});
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root / "docs"))
    if (e.is_regular_file() && e.path().extension() == ".md") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  for (const auto& n : names)
    out.push_back({"docs/" + n, wersa::test::read_file((root / "docs" / n).string())});
  return out;
}

// The help text of a tool (sub empty) or of one of its subcommands, from the built binary.
const std::string& help(const std::string& tool, const std::string& sub) {
  static std::map<std::string, std::string> cache;
  const std::string key = sub.empty() ? tool : tool + " " + sub;
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const auto r = run_tool(key + " --help");
  EXPECT_EQ(r.status, 0) << key << " --help: " << r.err;
  EXPECT_FALSE(r.out.empty()) << key << " --help printed nothing";
  return cache[key] = r.out;
}

// The subcommands a tool's help lists (CLI11: a "Subcommands:" section of indented names).
const std::vector<std::string>& subcommands(const std::string& tool) {
  static std::map<std::string, std::vector<std::string>> cache;
  auto it = cache.find(tool);
  if (it != cache.end()) return it->second;
  std::vector<std::string> subs;
  std::istringstream in(help(tool, ""));
  std::string line;
  bool in_section = false;
  while (std::getline(in, line)) {
    if (line.rfind("Subcommands:", 0) == 0 || line.rfind("SUBCOMMANDS:", 0) == 0) {
      in_section = true;
      continue;
    }
    if (in_section) {
      std::smatch m;
      if (std::regex_search(line, m, std::regex("^\\s+([a-z][a-z-]*)\\s")))
        subs.push_back(m[1]);
      else if (!line.empty() && line[0] != ' ')
        in_section = false;
    }
  }
  return cache[tool] = subs;
}

bool help_has(const std::string& text, const std::string& flag) {
  const std::regex re("(^|[^A-Za-z0-9-])" + flag + "([^A-Za-z0-9-]|$)");
  return std::regex_search(text, re);
}

// Does `tool` (with `sub`, or any of its subcommands when sub is empty) accept `flag`?
bool tool_has(const std::string& tool, const std::string& sub, const std::string& flag) {
  if (!sub.empty()) return help_has(help(tool, sub), flag);
  if (help_has(help(tool, ""), flag)) return true;
  for (const auto& s : subcommands(tool))
    if (help_has(help(tool, s), flag)) return true;
  return false;
}

// "build/wersa-eval" -> "wersa-eval"; "" when the word is not a tool.
std::string tool_of(std::string word) {
  while (!word.empty() && std::string("([`'\"").find(word.front()) != std::string::npos) word.erase(0, 1);
  while (!word.empty() && std::string(")]`'\":,;.").find(word.back()) != std::string::npos) word.pop_back();
  const auto slash = word.rfind('/');
  const std::string base = slash == std::string::npos ? word : word.substr(slash + 1);
  return std::find(kTools.begin(), kTools.end(), base) != kTools.end() ? base : "";
}

// The flag a word names ("--max-memory", "-n"), or "".
std::string flag_of(std::string word) {
  while (!word.empty() && std::string("([|").find(word.front()) != std::string::npos) word.erase(0, 1);
  std::smatch m;
  static const std::regex re("^(--[a-z][a-z0-9-]*[a-z0-9]|-[A-Za-z])([=,;:.)\\]|]|$)");
  if (std::regex_search(word, m, re)) return m[1];
  return "";
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string x; in >> x;) w.push_back(x);
  return w;
}

struct Ctx {
  std::string tool, sub;
};

struct FlagUse {
  std::string doc, where, flag, tool, sub;
};

// Whether w[i] names a tool; if so, sets c to it and to the subcommand that follows it, if any
// (i then points at the subcommand).
bool tool_at(const std::vector<std::string>& w, size_t& i, Ctx& c) {
  const std::string t = tool_of(w[i]);
  if (t.empty()) return false;
  c.tool = t;
  c.sub.clear();
  if (i + 1 < w.size()) {
    const auto& subs = subcommands(t);
    std::string next = w[i + 1];
    while (!next.empty() && std::string(")]`'\":,;.").find(next.back()) != std::string::npos) next.pop_back();
    if (std::find(subs.begin(), subs.end(), next) != subs.end()) c.sub = next, ++i;
  }
  return true;
}

// Adds the flags of one command or code span to `out`. `context`: the tool of a span that starts
// with a flag (lone_ok; code-block lines must start with a tool). A command that names no tool
// is not the engine's and adds nothing.
void command_flags(const std::string& cmd, const Ctx& context, bool lone_ok, const std::string& doc,
                   const std::string& where, std::vector<FlagUse>& out) {
  const auto w = words(cmd);
  size_t i = 0;
  while (i < w.size() && std::regex_match(w[i], std::regex("[A-Z_][A-Z0-9_]*=\\S*"))) ++i;  // env
  if (i >= w.size()) return;
  Ctx c;
  if (tool_at(w, i, c)) {
    ++i;
  } else if (!flag_of(w[i]).empty()) {
    if (!lone_ok) return;
    c = context;
  } else {
    // A span that names a tool later: the flags after it. Otherwise not a command of ours.
    bool found = false;
    for (++i; i < w.size() && !found; ++i) found = tool_at(w, i, c);
    if (!found) return;
  }
  for (; i < w.size(); ++i) {
    const std::string f = flag_of(w[i]);
    if (!f.empty()) out.push_back({doc, where + ": " + cmd, f, c.tool, c.sub});
  }
}

struct Block {
  std::string text;   // a paragraph, list item, table row or heading (lines joined by spaces)
  bool code = false;  // a code-block command (continuations joined)
  int heading = 0;    // heading level, 0 if none
  int line = 0;       // first line (1-based)
};

std::vector<Block> blocks(const std::string& text) {
  std::vector<Block> out;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  bool fenced = false, prev_blank = true, in_code = false;
  Block cur;
  auto flush = [&] {
    if (!cur.text.empty()) out.push_back(cur);
    cur = Block{};
  };
  while (std::getline(in, line)) {
    ++n;
    if (line.rfind("```", 0) == 0) {
      flush();
      fenced = !fenced;
      continue;
    }
    const bool indented = line.rfind("    ", 0) == 0 || line.rfind("\t", 0) == 0;
    if (fenced || (indented && (prev_blank || in_code))) {
      in_code = true;
      std::string l = line.substr(
          line.find_first_not_of(" \t") == std::string::npos ? line.size() : line.find_first_not_of(" \t"));
      if (!cur.code) flush();
      cur.code = true;
      if (cur.line == 0) cur.line = n;
      const auto hash = l.find(" #");
      if (hash != std::string::npos) l = l.substr(0, hash);
      const bool cont = !l.empty() && l.back() == '\\';
      if (cont) l.pop_back();
      cur.text += l + " ";
      if (!cont) flush();
      prev_blank = false;
      continue;
    }
    in_code = false;
    if (line.find_first_not_of(" \t") == std::string::npos) {
      flush();
      prev_blank = true;
      continue;
    }
    prev_blank = false;
    const std::string t = line.substr(line.find_first_not_of(" "));
    std::smatch m;
    if (std::regex_search(t, m, std::regex("^(#+) "))) {
      flush();
      out.push_back({t.substr(m[1].length() + 1), false, int(m[1].length()), n});
      continue;
    }
    if (t[0] == '|' || std::regex_search(t, std::regex("^([-*]|[0-9]+\\.) "))) flush();
    if (cur.line == 0) cur.line = n;
    cur.text += t + " ";
    if (t[0] == '|') flush();
  }
  flush();
  return out;
}

const std::regex kToolWord(
    "(^|[^A-Za-z0-9/_-])((?:build/)?wersa-(?:train|eval|tokenize|generate|bench|experiment))"
    "(?=[^A-Za-z0-9_-]|$)");
const std::regex kSpan("`([^`]+)`");

// Every flag that README.md and docs/*.md name, with the tool it belongs to.
std::vector<FlagUse> flag_uses() {
  std::vector<FlagUse> out;
  for (const auto& d : docs()) {
    std::string heading_tool;
    for (const auto& b : blocks(d.text)) {
      const std::string where = d.rel + ":" + std::to_string(b.line);
      if (b.heading) {
        std::smatch m;
        heading_tool = std::regex_search(b.text, m, kToolWord) ? tool_of(m[2]) : "";
        continue;
      }
      if (b.code) {
        command_flags(b.text, Ctx{}, false, d.rel, where, out);
        continue;
      }
      // Spans in order; the context is the last tool named before each span in this block.
      Ctx context{heading_tool.empty() ? page_tool(d.rel) : heading_tool, ""};
      size_t pos = 0;
      for (auto it = std::sregex_iterator(b.text.begin(), b.text.end(), kSpan); it != std::sregex_iterator();
           ++it) {
        const size_t start = size_t(it->position(0));
        // Tools named in the prose between the previous span and this one.
        const std::string prose = b.text.substr(pos, start - pos);
        for (auto t = std::sregex_iterator(prose.begin(), prose.end(), kToolWord);
             t != std::sregex_iterator(); ++t) {
          context = Ctx{tool_of((*t)[2]), ""};
          const std::string rest = prose.substr(size_t(t->position(2) + t->length(2)));
          const auto w = words(rest);
          if (!w.empty()) {
            const auto& subs = subcommands(context.tool);
            if (std::find(subs.begin(), subs.end(), w[0]) != subs.end()) context.sub = w[0];
          }
        }
        const std::string span = (*it)[1];
        command_flags(span, context, true, d.rel, where, out);
        // A span that names a tool makes it the context of what follows.
        const auto w = words(span);
        for (size_t i = 0; i < w.size(); ++i) {
          Ctx c;
          if (tool_at(w, i, c)) context = c;
        }
        pos = start + size_t(it->length(0));
      }
    }
  }
  return out;
}

}  // namespace

TEST(Docs, EveryFlagExistsInItsToolsHelp) {
  const auto uses = flag_uses();
  ASSERT_GT(uses.size(), 50u) << "the docs name few flags: is the parser broken?";
  size_t checked = 0;
  for (const auto& u : uses) {
    bool ok = false;
    if (!u.tool.empty()) {
      ok = tool_has(u.tool, u.sub, u.flag);
    } else {
      for (const auto& t : kTools) ok = ok || tool_has(t, "", u.flag);
    }
    ++checked;
    EXPECT_TRUE(ok) << u.where << "\n  flag " << u.flag << " is not in the --help of "
                    << (u.tool.empty() ? std::string("any tool")
                                       : u.tool + (u.sub.empty() ? "" : " " + u.sub));
  }
  EXPECT_EQ(checked, uses.size());
}

TEST(Docs, AttributesFlagsToTheirTools) {
  // The attribution rules on the docs themselves: a few flags the pages name, and their tools.
  const auto uses = flag_uses();
  auto has = [&](const std::string& doc, const std::string& flag, const std::string& tool,
                 const std::string& sub) {
    for (const auto& u : uses)
      if (u.doc == doc && u.flag == flag && u.tool == tool && u.sub == sub) return true;
    return false;
  };
  EXPECT_TRUE(has("docs/generation.md", "--temp", "wersa-generate", ""));
  EXPECT_TRUE(has("docs/training.md", "--max-memory", "wersa-train", ""));
  EXPECT_TRUE(has("docs/performance.md", "--recompute", "wersa-bench", "train"));
  EXPECT_TRUE(has("docs/training.md", "--vocab-size", "wersa-tokenize", "train"));
}

// Config keys: every `section.key` the docs name, for the sections that --help-config lists.
TEST(Docs, EveryConfigKeyExists) {
  const auto r = run_tool("wersa-train --help-config");
  ASSERT_EQ(r.status, 0) << r.err;
  std::set<std::string> keys, sections;
  static const std::regex key_re("(^|[^A-Za-z0-9_.])([a-z_]+(\\.[a-z_]+)+)");
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), key_re); it != std::sregex_iterator();
       ++it) {
    const std::string k = (*it)[2];
    keys.insert(k);
  }
  ASSERT_FALSE(keys.empty()) << r.out;
  for (const auto& k : keys) sections.insert(k.substr(0, k.find('.')));
  ASSERT_TRUE(keys.count("train.recompute")) << r.out;
  // File names are not keys: model.safetensors, state.json, ...
  static const std::set<std::string> exts = {"safetensors", "json", "jsonl", "md",  "h",   "cpp",
                                             "txt",         "bin",  "model", "svg", "csv", "tsv",
                                             "xz",          "gz",   "sh",    "inc", "dat", "gp"};
  size_t checked = 0;
  for (const auto& d : docs()) {
    int line = 1;
    size_t last = 0;
    for (auto it = std::sregex_iterator(d.text.begin(), d.text.end(), key_re); it != std::sregex_iterator();
         ++it) {
      const std::string k = (*it)[2];
      const size_t at = size_t(it->position(2));
      line += int(std::count(d.text.begin() + long(last), d.text.begin() + long(at), '\n'));
      last = at;
      const std::string section = k.substr(0, k.find('.'));
      const std::string ext = k.substr(k.rfind('.') + 1);
      if (!sections.count(section) || exts.count(ext)) continue;
      const char after = at + k.size() < d.text.size() ? d.text[at + k.size()] : ' ';
      if (after == '/' || after == '*' || after == '-') continue;  // a path (data/train_*.bin)
      // The example of an unknown-key error names a key that must not exist.
      const size_t ls = d.text.rfind('\n', at), le = d.text.find('\n', at);
      const std::string context = d.text.substr(ls == std::string::npos ? 0 : ls, le - ls);
      if (context.find("unknown key '" + k + "'") != std::string::npos) continue;
      ++checked;
      EXPECT_TRUE(keys.count(k)) << d.rel << ":" << line << ": config key " << k
                                 << " is not in wersa-train --help-config";
    }
  }
  EXPECT_GT(checked, 30u);
}

namespace {

// GitHub's anchor of a heading: lower case, punctuation other than '-' and '_' dropped, spaces
// to '-'.
std::string slug(const std::string& heading) {
  std::string s;
  for (const char ch : heading) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_')
      s += char(std::tolower(c));
    else if (c == ' ')
      s += '-';
  }
  return s;
}

std::set<std::string> anchors(const std::string& text) {
  std::set<std::string> out;
  std::map<std::string, int> seen;
  for (const auto& b : blocks(text))
    if (b.heading) {
      std::string h = b.text;
      h.erase(std::remove(h.begin(), h.end(), '`'), h.end());
      const std::string s = slug(h);
      const int k = seen[s]++;
      out.insert(k == 0 ? s : s + "-" + std::to_string(k));
    }
  return out;
}

}  // namespace

TEST(Docs, EveryRelativeLinkResolves) {
  const fs::path root = fs::weakly_canonical(wersa::test::source_dir());
  const fs::path shared = fs::path(WERSA_SHARED_DIR).lexically_normal();
  const bool have_shared = fs::is_directory(shared);
  static const std::regex link_re("\\]\\(([^)\\s]+)\\)");
  size_t checked = 0;
  for (const auto& d : docs()) {
    const fs::path dir = (root / d.rel).parent_path();
    for (auto it = std::sregex_iterator(d.text.begin(), d.text.end(), link_re); it != std::sregex_iterator();
         ++it) {
      std::string target = (*it)[1];
      if (std::regex_search(target, std::regex("^[a-z]+:"))) continue;  // https:, mailto:
      std::string anchor;
      const auto hash = target.find('#');
      if (hash != std::string::npos) anchor = target.substr(hash + 1), target = target.substr(0, hash);
      const fs::path file = target.empty() ? root / d.rel : (dir / target).lexically_normal();
      const std::string fs_str = file.string(), sh_str = shared.string();
      const bool in_shared = fs_str.rfind(sh_str, 0) == 0 || fs_str.find("/shared/") != std::string::npos;
      if (in_shared && !have_shared) continue;
      ++checked;
      EXPECT_TRUE(fs::exists(file)) << d.rel << ": link (" << (*it)[1] << ") -> " << file
                                    << " does not exist";
      if (!anchor.empty() && fs::is_regular_file(file) && file.extension() == ".md") {
        const auto a = anchors(wersa::test::read_file(file.string()));
        EXPECT_TRUE(a.count(anchor)) << d.rel << ": link (" << (*it)[1] << "): no heading with anchor #"
                                     << anchor;
      }
    }
  }
  EXPECT_GT(checked, 20u);
}

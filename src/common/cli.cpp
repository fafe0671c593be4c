#include "wersa/common/cli.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <sstream>
#include <string>

#include "wersa/common/version.h"

namespace wersa {

std::string one_line(const std::string& s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '\n' && s[i] != '\r') {
      out += s[i++];
      continue;
    }
    while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
    while (i < s.size() && (s[i] == '\n' || s[i] == '\r' || s[i] == ' ' || s[i] == '\t')) ++i;
    if (!out.empty() && i < s.size()) out += "; ";
  }
  return out;
}

int run_cli(const std::function<int()>& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", one_line(e.what()).c_str());
    return 2;
  } catch (const Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", one_line(e.what()).c_str());
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: out of memory\n");
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", one_line(e.what()).c_str());
  }
  return 1;
}

namespace {

std::string tool_name(const CLI::App& app) {
  const CLI::App* root = &app;
  while (root->get_parent()) root = root->get_parent();
  return root->get_name().empty() ? std::string("wersa") : root->get_name();
}

// CLI11's messages, reworded where they are unclear for a user.
std::string describe(const CLI::App& app, const CLI::ParseError& e) {
  std::string msg = e.what();
  const std::string kind = e.get_name();
  if (kind == "ArgumentMismatch" && msg.find("missing") != std::string::npos) {
    // "--flag: 1 required TYPE missing"
    const size_t colon = msg.find(':');
    if (colon != std::string::npos) return msg.substr(0, colon) + ": a value is missing";
  }
  if (kind == "ArgumentMismatch" && msg.find("At Most 1 required") != std::string::npos) {
    const size_t colon = msg.find(':');
    if (colon != std::string::npos) return msg.substr(0, colon) + ": given more than once";
  }
  if (msg.rfind("The following argument", 0) == 0)
    return "unknown flag or stray argument: " + msg.substr(msg.find(':') + 2);
  if (kind == "RequiredError" && msg == "A subcommand is required") {
    std::string names;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
      names += (names.empty() ? "" : ", ") + sub->get_name();
    const std::vector<std::string> rest = app.remaining();
    if (!rest.empty() && rest.front().rfind("-", 0) == 0)
      return "unknown flag " + rest.front() + " (a subcommand comes first: " + names + ")";
    if (!rest.empty()) return "unknown subcommand '" + rest.front() + "' (expected " + names + ")";
    return "a subcommand is required: " + names;
  }
  if (kind == "ConversionError") {
    // "Could not convert: --flag = value"
    const size_t colon = msg.find(": "), eq = msg.find(" = ");
    if (colon != std::string::npos && eq != std::string::npos && eq > colon)
      return msg.substr(colon + 2, eq - colon - 2) + ": cannot read the value '" + msg.substr(eq + 3) + "'";
  }
  return msg;
}

// "--long: ..." -> "-s,--long: ...": the flag as the user may have typed it.
void add_short_name(const CLI::App& app, std::string* msg) {
  for (const CLI::Option* o : app.get_options()) {
    const std::string name = o->get_name(), all = o->get_name(false, true);
    if (name.empty() || all == name || msg->compare(0, name.size(), name) != 0) continue;
    if (msg->size() > name.size() && (*msg)[name.size()] != ':' && (*msg)[name.size()] != ' ') continue;
    *msg = all + msg->substr(name.size());
    return;
  }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    add_short_name(*sub, msg);
}

}  // namespace

[[noreturn]] void usage_error(const CLI::App& app, const std::string& message) {
  throw UsageError(one_line(tool_name(app) + ": " + message + " (see --help)"));
}

bool parse_flags(CLI::App& app, int argc, const char* const* argv, std::string* help) {
  // Every tool answers --version with the engine's version line (version.h).
  if (!app.get_version_ptr())
    app.set_version_flag("--version", std::function<std::string()>(version_line),
                         "print the version (engine, git commit, backends, BLAS) and exit");
  try {
    // CLI11 reads argv[1..argc-1] and takes the program name from argv[0] unless set.
    std::vector<std::string> args;
    for (int i = argc - 1; i >= 1; --i) args.emplace_back(argv[i] ? argv[i] : "");
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    std::ostringstream out, err;
    app.exit(e, out, err);
    *help = out.str();
    return true;
  } catch (const CLI::CallForAllHelp& e) {
    std::ostringstream out, err;
    app.exit(e, out, err);
    *help = out.str();
    return true;
  } catch (const CLI::CallForVersion& e) {
    std::ostringstream out, err;
    app.exit(e, out, err);
    *help = out.str();
    return true;
  } catch (const CLI::ParseError& e) {
    std::string msg = describe(app, e);
    add_short_name(app, &msg);
    usage_error(app, msg);
  }
  return false;
}

// ---- validators ---------------------------------------------------------------------------------

namespace cli {
namespace {

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// Decimal integer without leading zeros (CLI11 would read "010" as octal) or overflow.
bool read_integer(const std::string& s, int64_t* v) {
  size_t i = s[0] == '-' || s[0] == '+' ? 1 : 0;
  if (i >= s.size()) return false;
  if (s[i] == '0' && i + 1 < s.size()) return false;
  for (size_t k = i; k < s.size(); ++k)
    if (s[k] < '0' || s[k] > '9') return false;
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(s.c_str(), &end, 10);
  if (errno == ERANGE || end != s.c_str() + s.size()) return false;
  *v = x;
  return true;
}

std::string range_text(int64_t lo, int64_t hi) {
  if (hi == kMaxInt64 || (hi == kMaxInt && lo >= -1)) return ">= " + std::to_string(lo);
  return "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

// The range in interval notation, for the help.
std::string interval(int64_t lo, int64_t hi) {
  if (hi == kMaxInt64 || (hi == kMaxInt && lo >= -1)) return "[" + std::to_string(lo) + ", inf)";
  return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

std::string number_interval(double lo, double hi, bool lo_open, bool hi_open) {
  auto num = [](double x) {
    std::ostringstream o;
    o << x;
    return o.str();
  };
  return std::string(lo_open ? "(" : "[") + num(lo) + ", " + (std::isinf(hi) ? "inf" : num(hi)) +
         (hi_open || std::isinf(hi) ? ")" : "]");
}

std::string number_text(double lo, double hi, bool lo_open, bool hi_open) {
  auto num = [](double x) {
    std::ostringstream o;
    o << x;
    return o.str();
  };
  if (std::isinf(hi)) return (lo_open ? "> " : ">= ") + num(lo);
  return "in " + number_interval(lo, hi, lo_open, hi_open);
}

bool path_stat(const std::string& p, struct stat* st) { return ::stat(p.c_str(), st) == 0; }

std::string parent_of(const std::string& p) {
  const size_t slash = p.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

}  // namespace

CLI::Validator integer(int64_t lo, int64_t hi) {
  const std::string want = "an integer " + range_text(lo, hi);
  return CLI::Validator(
      [lo, hi, want](std::string& s) -> std::string {
        int64_t v = 0;
        if (s.empty() || !read_integer(s, &v)) return "expected " + want + ", got " + in_quotes(s);
        if (v < lo || v > hi) return "expected " + want + ", got " + s;
        return {};
      },
      interval(lo, hi));
}

CLI::Validator count_or_all() {
  const std::string want = "-1 (all) or an integer >= 1";
  return CLI::Validator(
      [want](std::string& s) -> std::string {
        int64_t v = 0;
        if (s.empty() || !read_integer(s, &v)) return "expected " + want + ", got " + in_quotes(s);
        if (v == 0 || v < -1) return "expected " + want + ", got " + s;
        return {};
      },
      "-1 or >= 1");
}

CLI::Validator number(double lo, double hi, bool lo_open, bool hi_open) {
  const std::string range = number_text(lo, hi, lo_open, hi_open);
  const std::string want = "a number " + range;
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        if (s.empty() || std::isspace(static_cast<unsigned char>(s[0])))
          return "expected " + want + ", got " + in_quotes(s);
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (end != s.c_str() + s.size() || !std::isfinite(v))
          return "expected " + want + ", got " + in_quotes(s);
        if (v < lo || v > hi || (lo_open && v == lo) || (hi_open && v == hi))
          return "expected " + want + ", got " + s;
        return {};
      },
      number_interval(lo, hi, lo_open, hi_open));
}

CLI::Validator one_of(const std::vector<std::string>& words) {
  std::string list;
  for (size_t i = 0; i < words.size(); ++i)
    list += (i ? (i + 1 == words.size() ? " or " : ", ") : "") + words[i];
  return CLI::Validator(
      [words, list](std::string& s) -> std::string {
        for (const std::string& w : words)
          if (s == w) return {};
        return "expected " + list + ", got " + in_quotes(s);
      },
      CLI::detail::join(words, "|"));
}

CLI::Validator word_list(const std::vector<std::string>& words) {
  const std::string want = "a comma list of " + CLI::detail::join(words, ", ");
  return CLI::Validator(
      [words, want](std::string& s) -> std::string {
        std::stringstream ss(s);
        std::vector<std::string> seen;
        for (std::string item; std::getline(ss, item, ',');) {
          if (std::find(words.begin(), words.end(), item) == words.end())
            return "expected " + want + ", got " + in_quotes(s) + " ('" + item + "')";
          if (std::find(seen.begin(), seen.end(), item) != seen.end())
            return "expected " + want + ", got " + in_quotes(s) + " ('" + item + "' twice)";
          seen.push_back(item);
        }
        if (seen.empty() || s.back() == ',') return "expected " + want + ", got " + in_quotes(s);
        return {};
      },
      "LIST of " + CLI::detail::join(words, "|"));
}

CLI::Validator integer_list(int64_t lo) {
  const std::string want = "a comma list of integers >= " + std::to_string(lo);
  return CLI::Validator(
      [lo, want](std::string& s) -> std::string {
        std::stringstream ss(s);
        std::string item;
        int n = 0;
        while (std::getline(ss, item, ',')) {
          int64_t v = 0;
          if (item.empty() || !read_integer(item, &v) || v < lo)
            return "expected " + want + ", got " + in_quotes(s) + " ('" + item + "')";
          ++n;
        }
        if (n == 0 || s.back() == ',') return "expected " + want + ", got " + in_quotes(s);
        return {};
      },
      "LIST >= " + std::to_string(lo));
}

CLI::Validator existing_file() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        struct stat st {};
        if (s.empty()) return "expected a file name, got ''";
        if (!path_stat(s, &st)) return in_quotes(s) + " does not exist";
        if (S_ISDIR(st.st_mode)) return in_quotes(s) + " is a directory, expected a file";
        if (!S_ISREG(st.st_mode)) return in_quotes(s) + " is not a regular file";
        return {};
      },
      "FILE");
}

CLI::Validator existing_dir() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        struct stat st {};
        if (s.empty()) return "expected a directory, got ''";
        if (!path_stat(s, &st)) return in_quotes(s) + " does not exist";
        if (!S_ISDIR(st.st_mode)) return in_quotes(s) + " is not a directory";
        return {};
      },
      "DIR");
}

CLI::Validator existing_path() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        struct stat st {};
        if (s.empty()) return "expected a path, got ''";
        if (!path_stat(s, &st)) return in_quotes(s) + " does not exist";
        return {};
      },
      "PATH");
}

CLI::Validator output_file() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        struct stat st {};
        if (s.empty()) return "expected a file name, got ''";
        if (path_stat(s, &st) && S_ISDIR(st.st_mode))
          return in_quotes(s) + " is a directory, expected a file";
        const std::string dir = parent_of(s);
        if (!path_stat(dir, &st))
          return in_quotes(s) + ": the directory " + in_quotes(dir) + " does not exist";
        if (!S_ISDIR(st.st_mode)) return in_quotes(s) + ": " + in_quotes(dir) + " is not a directory";
        return {};
      },
      "FILE");
}

CLI::Validator output_file_anywhere() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        struct stat st {};
        if (s.empty()) return "expected a file name, got ''";
        if (path_stat(s, &st) && S_ISDIR(st.st_mode))
          return in_quotes(s) + " is a directory, expected a file";
        return {};
      },
      "FILE");
}

CLI::Validator output_dir() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        struct stat st {};
        if (s.empty()) return "expected a directory, got ''";
        if (path_stat(s, &st) && !S_ISDIR(st.st_mode)) return in_quotes(s) + " exists and is not a directory";
        return {};
      },
      "DIR");
}

CLI::Validator non_empty() {
  return CLI::Validator(
      [](std::string& s) -> std::string { return s.empty() ? "expected a value, got ''" : ""; }, "");
}

CLI::Validator key_value() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        const size_t eq = s.find('=');
        if (eq == std::string::npos || eq == 0) return "expected section.key=value, got " + in_quotes(s);
        return {};
      },
      "KEY=VALUE");
}

}  // namespace cli
}  // namespace wersa

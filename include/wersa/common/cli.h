// Shared by the command-line tools.
//
// Exit status of every tool: 0 on success (and for --help), 1 for an error while running (bad
// file contents, a failed write, ...), 2 for a bad command line (unknown flag, missing or
// malformed value, value out of range). Every error is one line on stderr starting "error:";
// command-line errors read "error: TOOL: FLAG: what was expected, got what (see --help)".
//
// Flags are declared with CLI11 and checked with the validators below (they run while parsing,
// so a bad value never reaches the tool's body); parse_flags() turns CLI11's errors into
// UsageError.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

#include "wersa/common/error.h"

namespace wersa {

// A bad command line: run_cli prints "error: MESSAGE" and exits with status 2.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& msg) : Error(msg) {}
};

// Runs a tool body: returns its status; a UsageError -> one "error:" line, status 2; any other
// exception -> one "error:" line, status 1.
int run_cli(const std::function<int()>& body);

// Parses argv with `app` (and runs the callbacks of its subcommands). Adds --version (which prints
// version_line() of wersa/common/version.h) unless `app` has a version flag. Returns true when
// help (--help, --help-all) or the version was asked for; the text is then in *help. Every other
// problem of the command line throws UsageError("TOOL: ... (see --help)"), one line, where TOOL
// is app.get_name(). Exceptions other than CLI11's (from subcommand callbacks) pass through.
bool parse_flags(CLI::App& app, int argc, const char* const* argv, std::string* help);

// Throws UsageError("TOOL: MESSAGE (see --help)"): for checks that involve several flags.
[[noreturn]] void usage_error(const CLI::App& app, const std::string& message);

// Collapses newlines (and the spaces around them) into "; ", so a message is one line.
std::string one_line(const std::string& s);

namespace cli {

constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();
constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

// An integer (decimal, optional sign) in [lo, hi]; the help shows the range.
CLI::Validator integer(int64_t lo, int64_t hi = kMaxInt64);
// -1 (= all) or an integer >= 1.
CLI::Validator count_or_all();
// A finite number in the range [lo, hi], or open at an end when lo_open / hi_open.
CLI::Validator number(double lo, double hi, bool lo_open = false, bool hi_open = false);
// One of the given words.
CLI::Validator one_of(const std::vector<std::string>& words);
// A comma-separated list of the given words (each at most once).
CLI::Validator word_list(const std::vector<std::string>& words);
// A comma-separated list of integers >= lo.
CLI::Validator integer_list(int64_t lo);
// An existing regular file (a directory is refused with "... is a directory").
CLI::Validator existing_file();
// An existing directory.
CLI::Validator existing_dir();
// An existing file or directory.
CLI::Validator existing_path();
// A file to write: not a directory, and its parent directory exists.
CLI::Validator output_file();
// A file to write in a directory that the tool creates: the path is not a directory.
CLI::Validator output_file_anywhere();
// A directory to write into (created when missing): the path is not an existing non-directory.
CLI::Validator output_dir();
// A non-empty value.
CLI::Validator non_empty();
// SECTION.KEY=VALUE (a config override).
CLI::Validator key_value();

}  // namespace cli
}  // namespace wersa

// The one JSON reader of the engine: configs, checkpoints' config.json and state.json,
// dataset.json, metrics.jsonl lines, JSON Lines corpora. Everything a tool reads goes through
// parse_json, which refuses what nlohmann::json would accept silently or crash on:
//   - nesting deeper than max_depth (a 100k-deep file would exhaust the stack when printed),
//   - duplicate keys in an object (nlohmann keeps the last one),
//   - NUL bytes, and any bytes after the value other than white space.
// Errors are one-line wersa::Error messages starting with `where` (a file name, or file:line).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace wersa {

constexpr int kJsonMaxDepth = 64;

nlohmann::json parse_json(std::string_view text, const std::string& where, int max_depth = kJsonMaxDepth);
// Reads a regular file (at most max_bytes) and parses it; a missing file is "PATH: cannot open file".
nlohmann::json read_json_file(const std::string& path, int max_depth = kJsonMaxDepth,
                              size_t max_bytes = size_t(1) << 28);
// A value for an error message: at most 60 characters, on one line.
std::string json_brief(const nlohmann::json& j);
// A string for an error message: control characters replaced by '?'.
std::string printable(std::string_view s);

}  // namespace wersa

#include "wersa/common/json.h"

#include <set>
#include <vector>

#include "wersa/common/error.h"
#include "wersa/common/file.h"

namespace wersa {

using json = nlohmann::json;

std::string printable(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

std::string json_brief(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return printable(s);
}

json parse_json(std::string_view text, const std::string& where, int max_depth) {
  const size_t nul = text.find('\0');
  WERSA_CHECK(nul == std::string_view::npos, where, ": invalid JSON: a NUL byte at offset ", nul);
  std::vector<std::set<std::string>> keys;  // one set per open object
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) -> bool {
    if (ev == json::parse_event_t::object_start || ev == json::parse_event_t::array_start)
      WERSA_CHECK(depth < max_depth, where, ": invalid JSON: nested more than ", max_depth, " levels deep");
    if (ev == json::parse_event_t::object_start) keys.emplace_back();
    if (ev == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (ev == json::parse_event_t::key && !keys.empty() && parsed.is_string()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      WERSA_CHECK(keys.back().insert(k).second, where, ": invalid JSON: duplicate key '", printable(k), "'");
    }
    return true;
  };
  try {
    // strict: anything after the value but white space is an error
    return json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    std::string msg = e.what();
    const size_t close = msg.find("] ");
    if (msg.rfind("[json.exception.", 0) == 0 && close != std::string::npos) msg = msg.substr(close + 2);
    WERSA_FAIL(where, ": invalid JSON: ", printable(msg));
  }
}

json read_json_file(const std::string& path, int max_depth, size_t max_bytes) {
  return parse_json(read_file(path, max_bytes), path, max_depth);
}

}  // namespace wersa

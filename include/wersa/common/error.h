// Errors. User errors (bad config, bad file, bad flag) are wersa::Error with a one-line message
// that names the file/key/value and what was expected; WERSA_CHECK raises them. Internal
// invariants use WERSA_ASSERT, which is always on (also in release builds) and aborts with the
// location: an assert firing is a bug in the engine, never the user's fault.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace wersa {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& msg);

namespace detail {
template <class... A>
std::string cat(const A&... a) {
  std::ostringstream os;
  (os << ... << a);
  return os.str();
}
}  // namespace detail

}  // namespace wersa

// Throws wersa::Error(message) when cond is false. The message arguments are streamed.
#define WERSA_CHECK(cond, ...)                                            \
  do {                                                                    \
    if (!(cond)) throw ::wersa::Error(::wersa::detail::cat(__VA_ARGS__)); \
  } while (0)

#define WERSA_FAIL(...) throw ::wersa::Error(::wersa::detail::cat(__VA_ARGS__))

// Always-on internal invariant.
#define WERSA_ASSERT(cond, ...)                                                                            \
  do {                                                                                                     \
    if (!(cond)) ::wersa::assert_fail(#cond, __FILE__, __LINE__, ::wersa::detail::cat("", ##__VA_ARGS__)); \
  } while (0)

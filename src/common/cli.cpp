#include "wersa/common/cli.h"

#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "wersa/common/error.h"

namespace wersa {

int run_cli(const std::function<int()>& body) {
  auto one_line = [](std::string s) {
    for (char& c : s)
      if (c == '\n' || c == '\r') c = ' ';
    return s;
  };
  try {
    return body();
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", one_line(e.what()).c_str());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", one_line(e.what()).c_str());
  }
  return 1;
}

}  // namespace wersa

// Shared by the command-line tools: runs a tool body, turning every error into one line on
// stderr starting with "error:" and a non-zero exit status.
#pragma once
#include <functional>

namespace wersa {
int run_cli(const std::function<int()>& body);
}

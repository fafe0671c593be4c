// Logging goes through spdlog; this header only fixes the format once for every tool.
#pragma once
#include <spdlog/spdlog.h>

namespace wersa {
void init_logging(bool verbose = false);
}

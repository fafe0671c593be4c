#include "wersa/common/log.h"

namespace wersa {
void init_logging(bool verbose) {
  spdlog::set_pattern("%H:%M:%S %^%l%$ %v");
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::info);
}
}  // namespace wersa

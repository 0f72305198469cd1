#include "logger.h"

namespace avl {

void Logger::Log(int32_t level, const std::string& message) {
  if (!Enabled(level)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (fn_ != nullptr) fn_(user_, level, message.c_str());
}

void Logger::Detach() {
  std::lock_guard<std::mutex> lock(mutex_);
  fn_ = nullptr;
  user_ = nullptr;
}

}  // namespace avl

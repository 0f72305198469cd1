// The context's log sink. Shared by every object made from a context; Detach() guarantees the
// callback is never called again (avl_context_release relies on it).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "avatarlab/avatarlab.h"

namespace avl {

class Logger {
 public:
  Logger(avl_log_fn fn, void* user, int32_t min_level) : fn_(fn), user_(user), level_(min_level) {}

  void SetLevel(int32_t level) { level_.store(level); }
  bool Enabled(int32_t level) const { return fn_ != nullptr && level >= level_.load(); }
  void Log(int32_t level, const std::string& message);
  void Detach();

 private:
  // Held while calling out, so Detach() waits for a callback in flight to return.
  std::mutex mutex_;
  avl_log_fn fn_;
  void* user_;
  std::atomic<int32_t> level_;
};

using LoggerPtr = std::shared_ptr<Logger>;

}  // namespace avl

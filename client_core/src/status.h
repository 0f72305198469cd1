// Status codes, their names, and the per-thread last-error message behind avl_last_error.
#pragma once

#include <string>
#include <utility>

#include "avatarlab/avatarlab.h"

namespace avl {

// An error travelling inside the library: a public status code and an actionable message.
struct Error {
  avl_status code = AVL_OK;
  std::string message;

  bool ok() const { return code == AVL_OK; }
  static Error Ok() { return {}; }
};

inline Error MakeError(avl_status code, std::string message) {
  return Error{code, std::move(message)};
}

const char* StatusString(avl_status status);

// Records `error` as this thread's last error and returns its code, so boundary functions can
// `return Fail(...)` in one line.
avl_status Fail(const Error& error);
avl_status Fail(avl_status code, std::string message);
const char* LastError();

}  // namespace avl

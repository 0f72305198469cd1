#include "status.h"

namespace avl {
namespace {
thread_local std::string t_last_error;
}  // namespace

const char* StatusString(avl_status status) {
  switch (status) {
    case AVL_OK: return "AVL_OK: success";
    case AVL_NO_NEW_FRAME: return "AVL_NO_NEW_FRAME: nothing new (not an error)";
    case AVL_ERR_INVALID_ARGUMENT: return "AVL_ERR_INVALID_ARGUMENT: bad argument from the caller";
    case AVL_ERR_VERSION_MISMATCH:
      return "AVL_ERR_VERSION_MISMATCH: caller built against an unsupported API version";
    case AVL_ERR_BAD_STATE: return "AVL_ERR_BAD_STATE: not valid in the object's current state";
    case AVL_ERR_BUFFER_TOO_SMALL: return "AVL_ERR_BUFFER_TOO_SMALL: destination buffer too small";
    case AVL_ERR_OUT_OF_MEMORY: return "AVL_ERR_OUT_OF_MEMORY: allocation failed";
    case AVL_ERR_UNAVAILABLE: return "AVL_ERR_UNAVAILABLE: service unreachable or not ready";
    case AVL_ERR_UNAUTHENTICATED: return "AVL_ERR_UNAUTHENTICATED: missing or wrong bearer token";
    case AVL_ERR_NOT_FOUND: return "AVL_ERR_NOT_FOUND: unknown avatar or voice";
    case AVL_ERR_RESOURCE_EXHAUSTED: return "AVL_ERR_RESOURCE_EXHAUSTED: a service limit was hit";
    case AVL_ERR_FAILED_PRECONDITION:
      return "AVL_ERR_FAILED_PRECONDITION: the service lacks what this call needs";
    case AVL_ERR_DEADLINE_EXCEEDED: return "AVL_ERR_DEADLINE_EXCEEDED: timed out";
    case AVL_ERR_CANCELLED: return "AVL_ERR_CANCELLED: cancelled";
    case AVL_ERR_REJECTED: return "AVL_ERR_REJECTED: the service rejected the request";
    case AVL_ERR_SERVER_INTERNAL: return "AVL_ERR_SERVER_INTERNAL: the service failed internally";
    case AVL_ERR_PROTOCOL: return "AVL_ERR_PROTOCOL: unexpected message from the service";
    case AVL_ERR_DECODE: return "AVL_ERR_DECODE: frame pixels could not be decoded";
    case AVL_ERR_INTERNAL: return "AVL_ERR_INTERNAL: bug in the AvatarLab client library";
    default: return "AVL_ERR_UNKNOWN: unknown status code";
  }
}

avl_status Fail(const Error& error) {
  t_last_error = error.message;
  return error.code;
}

avl_status Fail(avl_status code, std::string message) {
  t_last_error = std::move(message);
  return code;
}

const char* LastError() { return t_last_error.c_str(); }

}  // namespace avl

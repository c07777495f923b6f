#include "io/errno_status.h"

#include <cerrno>
#include <cstring>

namespace numagrid::io::detail {

std::string ErrnoText(int err) {
  char buf[128];
  // GNU strerror_r returns the message, maybe not in buf.
  return strerror_r(err, buf, sizeof buf);
}

Status ErrnoStatus(int err, const std::string& context) {
  std::string m = context + ": " + ErrnoText(err);
  switch (err) {
    case ENOENT:
      return NotFound(std::move(m));
    case EEXIST:
      return AlreadyExists(std::move(m));
    case EACCES:
    case EPERM:
      return PermissionDenied(std::move(m));
    case ENOSPC:
    case EDQUOT:
      return ResourceExhausted(std::move(m));
    default:
      return IoError(std::move(m));
  }
}

Status ErrnoIoError(int err, const std::string& context) {
  return IoError(context + ": " + ErrnoText(err));
}

}  // namespace numagrid::io::detail

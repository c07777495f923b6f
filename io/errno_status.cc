#include "io/errno_status.h"

#include <cerrno>
#include <cstring>

namespace numagrid::io::detail {

Status ErrnoStatus(int err, const std::string& context) {
  std::string m = context + ": " + std::strerror(err);
  switch (err) {
    case ENOENT: return NotFound(std::move(m));
    case EEXIST: return AlreadyExists(std::move(m));
    case EACCES:
    case EPERM: return PermissionDenied(std::move(m));
    case ENOSPC:
    case EDQUOT: return ResourceExhausted(std::move(m));
    default: return IoError(std::move(m));
  }
}

Status ErrnoIoError(int err, const std::string& context) {
  return IoError(context + ": " + std::strerror(err));
}

}  // namespace numagrid::io::detail

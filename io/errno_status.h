// The module edge for system call results: an errno and what was being done
// become a Status whose code says what the caller does next.
#pragma once

#include <string>

#include "numagrid/status.h"

namespace numagrid::io::detail {

// strerror(err), without strerror's shared buffer.
std::string ErrnoText(int err);

// `err` is a positive errno. ENOENT -> kNotFound, EEXIST -> kAlreadyExists,
// EACCES/EPERM -> kPermissionDenied, ENOSPC/EDQUOT -> kResourceExhausted,
// anything else -> kIoError. The message is "<context>: <strerror>".
Status ErrnoStatus(int err, const std::string& context);

// The same for I/O on a file already open (write, sync, read), which is
// always kIoError: no other code tells the caller anything more useful.
Status ErrnoIoError(int err, const std::string& context);

}  // namespace numagrid::io::detail

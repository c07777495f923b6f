// Whether this process may use io_uring, which the journal needs. Kernels and
// sandboxes can forbid it (sysctl kernel.io_uring_disabled, seccomp), and an
// operator should learn that from `numagrid topology`, not from a failing
// worker.
#pragma once

#include <string>

#include "numagrid/status.h"

namespace numagrid::io {

struct UringSupport {
  bool available = false;
  std::string detail;  // "ok" or the reason, e.g. "io_uring_queue_init: EPERM"
};

// Sets up a small ring, writes 4 KiB through it to an unlinked temporary file
// in `dir`, and tears it down. Thread-safe.
UringSupport ProbeUring(const std::string& dir = "/tmp");

}  // namespace numagrid::io

// The production JournalDevice: writes and fdatasyncs go through an
// io_uring owned by the device (one ring per journal writer); file creation,
// directory syncs and closes are rare and stay plain system calls.
//
// A batch is submitted as one chain: the write SQEs linked (IOSQE_IO_LINK)
// in file order, ending in an fdatasync (IORING_FSYNC_DATASYNC), so one
// io_uring_enter makes a whole batch durable. A short write breaks the chain
// (the kernel cancels the rest with -ECANCELED); the device resubmits from
// where the write stopped.
//
// Thread safety: thread-compatible.
#pragma once

#include <cstdint>
#include <memory>

#include "io/journal_device.h"
#include "numagrid/status.h"

namespace numagrid::io {

struct UringDeviceOptions {
  // Submission queue entries; a chain longer than this is split into rounds
  // and only the last one carries the fdatasync.
  std::uint32_t queue_depth = 8;
  // Largest single write SQE. The kernel caps one write near 2 GiB; tests
  // lower it to exercise multi-SQE chains.
  std::uint32_t max_write_bytes = 1U << 30;
  // Register the current file with the ring (IOSQE_FIXED_FILE), which saves
  // the per-request file reference that a multi-threaded process pays for.
  // Falls back to plain descriptors if the kernel refuses.
  bool register_files = true;
};

// A device with its own ring, or kIoError when io_uring cannot be set up
// here (the message says why: "io_uring_queue_init: Operation not
// permitted"), or kInvalidArgument for a queue depth outside [2, 4096].
Result<std::unique_ptr<JournalDevice>> OpenUringJournalDevice(
    const UringDeviceOptions& options = {});

}  // namespace numagrid::io

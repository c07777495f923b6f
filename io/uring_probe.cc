#include "io/uring_probe.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <liburing.h>

namespace numagrid::io {

UringSupport ProbeUring(const std::string& dir) {
  io_uring ring;
  int rc = io_uring_queue_init(4, &ring, 0);
  if (rc < 0)
    return {false, std::string("io_uring_queue_init: ") + std::strerror(-rc)};
  UringSupport out{true, "ok"};
  const int fd = open(dir.c_str(), O_TMPFILE | O_RDWR, 0600);
  if (fd < 0) {
    out.detail =
        "ring ok; no temporary file in " + dir + ": " + std::strerror(errno);
  } else {
    std::vector<char> buf(4096, 'x');
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_write(sqe, fd, buf.data(), static_cast<unsigned>(buf.size()),
                        0);
    io_uring_cqe* cqe = nullptr;
    rc = io_uring_submit_and_wait(&ring, 1);
    if (rc >= 0) rc = io_uring_wait_cqe(&ring, &cqe);
    if (rc < 0) {
      out = {false, std::string("io_uring submit: ") + std::strerror(-rc)};
    } else if (cqe->res != static_cast<int>(buf.size())) {
      out = {false, "io_uring write returned " + std::to_string(cqe->res)};
    }
    if (cqe != nullptr) io_uring_cqe_seen(&ring, cqe);
    close(fd);
  }
  io_uring_queue_exit(&ring);
  return out;
}

}  // namespace numagrid::io

// MetricsServer: a small blocking HTTP server on a thread of its own that
// answers `GET /metrics` with the grid's Prometheus text
// (core/prometheus_format.h), read fresh for every request; 404 for any
// other path, 405 for any other method. One connection at a time, HTTP/1.0
// style (the response ends by closing the connection). The watchdog runs it
// with `numagrid start --metrics-listen ADDRESS:PORT`.
//
// Thread safety: Start and the destructor from one thread; the server's
// own thread does the rest. Its atomics are process-local (a stop flag).
//
// Crash safety: it only reads the grid, through a handle of its own (a
// process slot, repaired like any attached process's when the watchdog
// dies); a kill leaves a half-sent response, which the scraper sees as a
// failed scrape, and nothing in shared memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "numagrid/status.h"

namespace numagrid::core {

class GridHandle;

struct MetricsListen {
  std::uint32_t ipv4 = 0;  // host byte order
  std::uint16_t port = 0;  // 0: any free port
};

// Parses "A.B.C.D:PORT" or "localhost:PORT". A non-loopback address
// (outside 127.0.0.0/8) is kInvalidArgument unless `allow_any`.
Result<MetricsListen> ParseMetricsListen(std::string_view text, bool allow_any);

class MetricsServer {
 public:
  // Attaches to grid `grid_name` (a process slot of its own), binds and
  // listens, then serves on a new thread. Errors: Attach's; kIoError
  // (socket, bind: e.g. the port is taken).
  static Result<std::unique_ptr<MetricsServer>> Start(
      std::string_view grid_name, const MetricsListen& listen);
  // Stops serving (within 100 ms) and detaches.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port it listens on (the one chosen, when asked for port 0).
  std::uint16_t port() const noexcept { return port_; }

 private:
  MetricsServer() = default;
  void Serve();
  void Answer(int fd);

  std::unique_ptr<GridHandle> grid_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace numagrid::core

#include "core/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "core/grid_handle.h"
#include "core/prometheus_format.h"
#include "core/stats.h"

namespace numagrid::core {
namespace {

// How long a stop may take to be noticed, and a client to send its request.
constexpr int kPollMs = 100;
constexpr int kRequestTimeoutMs = 2000;
constexpr std::size_t kMaxRequestBytes = 8192;

// strerror, thread-safe (the GNU strerror_r, which returns the text).
std::string ErrnoText(int err) {
  char buf[128];
  return strerror_r(err, buf, sizeof buf);
}

void WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the client went away; nothing to do
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void Respond(int fd, std::string_view status, std::string_view content_type,
             std::string_view body) {
  std::string head = "HTTP/1.0 " + std::string(status) +
                     "\r\nContent-Type: " + std::string(content_type) +
                     "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n";
  WriteAll(fd, head);
  WriteAll(fd, body);
}

}  // namespace

Result<MetricsListen> ParseMetricsListen(std::string_view text,
                                         bool allow_any) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return InvalidArgument("--metrics-listen wants ADDRESS:PORT, got '" +
                           std::string(text) + "'");
  }
  const std::string host(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(
      port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535 || port_text.empty()) {
    return InvalidArgument("--metrics-listen: bad port '" +
                           std::string(port_text) + "'");
  }
  MetricsListen l;
  l.port = static_cast<std::uint16_t>(port);
  in_addr addr{};
  if (host == "localhost") {
    l.ipv4 = INADDR_LOOPBACK;
  } else if (inet_pton(AF_INET, host.c_str(), &addr) == 1) {
    l.ipv4 = ntohl(addr.s_addr);
  } else {
    return InvalidArgument("--metrics-listen: '" + host +
                           "' is not an IPv4 address");
  }
  if ((l.ipv4 >> 24) != 127 && !allow_any) {
    return InvalidArgument(
        "--metrics-listen: " + host +
        " is not a loopback address; /metrics has no authentication, so "
        "serving it beyond this host needs --metrics-listen-any");
  }
  return l;
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    std::string_view grid_name, const MetricsListen& listen) {
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  auto h = GridHandle::Attach(grid_name);
  if (!h.ok()) return h.status();
  s->grid_ = std::move(*h);
  s->listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) {
    return IoError("metrics socket: " + ErrnoText(errno));
  }
  const int one = 1;
  setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(listen.port);
  sa.sin_addr.s_addr = htonl(listen.ipv4);
  if (bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(s->listen_fd_, 16) != 0) {
    const int err = errno;
    close(s->listen_fd_);
    s->listen_fd_ = -1;
    return IoError("metrics: cannot listen on port " +
                   std::to_string(listen.port) + ": " + ErrnoText(err));
  }
  socklen_t len = sizeof sa;
  getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
  s->port_ = ntohs(sa.sin_port);
  s->thread_ = std::thread([p = s.get()] { p->Serve(); });
  return s;
}

MetricsServer::~MetricsServer() {
  // relaxed: a flag the server thread polls every kPollMs; join orders
  // the rest.
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

void MetricsServer::Serve() {
  while (!stop_.load(std::memory_order_relaxed)) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, kPollMs) <= 0) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Answer(fd);
    close(fd);
  }
}

void MetricsServer::Answer(int fd) {
  // Read up to the end of the request head (or the limit, or a timeout).
  std::string req;
  char buf[1024];
  while (req.find("\r\n\r\n") == std::string::npos &&
         req.find("\n\n") == std::string::npos &&
         req.size() < kMaxRequestBytes) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, kRequestTimeoutMs) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    req.append(buf, static_cast<std::size_t>(n));
  }
  const std::size_t eol = req.find_first_of("\r\n");
  const std::string_view line(req.data(),
                              eol == std::string::npos ? req.size() : eol);
  // "METHOD TARGET VERSION"
  const auto sp1 = line.find(' ');
  const auto sp2 =
      sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    Respond(fd, "400 Bad Request", "text/plain", "bad request\n");
    return;
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (const auto q = target.find('?'); q != std::string_view::npos) {
    target = target.substr(0, q);
  }
  if (target != "/metrics") {
    Respond(fd, "404 Not Found", "text/plain", "only /metrics is served\n");
    return;
  }
  if (method != "GET") {
    Respond(fd, "405 Method Not Allowed", "text/plain", "GET only\n");
    return;
  }
  const std::string body = FormatPrometheus(CollectStats(*grid_));
  Respond(fd, "200 OK", kPrometheusContentType, body);
}

}  // namespace numagrid::core

// The memcached target: a memcached server on a unix socket (started outside
// the bench, e.g. by scripts/bench-peers.sh), one libmemcached handle (one
// connection, text protocol, blocking) per worker process. Read = get (the
// library returns a malloc'ed copy; it is copied into the session's buffer
// like every other target's value, then freed), Update = replace (only if
// the key exists), Insert = add. memcached has no scan or range operation,
// so scan workloads (E) are not run against it (ScanUnsupported).
//
// The bench owns the server: flush_all before the load and at the end.
#include <libmemcached/memcached.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/numagrid_bench/peer_targets.h"

namespace numagrid::bench {
namespace {

struct MemcDeleter {
  void operator()(memcached_st* m) const { memcached_free(m); }
};
using MemcPtr = std::unique_ptr<memcached_st, MemcDeleter>;

std::string Error(const memcached_st* m, memcached_return_t rc) {
  return memcached_strerror(m, rc);
}

// A handle on `socket` that has answered a version request.
Result<MemcPtr> Connect(const std::string& socket) {
  MemcPtr m(memcached_create(nullptr));
  if (m == nullptr) return ResourceExhausted("memcached_create failed");
  memcached_return_t rc =
      memcached_server_add_unix_socket(m.get(), socket.c_str());
  if (rc == MEMCACHED_SUCCESS) {
    memcached_behavior_set(m.get(), MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, 2000);
    memcached_behavior_set(m.get(), MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 10000);
    rc = memcached_version(m.get());
  }
  if (rc != MEMCACHED_SUCCESS) {
    return Unavailable("memcached: cannot reach a server at " + socket + ": " +
                       memcached_last_error_message(m.get()) +
                       ". Start memcached with '-s " + socket +
                       "' or pass --memcached-socket (scripts/bench-peers.sh "
                       "starts its own server)");
  }
  return m;
}

class MemcachedSession final : public Session {
 public:
  MemcachedSession(MemcPtr m, std::size_t value_cap)
      : m_(std::move(m)), buf_(value_cap) {}

  Outcome Read(std::string_view key) override {
    std::size_t len = 0;
    std::uint32_t flags = 0;
    memcached_return_t rc = MEMCACHED_SUCCESS;
    char* v =
        memcached_get(m_.get(), key.data(), key.size(), &len, &flags, &rc);
    if (v == nullptr) {
      if (rc == MEMCACHED_NOTFOUND) return Outcome::kNotFound;
      return Fail("get: " + Error(m_.get(), rc));
    }
    std::memcpy(buf_.data(), v, std::min(len, buf_.size()));
    std::free(v);
    return Outcome::kOk;
  }
  Outcome Update(std::string_view key, std::string_view value) override {
    const memcached_return_t rc = memcached_replace(
        m_.get(), key.data(), key.size(), value.data(), value.size(), 0, 0);
    if (rc == MEMCACHED_SUCCESS) return Outcome::kOk;
    if (rc == MEMCACHED_NOTSTORED) return Outcome::kNotFound;
    return Fail("replace: " + Error(m_.get(), rc));
  }
  Outcome Insert(std::string_view key, std::string_view value) override {
    const memcached_return_t rc = memcached_add(
        m_.get(), key.data(), key.size(), value.data(), value.size(), 0, 0);
    if (rc == MEMCACHED_SUCCESS) return Outcome::kOk;
    if (rc == MEMCACHED_NOTSTORED || rc == MEMCACHED_DATA_EXISTS) {
      return Fail("insert: key exists");
    }
    return Fail("add: " + Error(m_.get(), rc));
  }
  Outcome Scan(std::string_view, std::uint64_t, std::uint32_t) override {
    return Fail("memcached has no scan");  // not reached: see ScanUnsupported
  }

 private:
  MemcPtr m_;
  std::vector<char> buf_;
};

class MemcachedTarget final : public Target {
 public:
  explicit MemcachedTarget(std::string socket) : socket_(std::move(socket)) {}
  ~MemcachedTarget() override { Cleanup(); }

  std::string_view name() const override { return "memcached"; }
  bool forks() const override { return true; }

  Status Preflight() override { return Connect(socket_).status(); }

  Status Prepare(const LoadSpec& spec, std::string_view value,
                 const volatile std::sig_atomic_t* interrupted) override {
    spec_ = spec;
    auto m = Connect(socket_);
    if (!m.ok()) return m.status();
    memcached_return_t rc = memcached_flush(m->get(), 0);
    if (rc != MEMCACHED_SUCCESS) {
      return IoError("memcached flush_all: " + Error(m->get(), rc));
    }
    owns_data_ = true;
    KeySpace keys(spec.key_size);
    char kbuf[KeySpace::kKeyBufferSize];
    for (std::uint64_t id = 0; id < spec.records; ++id) {
      if ((id & 4095) == 0 && *interrupted) return Status::Ok();
      const std::string_view k = keys.Format(id, kbuf);
      rc = memcached_set(m->get(), k.data(), k.size(), value.data(),
                         value.size(), 0, 0);
      if (rc != MEMCACHED_SUCCESS) {
        return IoError("memcached load set: " + Error(m->get(), rc) +
                       " (is the server's memory, -m, large enough?)");
      }
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<Session>> Open() override {
    auto m = Connect(socket_);
    if (!m.ok()) return m.status();
    return std::unique_ptr<Session>(
        new MemcachedSession(std::move(*m), spec_.value_size + 64));
  }

  std::string Cleanup() override {
    if (!owns_data_) return {};
    owns_data_ = false;
    auto m = Connect(socket_);
    if (!m.ok()) return m.status().ToString();
    const memcached_return_t rc = memcached_flush(m->get(), 0);
    return rc == MEMCACHED_SUCCESS
               ? std::string()
               : "memcached flush_all: " + Error(m->get(), rc);
  }

  std::string Describe() const override {
    return "memcached at " + socket_ + ", libmemcached " +
           std::string(LIBMEMCACHED_VERSION_STRING) +
           ", text protocol, one connection per worker process; get, "
           "replace, add";
  }
  std::string Persistence() const override {
    return "none: server memory (memcached has no persistence; items may "
           "also be evicted when its -m limit is reached)";
  }
  std::string ScanUnsupported() const override {
    return "memcached has no scan or range operation (no key order, no "
           "iteration over items)";
  }

 private:
  std::string socket_;
  LoadSpec spec_;
  bool owns_data_ = false;
};

}  // namespace

std::unique_ptr<Target> MakeMemcachedTarget(std::string socket) {
  return std::make_unique<MemcachedTarget>(std::move(socket));
}

}  // namespace numagrid::bench

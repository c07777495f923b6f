// The Redis targets: a Redis server on a unix socket (started outside the
// bench, e.g. by scripts/bench-peers.sh), one hiredis connection per worker
// process, blocking request/reply. Read = GET, Update = SET key value XX
// (only if it exists), Insert = SET key value NX, Scan = one MGET of the N
// sequential key ids (the same keys tbb and boost-map look up; Redis has no
// ordered scan over plain keys). `redis` and `redis-aof` differ only in the
// server they talk to; `redis-aof` requires `appendonly yes`. The server's
// persistence settings are read with CONFIG GET and reported.
//
// The bench owns the server's database 0: FLUSHDB before the load and at
// the end.
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/numagrid_bench/peer_targets.h"

namespace numagrid::bench {
namespace {

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

Result<ContextPtr> Connect(const std::string& socket) {
  const timeval connect_timeout{2, 0};
  ContextPtr c(redisConnectUnixWithTimeout(socket.c_str(), connect_timeout));
  if (c == nullptr || c->err != 0) {
    return Unavailable(
        "redis: cannot connect to " + socket + ": " +
        (c == nullptr ? std::string("out of memory") : std::string(c->errstr)) +
        ". Start redis-server with 'unixsocket " + socket +
        "' or pass --redis-socket / --redis-aof-socket "
        "(scripts/bench-peers.sh starts its own servers)");
  }
  const timeval io_timeout{10, 0};  // a stuck server fails the run
  redisSetTimeout(c.get(), io_timeout);
  return c;
}

// One command; the reply, or an error naming `what`.
Result<ReplyPtr> Command(redisContext* c,
                         std::initializer_list<std::string_view> args,
                         const char* what) {
  const char* argv[8];
  std::size_t argvlen[8];
  int argc = 0;
  for (std::string_view a : args) {
    argv[argc] = a.data();
    argvlen[argc++] = a.size();
  }
  ReplyPtr r(
      static_cast<redisReply*>(redisCommandArgv(c, argc, argv, argvlen)));
  if (r == nullptr) {
    return IoError(std::string("redis ") + what + ": " + c->errstr);
  }
  if (r->type == REDIS_REPLY_ERROR) {
    return IoError(std::string("redis ") + what + ": " +
                   std::string(r->str, r->len));
  }
  return r;
}

// CONFIG GET name: its value, or "?" if the server does not say.
std::string ConfigGet(redisContext* c, std::string_view name) {
  auto r = Command(c, {"CONFIG", "GET", name}, "CONFIG GET");
  if (!r.ok() || (*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2 ||
      (*r)->element[1]->type != REDIS_REPLY_STRING) {
    return "?";
  }
  return {(*r)->element[1]->str, (*r)->element[1]->len};
}

class RedisSession final : public Session {
 public:
  RedisSession(ContextPtr c, std::size_t key_size, std::size_t value_cap)
      : c_(std::move(c)),
        keys_(key_size),
        buf_(value_cap),
        scan_keys_(kMaxScanLength * KeySpace::kKeyBufferSize) {}

  Outcome Read(std::string_view key) override {
    const char* argv[] = {"GET", key.data()};
    const std::size_t len[] = {3, key.size()};
    ReplyPtr r = Call(2, argv, len);
    if (r == nullptr) return Fail(std::string("GET: ") + c_->errstr);
    if (r->type == REDIS_REPLY_NIL) return Outcome::kNotFound;
    if (r->type != REDIS_REPLY_STRING) return Unexpected("GET", *r);
    std::memcpy(buf_.data(), r->str,
                std::min(static_cast<std::size_t>(r->len), buf_.size()));
    return Outcome::kOk;
  }
  Outcome Update(std::string_view key, std::string_view value) override {
    return Set(key, value, "XX", Outcome::kNotFound);
  }
  Outcome Insert(std::string_view key, std::string_view value) override {
    const Outcome o = Set(key, value, "NX", Outcome::kFailed);
    return o == Outcome::kFailed && first_error_.empty()
               ? Fail("insert: key exists")
               : o;
  }
  Outcome Scan(std::string_view, std::uint64_t start_id,
               std::uint32_t count) override {
    count = std::min(count, kMaxScanLength);
    argv_.assign(1, "MGET");
    len_.assign(1, 4);
    for (std::uint32_t i = 0; i < count; ++i) {
      const std::string_view k =
          keys_.Format(start_id + i, &scan_keys_[i * KeySpace::kKeyBufferSize]);
      argv_.push_back(k.data());
      len_.push_back(k.size());
    }
    ReplyPtr r =
        Call(static_cast<int>(argv_.size()), argv_.data(), len_.data());
    if (r == nullptr) return Fail(std::string("MGET: ") + c_->errstr);
    if (r->type != REDIS_REPLY_ARRAY) return Unexpected("MGET", *r);
    std::uint32_t found = 0;
    for (std::size_t i = 0; i < r->elements; ++i) {
      const redisReply* e = r->element[i];
      if (e->type != REDIS_REPLY_STRING) continue;
      std::memcpy(buf_.data(), e->str,
                  std::min(static_cast<std::size_t>(e->len), buf_.size()));
      ++found;
    }
    return found == 0 ? Outcome::kNotFound : Outcome::kOk;
  }

 private:
  ReplyPtr Call(int argc, const char** argv, const std::size_t* len) {
    return ReplyPtr(
        static_cast<redisReply*>(redisCommandArgv(c_.get(), argc, argv, len)));
  }
  Outcome Unexpected(const char* cmd, const redisReply& r) {
    return Fail(std::string(cmd) + ": unexpected reply" +
                (r.type == REDIS_REPLY_ERROR
                     ? ": " + std::string(r.str, r.len)
                     : " type " + std::to_string(r.type)));
  }
  // SET key value XX|NX: OK, or nil (then `on_nil`).
  Outcome Set(std::string_view key, std::string_view value, const char* cond,
              Outcome on_nil) {
    const char* argv[] = {"SET", key.data(), value.data(), cond};
    const std::size_t len[] = {3, key.size(), value.size(), 2};
    ReplyPtr r = Call(4, argv, len);
    if (r == nullptr) return Fail(std::string("SET: ") + c_->errstr);
    if (r->type == REDIS_REPLY_NIL) return on_nil;
    if (r->type != REDIS_REPLY_STATUS) return Unexpected("SET", *r);
    return Outcome::kOk;
  }

  ContextPtr c_;
  KeySpace keys_;
  std::vector<char> buf_;
  std::vector<char> scan_keys_;
  std::vector<const char*> argv_;
  std::vector<std::size_t> len_;
};

class RedisTarget final : public Target {
 public:
  RedisTarget(std::string name, std::string socket, bool require_aof)
      : name_(std::move(name)),
        socket_(std::move(socket)),
        require_aof_(require_aof) {}
  ~RedisTarget() override { Cleanup(); }

  std::string_view name() const override { return name_; }
  bool forks() const override { return true; }

  Status Preflight() override {
    auto c = Connect(socket_);
    if (!c.ok()) return c.status();
    return ReadServer(c->get());
  }

  Status Prepare(const LoadSpec& spec, std::string_view value,
                 const volatile std::sig_atomic_t* interrupted) override {
    spec_ = spec;
    auto c = Connect(socket_);
    if (!c.ok()) return c.status();
    redisContext* ctx = c->get();
    if (Status s = ReadServer(ctx); !s.ok()) return s;
    if (auto r = Command(ctx, {"FLUSHDB"}, "FLUSHDB"); !r.ok()) {
      return r.status();
    }
    return Load(ctx, spec, value, interrupted);
  }

  // Reads the server's version and persistence settings.
  Status ReadServer(redisContext* ctx) {
    appendonly_ = ConfigGet(ctx, "appendonly");
    appendfsync_ = ConfigGet(ctx, "appendfsync");
    save_ = ConfigGet(ctx, "save");
    if (auto info = Command(ctx, {"INFO", "server"}, "INFO");
        info.ok() && (*info)->type == REDIS_REPLY_STRING) {
      const std::string text((*info)->str, (*info)->len);
      const std::size_t at = text.find("redis_version:");
      if (at != std::string::npos) {
        version_ =
            text.substr(at + 14, text.find_first_of("\r\n", at) - at - 14);
      }
    }
    if (require_aof_ && appendonly_ != "yes") {
      return InvalidArgument(
          name_ + ": the server at " + socket_ + " has appendonly " +
          appendonly_ +
          "; this target measures Redis with its append-only file: start it "
          "with 'appendonly yes appendfsync everysec'");
    }
    return Status::Ok();
  }

  Status Load(redisContext* ctx, const LoadSpec& spec, std::string_view value,
              const volatile std::sig_atomic_t* interrupted) {
    owns_data_ = true;
    // Pipelined load: 1000 SETs, then their replies.
    KeySpace keys(spec.key_size);
    char kbuf[KeySpace::kKeyBufferSize];
    for (std::uint64_t id = 0; id < spec.records && !*interrupted;) {
      const std::uint64_t end = std::min(spec.records, id + 1000);
      const std::uint64_t batch = end - id;
      for (; id < end; ++id) {
        const std::string_view k = keys.Format(id, kbuf);
        const char* argv[] = {"SET", k.data(), value.data()};
        const std::size_t len[] = {3, k.size(), value.size()};
        if (redisAppendCommandArgv(ctx, 3, argv, len) != REDIS_OK) {
          return IoError("redis load: " + std::string(ctx->errstr));
        }
      }
      for (std::uint64_t i = 0; i < batch; ++i) {
        void* reply = nullptr;
        if (redisGetReply(ctx, &reply) != REDIS_OK) {
          return IoError("redis load: " + std::string(ctx->errstr));
        }
        ReplyPtr r(static_cast<redisReply*>(reply));
        if (r->type == REDIS_REPLY_ERROR) {
          return IoError("redis load: " + std::string(r->str, r->len));
        }
      }
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<Session>> Open() override {
    auto c = Connect(socket_);
    if (!c.ok()) return c.status();
    return std::unique_ptr<Session>(
        new RedisSession(std::move(*c), spec_.key_size, spec_.value_size + 64));
  }

  std::string Cleanup() override {
    if (!owns_data_) return {};
    owns_data_ = false;
    auto c = Connect(socket_);
    if (!c.ok()) return c.status().ToString();
    auto r = Command(c->get(), {"FLUSHDB"}, "FLUSHDB");
    return r.ok() ? std::string() : r.status().ToString();
  }

  std::string Describe() const override {
    return "Redis " + version_ + " at " + socket_ +
           ", one hiredis connection per worker process, blocking "
           "request/reply; GET, SET XX, SET NX, scan = MGET of the N ids";
  }

  std::string Persistence() const override {
    std::string p;
    if (appendonly_ == "yes") {
      p = "AOF, appendfsync " + appendfsync_ +
          (appendfsync_ == "always" ? " (fsync before each reply)"
           : appendfsync_ == "everysec"
               ? " (a background fsync every second: up to ~1 s of "
                 "acknowledged writes lost on a crash)"
               : " (the OS decides when to write)");
    } else {
      p = "appendonly " + appendonly_;
    }
    p += save_.empty() ? ", no RDB snapshots (save \"\")"
                       : ", RDB snapshots save \"" + save_ + "\"";
    if (appendonly_ != "yes" && save_.empty()) {
      p = "none: server memory (" + p + ")";
    }
    return p;
  }
  bool SyncsEachWrite() const override {
    return appendonly_ == "yes" && appendfsync_ == "always";
  }

 private:
  std::string name_;
  std::string socket_;
  bool require_aof_;
  LoadSpec spec_;
  bool owns_data_ = false;
  std::string version_ = "?";
  std::string appendonly_ = "?", appendfsync_ = "?", save_ = "?";
};

}  // namespace

std::unique_ptr<Target> MakeRedisTarget(std::string name, std::string socket,
                                        bool require_aof) {
  return std::make_unique<RedisTarget>(std::move(name), std::move(socket),
                                       require_aof);
}

}  // namespace numagrid::bench

// The LMDB targets: an LMDB environment (a copy-on-write B-tree in a memory
// map of one file) in a new directory on disk. `lmdb` opens it with
// MDB_NOSYNC (a commit returns without a sync; the OS writes the dirty pages
// back when it likes, and a system crash may lose or, with a write-back disk
// cache, corrupt recent commits); `lmdb-sync` keeps LMDB's default, an fsync
// of the data file and then of the meta page before every commit returns.
//
// Workers are processes: the parent loads the records, closes the
// environment (an MDB_env must not cross fork()), and each worker opens its
// own. Readers use one reusable read-only transaction (reset/renew per
// operation); writers are serialized by LMDB's write mutex, one transaction
// per operation.
#include <lmdb.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/numagrid_bench/peer_targets.h"

namespace numagrid::bench {
namespace {

std::string MdbError(const char* what, int rc) {
  return std::string(what) + ": " + mdb_strerror(rc);
}

MDB_val Val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

// Settings shared by the parent and the workers.
struct EnvSpec {
  std::string dir;
  std::uint64_t map_bytes = 0;
  unsigned max_readers = 126;
  unsigned flags = 0;  // MDB_NOSYNC or 0
};

// Opens the environment of `spec`. On failure *env is closed and null.
int OpenEnv(const EnvSpec& spec, MDB_env** env) {
  int rc = mdb_env_create(env);
  if (rc != 0) return rc;
  rc = mdb_env_set_mapsize(*env, spec.map_bytes);
  if (rc == 0) rc = mdb_env_set_maxreaders(*env, spec.max_readers);
  // MDB_NOTLS: the read transaction belongs to the session, not the thread.
  if (rc == 0) {
    rc = mdb_env_open(*env, spec.dir.c_str(), spec.flags | MDB_NOTLS, 0600);
  }
  if (rc != 0) {
    mdb_env_close(*env);
    *env = nullptr;
  }
  return rc;
}

class LmdbSession final : public Session {
 public:
  LmdbSession(MDB_env* env, MDB_dbi dbi, MDB_txn* read_txn,
              std::size_t value_cap)
      : env_(env), dbi_(dbi), read_txn_(read_txn), buf_(value_cap) {}
  ~LmdbSession() override {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
    mdb_txn_abort(read_txn_);
    mdb_env_close(env_);
  }
  LmdbSession(const LmdbSession&) = delete;
  LmdbSession& operator=(const LmdbSession&) = delete;

  Outcome Read(std::string_view key) override {
    int rc = mdb_txn_renew(read_txn_);
    if (rc != 0) return Fail(MdbError("mdb_txn_renew", rc));
    MDB_val k = Val(key), v;
    rc = mdb_get(read_txn_, dbi_, &k, &v);
    Outcome out = Outcome::kOk;
    if (rc == 0) {
      std::memcpy(buf_.data(), v.mv_data, std::min(v.mv_size, buf_.size()));
    } else if (rc == MDB_NOTFOUND) {
      out = Outcome::kNotFound;
    } else {
      out = Fail(MdbError("mdb_get", rc));
    }
    mdb_txn_reset(read_txn_);
    return out;
  }

  Outcome Update(std::string_view key, std::string_view value) override {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return Fail(MdbError("mdb_txn_begin", rc));
    MDB_val k = Val(key), old;
    rc = mdb_get(txn, dbi_, &k, &old);  // update, not upsert
    if (rc == MDB_NOTFOUND) {
      mdb_txn_abort(txn);
      return Outcome::kNotFound;
    }
    MDB_val v = Val(value);
    if (rc == 0) rc = mdb_put(txn, dbi_, &k, &v, 0);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return Fail(MdbError("update mdb_put", rc));
    }
    rc = mdb_txn_commit(txn);
    return rc == 0 ? Outcome::kOk : Fail(MdbError("update commit", rc));
  }

  Outcome Insert(std::string_view key, std::string_view value) override {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
    if (rc != 0) return Fail(MdbError("mdb_txn_begin", rc));
    MDB_val k = Val(key), v = Val(value);
    rc = mdb_put(txn, dbi_, &k, &v, MDB_NOOVERWRITE);
    if (rc != 0) {
      mdb_txn_abort(txn);
      return Fail(rc == MDB_KEYEXIST ? std::string("insert: key exists")
                                     : MdbError("insert mdb_put", rc));
    }
    rc = mdb_txn_commit(txn);
    return rc == 0 ? Outcome::kOk : Fail(MdbError("insert commit", rc));
  }

  // An ordered range: the `count` entries from start_key on (keys are
  // zero-padded ids, so byte order is id order).
  Outcome Scan(std::string_view start_key, std::uint64_t,
               std::uint32_t count) override {
    int rc = mdb_txn_renew(read_txn_);
    if (rc != 0) return Fail(MdbError("mdb_txn_renew", rc));
    rc = cursor_ == nullptr ? mdb_cursor_open(read_txn_, dbi_, &cursor_)
                            : mdb_cursor_renew(read_txn_, cursor_);
    if (rc != 0) {
      mdb_txn_reset(read_txn_);
      return Fail(MdbError("cursor", rc));
    }
    MDB_val k = Val(start_key), v;
    std::uint32_t found = 0;
    rc = mdb_cursor_get(cursor_, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && found < count) {
      std::memcpy(buf_.data(), v.mv_data, std::min(v.mv_size, buf_.size()));
      if (++found < count) rc = mdb_cursor_get(cursor_, &k, &v, MDB_NEXT);
    }
    mdb_txn_reset(read_txn_);
    if (rc != 0 && rc != MDB_NOTFOUND) return Fail(MdbError("scan", rc));
    return found == 0 ? Outcome::kNotFound : Outcome::kOk;
  }

 private:
  MDB_env* env_;
  MDB_dbi dbi_;
  MDB_txn* read_txn_;  // reset between operations
  MDB_cursor* cursor_ = nullptr;
  std::vector<char> buf_;
};

class LmdbTarget final : public Target {
 public:
  LmdbTarget(bool sync, std::string parent_dir)
      : sync_(sync), parent_dir_(std::move(parent_dir)) {}
  ~LmdbTarget() override { Cleanup(); }

  std::string_view name() const override {
    return sync_ ? "lmdb-sync" : "lmdb";
  }
  bool forks() const override { return true; }

  Status Preflight() override {
    if (::access(parent_dir_.c_str(), W_OK | X_OK) != 0) {
      return InvalidArgument("lmdb: cannot create environments in " +
                             parent_dir_ + ": " + std::strerror(errno) +
                             " (--disk-dir)");
    }
    return Status::Ok();
  }

  Status Prepare(const LoadSpec& spec, std::string_view value,
                 const volatile std::sig_atomic_t* interrupted) override {
    spec_ = spec;
    std::string tmpl = parent_dir_ + "/numagrid-bench-lmdb-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return IoError("lmdb: cannot create a directory in " + parent_dir_ +
                     ": " + std::strerror(errno) + " (--disk-dir)");
    }
    env_.dir = tmpl;
    const std::uint64_t entries = spec.records + spec.expected_inserts;
    // Leaf entries (8-byte node header + key + value) on half-full pages
    // after random updates, copy-on-write page copies; sparse file.
    env_.map_bytes = std::max<std::uint64_t>(
        256ULL << 20, entries * (spec.key_size + spec.value_size + 16) * 4);
    env_.max_readers = spec.max_procs + 16;
    env_.flags = sync_ ? 0 : MDB_NOSYNC;

    MDB_env* env = nullptr;
    int rc = OpenEnv(env_, &env);
    if (rc != 0) {
      return IoError(MdbError(("lmdb: open " + env_.dir).c_str(), rc));
    }
    KeySpace keys(spec.key_size);
    char kbuf[KeySpace::kKeyBufferSize];
    std::uint64_t id = 0;
    while (rc == 0 && id < spec.records && !*interrupted) {
      MDB_txn* txn = nullptr;
      rc = mdb_txn_begin(env, nullptr, 0, &txn);
      if (rc != 0) break;
      MDB_dbi dbi = 0;
      rc = mdb_dbi_open(txn, nullptr, 0, &dbi);
      // Ids ascend and are zero-padded: MDB_APPEND fills pages completely.
      for (const std::uint64_t end = std::min(spec.records, id + 10'000);
           rc == 0 && id < end; ++id) {
        MDB_val k = Val(keys.Format(id, kbuf)), v = Val(value);
        rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND);
      }
      if (rc != 0) {
        mdb_txn_abort(txn);
        break;
      }
      rc = mdb_txn_commit(txn);
    }
    // The load is on disk before the run, for both variants alike.
    if (rc == 0) rc = mdb_env_sync(env, 1);
    mdb_env_close(env);  // before any fork
    if (rc != 0) return IoError(MdbError("lmdb: load", rc));
    return Status::Ok();
  }

  Result<std::unique_ptr<Session>> Open() override {
    MDB_env* env = nullptr;
    int rc = OpenEnv(env_, &env);
    if (rc != 0) {
      return IoError(MdbError(("lmdb: open " + env_.dir).c_str(), rc));
    }
    MDB_txn* txn = nullptr;
    MDB_dbi dbi = 0;
    rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
    if (rc == 0) rc = mdb_dbi_open(txn, nullptr, 0, &dbi);
    if (rc == 0) {
      mdb_txn_reset(txn);  // kept as the session's reusable read transaction
      return std::unique_ptr<Session>(
          new LmdbSession(env, dbi, txn, spec_.value_size + 64));
    }
    if (txn != nullptr) mdb_txn_abort(txn);
    mdb_env_close(env);
    return IoError(MdbError("lmdb: open the database", rc));
  }

  std::string Cleanup() override {
    if (env_.dir.empty()) return {};
    std::error_code ec;
    std::filesystem::remove_all(env_.dir, ec);
    const std::string dir = env_.dir;
    env_.dir.clear();
    return ec ? "cannot remove " + dir + ": " + ec.message() : std::string();
  }

  std::string Describe() const override {
    return "LMDB " + std::to_string(MDB_VERSION_MAJOR) + "." +
           std::to_string(MDB_VERSION_MINOR) + "." +
           std::to_string(MDB_VERSION_PATCH) + " environment in " +
           (env_.dir.empty() ? parent_dir_ : env_.dir) + " (map " +
           std::to_string(env_.map_bytes >> 20) +
           " MiB, sparse), one write transaction per update or insert, a "
           "reused read-only transaction per read; workers are processes";
  }

  std::string Persistence() const override {
    return sync_ ? "fsync at every commit (LMDB default): an acknowledged "
                   "write is on disk"
                 : "MDB_NOSYNC: commits go to the page cache and reach the "
                   "disk when the OS writes them back; survives a process "
                   "crash, not a system crash";
  }
  bool SyncsEachWrite() const override { return sync_; }

 private:
  bool sync_;
  std::string parent_dir_;
  LoadSpec spec_;
  EnvSpec env_;
};

}  // namespace

std::unique_ptr<Target> MakeLmdbTarget(bool sync, std::string parent_dir) {
  return std::make_unique<LmdbTarget>(sync, std::move(parent_dir));
}

}  // namespace numagrid::bench

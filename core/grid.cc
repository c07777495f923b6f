// numagrid::Grid on top of core::GridHandle.
#include "numagrid/grid.h"

#include <cstring>

#include "core/base/key_hash.h"
#include "core/grid_handle.h"
#include "shm/robust_mutex.h"

namespace numagrid {

struct Grid::Impl {
  std::unique_ptr<core::GridHandle> h;

  Status Usable() const {
    if (h->usable()) return Status::Ok();
    return Panic(
        "this Grid was attached before fork(); attach anew in the child");
  }

  core::PartitionRef& PartitionFor(std::uint64_t hash) {
    return h->partition(base::PartitionOf(hash, h->partition_count()));
  }

  Result<core::WriteResult> Write(core::WriteRequest rq,
                                  Durability durability) {
    NUMAGRID_RETURN_IF_ERROR(Usable());
    NUMAGRID_RETURN_IF_ERROR(h->CheckKey(rq.key));
    NUMAGRID_RETURN_IF_ERROR(h->CheckValue(rq.value));
    bool sync = false;
    if (durability == Durability::kSync) {
      if (!h->journaled()) {
        return InvalidArgument(
            "sync durability asked for, but the grid has no journal "
            "(created with --no-journal)");
      }
      sync = true;
    } else if (durability == Durability::kGridDefault) {
      sync = h->journaled() &&
             h->journal().config.durability == core::kDurabilitySync;
    }
    rq.hash = base::KeyHash(rq.key);
    const std::uint32_t p = base::PartitionOf(rq.hash, h->partition_count());
    // No epoch pin: the writer reads old records only under the partition
    // lock, and records are freed only under that lock.
    auto r = h->partition(p).Write(rq, h->limits(), core::NowMs());
    CountWrite(rq.kind, r.ok() ? StatusCode::kOk : r.status().code());
    if (r.ok() && sync) {
      // The change's sequence is its version; durable once journaled_seq
      // passes it.
      NUMAGRID_RETURN_IF_ERROR(h->WaitDurable(p, r->version + 1));
    }
    return r;
  }

  // Adds a write's outcome to this process's counters (its own slot's
  // line: no other process writes it, so no atomic read-modify-write).
  void CountWrite(core::WriteKind kind, StatusCode code) const noexcept {
    core::ProcessCounters* c = h->counters();
    if (c == nullptr) return;
    if (code == StatusCode::kOk) {
      const bool remove = kind == core::WriteKind::kRemove ||
                          kind == core::WriteKind::kRemoveIfVersion;
      core::BumpOwned(remove ? c->removes : c->puts);
    } else if (code == StatusCode::kConflict) {
      core::BumpOwned(c->cas_failures);
    } else {
      core::BumpOwned(c->write_errors);
    }
  }

  Result<std::uint64_t> WriteVersion(core::WriteKind kind, std::string_view key,
                                     std::string_view value,
                                     std::uint64_t expected,
                                     const WriteOptions& o) {
    core::WriteRequest rq;
    rq.kind = kind;
    rq.key = key;
    rq.value = value;
    rq.expected_version = expected;
    if (o.ttl_ms != 0) {
      // Saturate: a TTL beyond the end of time means "never", not the past.
      const std::uint64_t now = core::NowMs();
      rq.expire_at_ms =
          o.ttl_ms > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + o.ttl_ms;
    }
    auto r = Write(rq, o.durability);
    if (!r.ok()) return r.status();
    return r->version;
  }
};

Grid::Grid(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Grid::Grid(Grid&&) noexcept = default;
Grid& Grid::operator=(Grid&&) noexcept = default;
Grid::~Grid() = default;

Result<Grid> Grid::Attach(std::string_view name) {
  auto h = core::GridHandle::Attach(name);
  if (!h.ok()) return h.status();
  auto impl = std::make_unique<Impl>();
  impl->h = std::move(*h);
  return Grid(std::move(impl));
}

Status Grid::Visit(
    std::string_view key,
    const std::function<void(std::string_view, std::uint64_t)>& visit) {
  NUMAGRID_RETURN_IF_ERROR(impl_->Usable());
  NUMAGRID_RETURN_IF_ERROR(impl_->h->CheckKey(key));
  const std::uint64_t hash = base::KeyHash(key);
  core::GridHandle::EpochGuard pin(*impl_->h);
  auto r = impl_->PartitionFor(hash).Find(key, hash, 0);
  if (core::ProcessCounters* c = impl_->h->counters(); c != nullptr) {
    // This process's own line: a plain load and store (BumpOwned).
    core::BumpOwned(r.ok() ? c->hits : c->misses);
  }
  if (!r.ok()) return r.status();
  visit(r->value(), r->version());
  return Status::Ok();
}

Status Grid::Get(std::string_view key, std::string* value,
                 std::uint64_t* version) {
  return Visit(key, [&](std::string_view v, std::uint64_t ver) {
    value->assign(v.data(), v.size());
    if (version != nullptr) *version = ver;
  });
}

Result<std::size_t> Grid::GetInto(std::string_view key, char* buf,
                                  std::size_t cap) {
  std::size_t len = 0;
  bool fits = true;
  Status s = Visit(key, [&](std::string_view v, std::uint64_t) {
    len = v.size();
    fits = len <= cap;
    if (fits && len != 0) std::memcpy(buf, v.data(), len);
  });
  if (!s.ok()) return s;
  if (!fits) {
    return InvalidArgument("value of " + std::to_string(len) +
                           " bytes does not fit a " + std::to_string(cap) +
                           "-byte buffer");
  }
  return len;
}

Result<std::uint64_t> Grid::Put(std::string_view key, std::string_view value,
                                const WriteOptions& o) {
  return impl_->WriteVersion(core::WriteKind::kUpsert, key, value, 0, o);
}
Result<std::uint64_t> Grid::Insert(std::string_view key, std::string_view value,
                                   const WriteOptions& o) {
  return impl_->WriteVersion(core::WriteKind::kInsert, key, value, 0, o);
}
Result<std::uint64_t> Grid::Replace(std::string_view key,
                                    std::string_view value,
                                    const WriteOptions& o) {
  return impl_->WriteVersion(core::WriteKind::kReplace, key, value, 0, o);
}
Result<std::uint64_t> Grid::CompareAndSet(std::string_view key,
                                          std::uint64_t expected,
                                          std::string_view value,
                                          const WriteOptions& o) {
  return impl_->WriteVersion(core::WriteKind::kCompareAndSet, key, value,
                             expected, o);
}

Status Grid::Remove(std::string_view key, const WriteOptions& o) {
  WriteOptions no_ttl = o;
  no_ttl.ttl_ms = 0;
  return impl_->WriteVersion(core::WriteKind::kRemove, key, {}, 0, no_ttl)
      .status();
}

Status Grid::RemoveIfVersion(std::string_view key, std::uint64_t expected,
                             const WriteOptions& o) {
  WriteOptions no_ttl = o;
  no_ttl.ttl_ms = 0;
  return impl_
      ->WriteVersion(core::WriteKind::kRemoveIfVersion, key, {}, expected,
                     no_ttl)
      .status();
}

Result<std::int64_t> Grid::Increment(std::string_view key, std::int64_t delta,
                                     const WriteOptions& o) {
  core::WriteRequest rq;
  rq.kind = core::WriteKind::kIncrement;
  rq.key = key;
  rq.delta = delta;
  auto r = impl_->Write(rq, o.durability);
  if (!r.ok()) return r.status();
  return r->counter;
}

Status Grid::Flush() {
  NUMAGRID_RETURN_IF_ERROR(impl_->Usable());
  core::GridHandle& h = *impl_->h;
  if (!h.journaled()) return Status::Ok();
  // One sync wait for all partitions together, not one each.
  const std::uint64_t deadline =
      shm::MonotonicNowNs() +
      std::uint64_t{h.journal().config.sync_wait_ms} * 1'000'000;
  for (std::uint32_t p = 0; p < h.partition_count(); ++p) {
    // acquire: the changes below it are the ones this process could see.
    const std::uint64_t upto =
        h.partition(p).state().next_seq.load(std::memory_order_acquire);
    NUMAGRID_RETURN_IF_ERROR(h.WaitDurable(p, upto, deadline));
  }
  return Status::Ok();
}

std::vector<Result<std::string>> Grid::MultiGet(
    const std::vector<std::string>& keys) {
  std::vector<Result<std::string>> out;
  out.reserve(keys.size());
  for (const auto& k : keys) {
    std::string v;
    Status s = Get(k, &v);
    if (s.ok()) {
      out.emplace_back(std::move(v));
    } else {
      out.emplace_back(std::move(s));
    }
  }
  return out;
}

std::vector<Status> Grid::MultiPut(
    const std::vector<std::pair<std::string, std::string>>& entries,
    const WriteOptions& options) {
  std::vector<Status> out;
  out.reserve(entries.size());
  for (const auto& [k, v] : entries) out.push_back(Put(k, v, options).status());
  return out;
}

Status Grid::Scan(const std::function<bool(std::string_view, std::string_view,
                                           std::uint64_t)>& visit,
                  std::int64_t partition) {
  NUMAGRID_RETURN_IF_ERROR(impl_->Usable());
  const std::uint32_t n = impl_->h->partition_count();
  if (partition < -1 || partition >= static_cast<std::int64_t>(n)) {
    return InvalidArgument("no partition " + std::to_string(partition) +
                           ": the grid has partitions 0.." +
                           std::to_string(n - 1) + " (-1 scans them all)");
  }
  const std::uint32_t first =
      partition < 0 ? 0 : static_cast<std::uint32_t>(partition);
  const std::uint32_t last = partition < 0 ? n : first + 1;
  bool go_on = true;
  for (std::uint32_t p = first; p < last && go_on; ++p) {
    core::GridHandle::EpochGuard pin(*impl_->h);
    impl_->h->partition(p).Scan(
        [&](const core::RecordView& r) {
          go_on = visit(r.key(), r.value(), r.version());
          return go_on;
        },
        0);
  }
  return Status::Ok();
}

std::uint32_t Grid::partition_count() const {
  return impl_->h->partition_count();
}

std::uint32_t Grid::PartitionOfKey(std::string_view key) const {
  return base::PartitionOf(base::KeyHash(key), impl_->h->partition_count());
}

}  // namespace numagrid

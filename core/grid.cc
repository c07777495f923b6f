// numagrid::Grid on top of core::GridHandle.
#include "numagrid/grid.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "core/base/key_hash.h"
#include "core/base/split_mix.h"
#include "core/eviction_config.h"
#include "core/evictor.h"
#include "core/grid_handle.h"
#include "core/partition_alloc.h"
#include "core/record_access.h"
#include "shm/robust_mutex.h"

namespace numagrid {

namespace {

// A writer that finds no room evicts at most this many entries of its
// partition per round, and goes on for at least this many rounds, then for
// as long as the rounds make progress and the grid's ring wait (a write's
// other bounded wait) has not passed, before it gives up with the error
// (docs/eviction.md: the writer-side bound). Not a fixed number of rounds:
// other writers of the partition may take the room a round made, and a
// reader's pinned epoch may hold back its reclamation for a moment.
constexpr std::uint64_t kWriterEvictBatch = 8;
constexpr int kWriterEvictRounds = 4;
// While only retired records stand between a writer and room, it yields
// this many rounds, then polls at this interval (the reader it waits for
// may be descheduled for a while on a loaded machine).
constexpr int kWriterSpinRounds = 64;
constexpr std::chrono::microseconds kWriterRetiredPoll{100};

bool EvictionHelps(core::Exhaustion e) {
  return e == core::Exhaustion::kMemory || e == core::Exhaustion::kIndex;
}

}  // namespace

struct Grid::Impl {
  std::unique_ptr<core::GridHandle> h;
  std::unique_ptr<core::Evictor> evictor;  // made on the first need
  std::uint64_t random = 0;                // for the LFU counter

  std::uint64_t NextRandom() noexcept { return base::SplitMix64(&random); }

  // A read of `r` at now: false if the entry is idle past the grid's
  // max-idle (then it is a miss); else records the access in the record's
  // access word, when a policy or max-idle needs it, storing only if the
  // word changes (so a hot record's line stays shared among readers).
  bool Touch(const core::RecordView& r) noexcept {
    const core::EvictionSettings& ev = h->eviction();
    // relaxed: settings are independent words (core/eviction_layout.h).
    const std::uint64_t max_idle =
        ev.max_idle_ms.load(std::memory_order_relaxed);
    const std::uint32_t policy = ev.policy.load(std::memory_order_relaxed);
    if (max_idle == 0 && policy != core::kEvictLru &&
        policy != core::kEvictLfu && policy != core::kEvictTtlFirst) {
      return true;
    }
    const std::uint64_t now = core::NowMs();
    auto access = r.access();
    // relaxed: the access word is a hint (core/record.h).
    const std::uint64_t word = access.load(std::memory_order_relaxed);
    if (core::IdleExpired(word, now, max_idle)) return false;
    const std::uint64_t touched =
        core::Touched(word, now, policy == core::kEvictLfu,
                      policy == core::kEvictLfu ? NextRandom() : 0);
    if (touched != word) access.store(touched, std::memory_order_relaxed);
    return true;
  }

  core::Evictor& WriterEvictor() {
    if (evictor == nullptr) {
      std::vector<std::uint32_t> all(h->partition_count());
      for (std::uint32_t p = 0; p < all.size(); ++p) all[p] = p;
      evictor =
          std::make_unique<core::Evictor>(*h, std::move(all), NextRandom());
    }
    return *evictor;
  }

  // Gives back the chunks that the other partitions of partition p's node
  // hold empty, without waiting for a busy one. Returns how many.
  std::uint64_t ReleaseNodeChunks(std::uint32_t p) {
    std::uint64_t n = 0;
    for (std::uint32_t q = 0; q < h->partition_count(); ++q) {
      if (q == p || h->node_of(q) != h->node_of(p)) continue;
      auto r = h->partition(q).ReleaseEmptyChunks(h->limits(), /*wait=*/false);
      if (r.ok()) n += *r;
    }
    return n;
  }

  // Bytes of the records of p's node that were replaced, removed or
  // evicted and are not yet free: a reader's pinned epoch (or the journal)
  // holds them back, and they become room once it lets go.
  std::uint64_t NodeRetiredBytes(std::uint32_t p) {
    std::uint64_t retired = 0;
    for (std::uint32_t q = 0; q < h->partition_count(); ++q) {
      if (h->node_of(q) != h->node_of(p)) continue;
      // relaxed: a hint, read racily (PartitionCounters); the write decides.
      retired += h->partition(q).state().counters.retired_bytes.load(
          std::memory_order_relaxed);
    }
    return retired;
  }

  // The write found no memory or no index slot: evict a bounded amount of
  // its partition and try again (docs/eviction.md). In a journaled grid
  // the evicted entries' memory is free once their removes are journaled,
  // so each round waits for that.
  Result<core::WriteResult> WriteEvicting(std::uint32_t p,
                                          const core::WriteRequest& rq,
                                          Result<core::WriteResult> r) {
    core::PartitionRef& part = h->partition(p);
    const std::uint64_t deadline =
        shm::MonotonicNowNs() + h->limits().ring_wait_ns;
    int idle_rounds = 0;  // rounds in a row that evicted nothing
    for (int round = 0;; ++round) {
      if (round >= kWriterEvictRounds && shm::MonotonicNowNs() >= deadline) {
        break;
      }
      // Out of memory: chunks that other partitions of the node left empty
      // serve this one too, once given back; try that first.
      if (part.last_exhaustion() == core::Exhaustion::kMemory &&
          ReleaseNodeChunks(p) > 0) {
        r = part.Write(rq, h->limits(), core::NowMs());
        if (r.ok() || r.status().code() != StatusCode::kResourceExhausted ||
            !EvictionHelps(part.last_exhaustion())) {
          break;
        }
      }
      // Out of memory: blocks of at least the size this record needs help;
      // a full index: entries whose removal leaves an empty slot.
      core::VictimNeed need;
      if (part.last_exhaustion() == core::Exhaustion::kMemory) {
        const std::uint64_t value_len =
            rq.kind == core::WriteKind::kIncrement ? 8 : rq.value.size();
        need.block_bytes = core::BlockBytes(
            part.node(),
            core::RecordBytes(rq.key.size(), value_len, rq.expire_at_ms != 0));
      } else {
        need.frees_slot = true;
      }
      std::uint64_t evicted =
          WriterEvictor().EvictFrom(p, kWriterEvictBatch, h->limits(), need);
      // Nothing of its own partition helps (it may hold little, the node's
      // chunks being the others'): empty the run of neighbouring chunks
      // that holds the fewest bytes, whoever holds them, as many chunks as
      // a large block needs or one for a small block. The next round
      // gives them back.
      std::vector<std::uint32_t> touched{p};
      const std::uint64_t chunk = part.node().chunk_bytes;
      // A run free for the write: another writer of the node may still
      // claim one of its chunks first (a small block takes any free chunk),
      // so the next round looks again.
      bool run_found = false;
      if (evicted == 0 && need.block_bytes != 0) {
        const std::uint64_t run = need.block_bytes > part.node().small_limit
                                      ? need.block_bytes / chunk
                                      : 1;
        const core::Evictor::RunOutcome o = WriterEvictor().EvictRun(
            p, run, h->limits(), core::NowMs(), &touched);
        evicted = o.evicted + o.released;
        run_found = o.found;
      }
      // The last try: nothing was evicted, no run was found and no record
      // of the node waits to be freed (the room made before may be free
      // now, or nothing helps), or the time is up.
      bool last_try = false;
      if (evicted == 0) {
        // Records evicted, removed or replaced before, in any partition of
        // the node, may still wait for a reader's epoch (or the journal)
        // to be freed: wait for them, up to the deadline.
        if ((!run_found && NodeRetiredBytes(p) == 0) ||
            shm::MonotonicNowNs() >= deadline) {
          last_try = true;
        } else if (++idle_rounds < kWriterSpinRounds) {
          std::this_thread::yield();
        } else {
          std::this_thread::sleep_for(kWriterRetiredPoll);
        }
      } else {
        idle_rounds = 0;
      }
      if (h->journaled()) {
        // acquire: the evictions are below it. Bounded like a wait for
        // ring space (a write's other bounded wait), not by the longer
        // sync wait: without a running worker, nothing will free them.
        bool durable = true;
        for (const std::uint32_t q : touched) {
          const std::uint64_t upto =
              h->partition(q).state().next_seq.load(std::memory_order_acquire);
          durable = durable && h->WaitDurable(q, upto,
                                              shm::MonotonicNowNs() +
                                                  h->limits().ring_wait_ns)
                                   .ok();
        }
        if (!durable) break;
      }
      r = part.Write(rq, h->limits(), core::NowMs());
      if (r.ok() || r.status().code() != StatusCode::kResourceExhausted ||
          !EvictionHelps(part.last_exhaustion()) || last_try) {
        break;
      }
    }
    return r;
  }

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
    const core::EvictionConfig ev = core::LoadEvictionConfig(h->eviction());
    rq.max_idle_ms = ev.max_idle_ms;
    const std::uint64_t now = core::NowMs();
    const bool creates_record = rq.kind != core::WriteKind::kRemove &&
                                rq.kind != core::WriteKind::kRemoveIfVersion;
    if (creates_record && rq.expire_at_ms == 0 && ev.default_ttl_ms != 0) {
      rq.expire_at_ms = ev.default_ttl_ms > UINT64_MAX - 1 - now
                            ? UINT64_MAX - 1
                            : now + ev.default_ttl_ms;
    }
    // No epoch pin: the writer reads old records only under the partition
    // lock, and records are freed only under that lock.
    core::PartitionRef& part = h->partition(p);
    auto r = part.Write(rq, h->limits(), now);
    if (!r.ok() && r.status().code() == StatusCode::kResourceExhausted &&
        ev.policy != core::kEvictNone &&
        EvictionHelps(part.last_exhaustion())) {
      r = WriteEvicting(p, rq, std::move(r));
    }
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
  impl->random = static_cast<std::uint64_t>(getpid()) * 0x9E3779B97F4A7C15ULL ^
                 shm::MonotonicNowNs();
  return Grid(std::move(impl));
}

Status Grid::Visit(
    std::string_view key,
    const std::function<void(std::string_view, std::uint64_t)>& visit) {
  NUMAGRID_RETURN_IF_ERROR(impl_->Usable());
  NUMAGRID_RETURN_IF_ERROR(impl_->h->CheckKey(key));
  const std::uint64_t hash = base::KeyHash(key);
  core::GridHandle::EpochGuard pin(*impl_->h);
  core::PartitionRef& part = impl_->PartitionFor(hash);
  auto r = part.Find(key, hash, 0);
  if (r.ok() && !impl_->Touch(*r)) r = NotFound("key not found");
  if (core::ReadCounters* c = part.read_counters(); c != nullptr) {
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
  // relaxed: as in Touch.
  const std::uint64_t max_idle =
      impl_->h->eviction().max_idle_ms.load(std::memory_order_relaxed);
  const std::uint64_t now = core::NowMs();
  for (std::uint32_t p = first; p < last && go_on; ++p) {
    core::GridHandle::EpochGuard pin(*impl_->h);
    impl_->h->partition(p).Scan(
        [&](const core::RecordView& r) {
          // A scan is not an access: it leaves the access words alone.
          if (core::IdleExpired(r.access().load(std::memory_order_relaxed), now,
                                max_idle)) {
            return true;
          }
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

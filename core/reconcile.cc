#include "core/reconcile.h"

#include <chrono>
#include <thread>
#include <unordered_map>

#include "core/journal_replay.h"
#include "core/partition.h"
#include "io/node_file_name.h"

namespace numagrid::core {
namespace {

struct Entry {
  std::string value;
  std::uint64_t version = 0;
  std::uint64_t expiry_ms = 0;
};

using PartitionModel = std::unordered_map<std::string, Entry>;

// The durable state, one map per partition.
class ModelSink : public ReplaySink {
 public:
  explicit ModelSink(std::uint32_t partitions) : model_(partitions) {}
  Status Add(const io::RecordView& c) override {
    PartitionModel& m = model_[c.partition_id];
    if (c.op == io::RecordOp::kPut) {
      Entry& e = m[std::string(c.key)];
      e.value.assign(c.value);
      e.version = c.version;
      e.expiry_ms = c.expiry_ms;
    } else {
      m.erase(std::string(c.key));
    }
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  std::vector<PartitionModel>& model() { return model_; }

 private:
  std::vector<PartitionModel> model_;
};

std::string Describe(const Entry* e) {
  if (e == nullptr) return "absent";
  std::string s = "version " + std::to_string(e->version) + ", " +
                  std::to_string(e->value.size()) + " bytes";
  if (e->expiry_ms != 0) s += ", expires " + std::to_string(e->expiry_ms);
  return s;
}

bool Drained(GridHandle& h, std::uint32_t p) {
  const PartitionState& st = h.partition(p).state();
  // acquire: pairs with MarkJournaled's release store.
  return st.journaled_seq.load(std::memory_order_acquire) ==
         st.next_seq.load(std::memory_order_acquire);
}

}  // namespace

Result<ReconcileReport> ReconcileWithJournal(GridHandle& h,
                                             const ReconcileOptions& o) {
  if (!h.journaled()) {
    return InvalidArgument("grid '" + h.name() +
                           "' has no journal (created with --no-journal)");
  }
  const std::uint32_t partitions = h.partition_count();
  // Give the workers a moment to journal what is in the rings.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(o.drain_wait_ms);
  for (;;) {
    bool all = true;
    for (std::uint32_t p = 0; p < partitions && all; ++p) all = Drained(h, p);
    if (all || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::vector<std::uint64_t> before(partitions);
  std::vector<bool> pending(partitions);
  for (std::uint32_t p = 0; p < partitions; ++p) {
    // acquire: as in Drained.
    before[p] = h.partition(p).state().next_seq.load(std::memory_order_acquire);
    pending[p] = !Drained(h, p);
  }

  RecoveryReport replay_report;
  JournalReplay replay(h.journal_dir(), h.grid_id(), partitions, nullptr,
                       &replay_report);
  ModelSink sink(partitions);
  // Every journal stream of every node (disjoint partitions each).
  for (const std::uint32_t stream : h.stream_ids()) {
    NUMAGRID_RETURN_IF_ERROR(
        replay.Node(stream, sink, /*truncate_tail=*/false));
  }

  ReconcileReport r;
  for (const auto& d : replay_report.dropped) {
    r.dropped_tails.push_back(io::StreamLabel(io::StreamId(d.node, d.stream)) +
                              ": " + d.kind + " in " + d.file + " at offset " +
                              std::to_string(d.offset));
  }
  r.snapshots_rejected = replay_report.snapshots_rejected;
  const std::uint64_t now = NowMs();
  auto note = [&](std::uint32_t p, std::string_view key, const Entry* live,
                  const Entry* durable) {
    KeyDifference d{p, std::string(key), Describe(live), Describe(durable),
                    pending[p]};
    (d.pending ? r.pending_differences : r.differences) += 1;
    if (r.listed.size() < o.max_listed) r.listed.push_back(std::move(d));
  };
  for (std::uint32_t p = 0; p < partitions; ++p) {
    PartitionModel& model = sink.model()[p];
    // Entries that expired are invisible in both.
    for (auto it = model.begin(); it != model.end();) {
      if (it->second.expiry_ms != 0 && it->second.expiry_ms <= now) {
        it = model.erase(it);
      } else {
        ++it;
      }
    }
    r.journal_keys += model.size();
    std::vector<std::pair<std::string, Entry>> live;
    {
      GridHandle::EpochGuard pin(h);
      h.partition(p).Scan(
          [&](const RecordView& rec) {
            live.push_back({std::string(rec.key()),
                            Entry{std::string(rec.value()), rec.version(),
                                  rec.expire_at_ms()}});
            return true;
          },
          now);
    }
    // A change during the scan makes this partition's comparison moot.
    // acquire: as in Drained.
    if (h.partition(p).state().next_seq.load(std::memory_order_acquire) !=
        before[p]) {
      pending[p] = true;
    }
    if (pending[p]) ++r.pending_partitions;
    r.live_keys += live.size();
    for (auto& [key, e] : live) {
      auto it = model.find(key);
      if (it == model.end()) {
        note(p, key, &e, nullptr);
        continue;
      }
      const Entry& m = it->second;
      if (m.value != e.value || m.version != e.version ||
          m.expiry_ms != e.expiry_ms) {
        note(p, key, &e, &m);
      }
      model.erase(it);
    }
    for (auto& [key, m] : model) note(p, key, nullptr, &m);
  }
  return r;
}

}  // namespace numagrid::core

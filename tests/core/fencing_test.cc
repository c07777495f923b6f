// Tests for worker generations and fencing (a superseded journal worker
// steps down without writing) and for the grid's event ring in the control
// segment.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/event_log.h"
#include "core/event_log_layout.h"
#include "core/grid_admin.h"
#include "core/grid_handle.h"
#include "core/journal_layout.h"
#include "core/journal_worker.h"
#include "numagrid/grid.h"
#include "numagrid/status.h"
#include "tests/support/journal_grid.h"
#include "tests/support/test_grid.h"

namespace numagrid::core {
namespace {

using ::numagrid::testing::AllJournaled;
using ::numagrid::testing::JournalRead;
using ::numagrid::testing::ModelOf;
using ::numagrid::testing::PollUntil;
using ::numagrid::testing::ReadFileBytes;
using ::numagrid::testing::ReadGridState;
using ::numagrid::testing::ReadJournal;
using ::numagrid::testing::StateDiff;
using ::numagrid::testing::WorkerThread;
using ::testing::HasSubstr;

class Fencing : public ::numagrid::testing::JournaledGridTest {
 protected:
  JournalNodeState& node() { return h_->journal_node(0); }
};

std::vector<GridEvent> EventsOfKind(GridHandle& h, EventKind kind) {
  std::vector<GridEvent> out;
  for (GridEvent& e : ReadEvents(h)) {
    if (e.kind == kind) out.push_back(e);
  }
  return out;
}

// A child process running the node's journal worker (its own handle) until
// it returns; exits with the StatusCode it returned.
pid_t ForkWorker(const std::string& name, std::uint64_t generation = 0) {
  return ::numagrid::testing::ForkChild([&] {
    auto h = GridHandle::Attach(name);
    if (!h.ok()) return 100;
    JournalWorkerOptions o;
    o.generation = generation;
    static const std::atomic<bool> never{false};
    o.stop = &never;
    return static_cast<int>(RunJournalWorker(**h, o).code());
  });
}

TEST_F(Fencing, AStoppedWorkerFencedAndResumedExitsWithoutWriting) {
  const pid_t worker = ForkWorker(name_);
  ASSERT_TRUE(PollUntil([&] {
    return node().worker_pid.load() == static_cast<std::uint64_t>(worker) &&
           node().worker_state.load() == kWorkerRunning;
  }));
  const std::uint64_t generation = node().worker_generation.load();
  EXPECT_EQ(generation, node().generation.load());
  EXPECT_GE(generation, 1u);

  auto g = Grid::Attach(name_);
  ASSERT_TRUE(g.ok());
  const WriteOptions sync{.durability = Durability::kSync};
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(g->Put("durable" + std::to_string(i), "v", sync).ok());
  }
  // Every change is durable: the worker has nothing left to write when it
  // is stopped, so whatever the journal gains later it wrote after the
  // fence.
  ASSERT_TRUE(PollUntil([&] { return AllJournaled(*h_); }));
  ASSERT_EQ(kill(worker, SIGSTOP), 0);
  int status = 0;
  ASSERT_EQ(waitpid(worker, &status, WUNTRACED), worker);
  ASSERT_TRUE(WIFSTOPPED(status));
  const JournalRead before = ReadJournal(dir_.path());
  ASSERT_TRUE(before.status.ok()) << before.status.ToString();

  // Changes it would journal if it went on.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(g->Put("pending" + std::to_string(i), "v").ok());
  }
  const std::uint64_t fenced_to = FenceNodeWorker(*h_, 0, "test fence");
  EXPECT_GT(fenced_to, generation);
  ASSERT_EQ(kill(worker, SIGCONT), 0);
  const bool exited =
      PollUntil([&] { return waitpid(worker, &status, WNOHANG) == worker; });
  if (!exited) {
    kill(worker, SIGKILL);
    waitpid(worker, &status, 0);
    FAIL() << "the fenced worker went on running after it was resumed";
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), static_cast<int>(StatusCode::kAlreadyExists));

  const JournalRead after = ReadJournal(dir_.path());
  ASSERT_TRUE(after.status.ok()) << after.status.ToString();
  EXPECT_EQ(after.records, before.records)
      << "the fenced worker wrote to the journal";
  EXPECT_EQ(node().fences.load(), 1u);
  EXPECT_FALSE(AllJournaled(*h_));

  const auto fenced = EventsOfKind(*h_, EventKind::kWorkerFenced);
  ASSERT_EQ(fenced.size(), 1u);
  EXPECT_EQ(fenced[0].pid, static_cast<std::uint64_t>(worker));
  EXPECT_EQ(fenced[0].generation, generation);
  EXPECT_THAT(fenced[0].cause, HasSubstr("test fence"));
  const auto down = EventsOfKind(*h_, EventKind::kWorkerSteppedDown);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].pid, static_cast<std::uint64_t>(worker));
  EXPECT_GT(down[0].seq, fenced[0].seq);

  // A newer worker takes over and journals what the fenced one left.
  {
    WorkerThread next(name_);
    ASSERT_TRUE(PollUntil([&] { return AllJournaled(*h_); }));
    EXPECT_GT(node().worker_generation.load(), fenced_to);
    ASSERT_TRUE(next.Stop().ok());
  }
  const JournalRead all = ReadJournal(dir_.path());
  ASSERT_TRUE(all.status.ok());
  EXPECT_EQ(StateDiff(ModelOf(all.records), ReadGridState(name_)), "");
}

TEST_F(Fencing, AWorkerGivenASupersededGenerationNeverStarts) {
  const std::uint64_t given = TakeWorkerGeneration(*h_, 0);
  const std::uint64_t newer = TakeWorkerGeneration(*h_, 0);
  ASSERT_GT(newer, given);
  auto g = Grid::Attach(name_);
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(g->Put("k", "v").ok());
  const pid_t stale = ForkWorker(name_, given);
  EXPECT_EQ(::numagrid::testing::WaitChild(stale),
            static_cast<int>(StatusCode::kAlreadyExists));
  const JournalRead r = ReadJournal(dir_.path());
  EXPECT_TRUE(r.records.empty()) << "a stale worker journaled";
  EXPECT_TRUE(r.segments.empty()) << "a stale worker created a segment";

  // The current one runs.
  const pid_t current = ForkWorker(name_, newer);
  ASSERT_TRUE(PollUntil([&] { return AllJournaled(*h_); }));
  EXPECT_EQ(node().worker_generation.load(), newer);
  kill(current, SIGKILL);
  EXPECT_EQ(::numagrid::testing::WaitChild(current), 128 + SIGKILL);
}

TEST_F(Fencing, AWorkerStartedByHandTakesTheNextGenerationAndFencesOlderOnes) {
  const std::uint64_t before = node().generation.load();
  {
    WorkerThread w(name_);
    ASSERT_TRUE(
        PollUntil([&] { return node().worker_generation.load() != 0; }));
    EXPECT_EQ(node().worker_generation.load(), before + 1);
    EXPECT_EQ(node().generation.load(), before + 1);
    // Fenced while running: it steps down within a round, on its own.
    (void)FenceNodeWorker(*h_, 0, "fenced while running");
    EXPECT_TRUE(PollUntil([&] { return w.finished(); }))
        << "a fenced worker did not step down";
    const Status s = w.Stop();
    EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr("fenced"));
  }
  EXPECT_EQ(node().generation.load(), before + 2);
}

// --- the event ring ---------------------------------------------------------

TEST_F(Fencing, TheEventRingKeepsTheNewestEventsInOrderAndEventsLogAll) {
  const int total = static_cast<int>(kEventLogCapacity) + 44;
  for (int i = 0; i < total; ++i) {
    GridEvent e;
    e.kind = i % 2 == 0 ? EventKind::kRepair : EventKind::kWorkerExited;
    e.node = i % 3 - 1;
    e.pid = 1000 + static_cast<std::uint64_t>(i);
    e.generation = static_cast<std::uint64_t>(i) * 7;
    e.duration_ms = i % 5 == 0 ? -1 : i;
    e.cause = "event " + std::to_string(i);
    const GridEvent got = RecordEvent(*h_, e, dir_.path());
    EXPECT_EQ(got.seq, static_cast<std::uint64_t>(i));
    EXPECT_NE(got.time_unix_ms, 0u);
  }
  const std::vector<GridEvent> events = ReadEvents(*h_);
  ASSERT_EQ(events.size(), kEventLogCapacity);
  for (std::size_t k = 0; k < events.size(); ++k) {
    const int i = 44 + static_cast<int>(k);
    const GridEvent& e = events[k];
    EXPECT_EQ(e.seq, static_cast<std::uint64_t>(i));
    EXPECT_EQ(e.kind,
              i % 2 == 0 ? EventKind::kRepair : EventKind::kWorkerExited);
    EXPECT_EQ(e.node, i % 3 - 1);
    EXPECT_EQ(e.pid, 1000u + static_cast<std::uint64_t>(i));
    EXPECT_EQ(e.generation, static_cast<std::uint64_t>(i) * 7);
    EXPECT_EQ(e.duration_ms, i % 5 == 0 ? -1 : i);
    EXPECT_EQ(e.cause, "event " + std::to_string(i));
  }
  const std::string log = ReadFileBytes(dir_.path() + "/events.log");
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), total);
  EXPECT_THAT(log, HasSubstr("\"seq\":0,\"event\":\"repair\""));
  EXPECT_THAT(
      log, HasSubstr("\"cause\":\"event " + std::to_string(total - 1) + "\""));
}

TEST_F(Fencing, AHalfWrittenEventIsSkippedAndALongCauseIsCut) {
  GridEvent e;
  e.kind = EventKind::kRecovery;
  e.cause = std::string(200, 'x');
  RecordEvent(*h_, e, "");
  e.cause = "second";
  RecordEvent(*h_, e, "");
  // A recorder killed inside its write: the slot's stamp stays odd.
  EventLog& log = h_->events();
  const std::uint64_t n = log.next.fetch_add(1);
  log.slots[n % kEventLogCapacity].stamp.store(2 * n + 1);
  e.cause = "third";
  RecordEvent(*h_, e, "");

  const std::vector<GridEvent> events = ReadEvents(*h_);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].cause, std::string(kEventCauseWords * 8 - 1, 'x'));
  EXPECT_EQ(events[1].cause, "second");
  EXPECT_EQ(events[2].cause, "third");
  EXPECT_EQ(events[2].seq, 3u);
  EXPECT_EQ(EventKindName(events[0].kind), "recovery");
  EXPECT_EQ(EventKindName(static_cast<EventKind>(999)), "unknown");
}

}  // namespace
}  // namespace numagrid::core

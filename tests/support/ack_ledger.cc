#include "tests/support/ack_ledger.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <gtest/gtest.h>

#include "tests/support/test_grid.h"
#include "tests/support/test_seed.h"

namespace numagrid::testing {

std::string LedgerKey(int w, int k) {
  return "w" + std::to_string(w) + "k" + std::to_string(k);
}

std::string LedgerValue(int w, int k, std::uint64_t counter) {
  return LedgerKey(w, k) + "c" + std::to_string(counter) +
         std::string(static_cast<std::size_t>(Mix(counter) % 200), 'x');
}

std::uint64_t LedgerCounterOf(const std::string& v, int w, int k) {
  const std::string prefix = LedgerKey(w, k) + "c";
  if (v.rfind(prefix, 0) != 0) return UINT64_MAX;
  const std::uint64_t c = std::strtoull(v.c_str() + prefix.size(), nullptr, 10);
  return v == LedgerValue(w, k, c) ? c : UINT64_MAX;
}

pid_t StartLedgerWriter(const std::string& name, int w, int keys,
                        AckLedger* ledger, std::uint64_t seed,
                        const WriteOptions& options, bool async_too) {
  return ForkChild([=] {
    auto g = Grid::Attach(name);
    if (!g.ok()) return 2;
    // A writer restarted under the same index (the watchdog tests kill and
    // start writer w more than once) goes on from the largest counter its
    // predecessors attempted: counters of one key only grow, so "older than
    // its acknowledgement" keeps meaning what it says.
    std::uint64_t counter = 0;
    for (const auto& a : ledger->attempted[w]) {
      counter = std::max(counter, a.load());
    }
    std::uint64_t r = seed;
    while (!ledger->stop.load()) {
      if (ledger->pause.load()) {
        ledger->paused.fetch_add(1);
        while (ledger->pause.load() && !ledger->stop.load()) usleep(1000);
        ledger->paused.fetch_sub(1);
        continue;
      }
      r = Mix(r);
      const int k = static_cast<int>(r % static_cast<std::uint64_t>(keys));
      ++counter;
      ledger->attempted[w][k].store(counter);
      auto v = g->Put(LedgerKey(w, k), LedgerValue(w, k, counter), options);
      if (v.ok()) {
        ledger->acked[w][k].store(counter);
        ledger->acked_total.fetch_add(1);
      } else if (v.status().code() == StatusCode::kUnavailable ||
                 v.status().code() == StatusCode::kResourceExhausted) {
        // Not confirmed durable in time, or the ring stayed full: visible
        // or not, never acknowledged.
        ledger->not_confirmed.fetch_add(1);
      } else {
        return 4;
      }
      if (async_too) {
        auto a = g->Put("async-w" + std::to_string(w), std::to_string(counter));
        if (a.ok()) {
          ledger->async_ok.fetch_add(1);
        } else if (a.status().code() != StatusCode::kResourceExhausted) {
          return 5;
        }
      }
    }
    return 0;
  });
}

std::uint64_t ExpectLedgerHeld(Grid& grid, const AckLedger& ledger, int writers,
                               int keys, const std::string& when) {
  std::uint64_t found = 0;
  for (int w = 0; w < writers; ++w) {
    for (int k = 0; k < keys; ++k) {
      const std::uint64_t acked = ledger.acked[w][k].load();
      const std::uint64_t attempted = ledger.attempted[w][k].load();
      const std::string key = LedgerKey(w, k);
      std::string v;
      const Status s = grid.Get(key, &v);
      if (!s.ok()) {
        EXPECT_EQ(acked, 0U)
            << when << ": " << key << ": acknowledged durable value " << acked
            << " is gone (" << s.ToString() << ")";
        continue;
      }
      ++found;
      const std::uint64_t c = LedgerCounterOf(v, w, k);
      EXPECT_NE(c, UINT64_MAX)
          << when << ": " << key << ": '" << v << "' was never written";
      if (c == UINT64_MAX) continue;
      EXPECT_GE(c, acked) << when << ": " << key
                          << " is older than its durable acknowledgement";
      EXPECT_LE(c, attempted)
          << when << ": " << key << ": a value never written";
    }
  }
  return found;
}

}  // namespace numagrid::testing

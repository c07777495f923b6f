// The acknowledgement ledger of the crash and watchdog tests: writer
// processes record, per key, the counter of the last value they tried to
// write and of the last one a sync put acknowledged as durable; after kills
// and recoveries the test checks that every acknowledged value (or a later
// attempted one) is there and nothing that was never written. A value is
// "w<writer>k<key>c<counter>" followed by a pad of varied length, so that
// records of different size classes replace each other.
//
// Process safety: lives in a SharedBlock (tests/support/shared_block.h);
// one writer process per key, read by the test after the writers stopped or
// died (a writer killed between `attempted` and its put leaves attempted
// ahead, which the check allows).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "numagrid/grid.h"

namespace numagrid::testing {

inline constexpr int kLedgerMaxWriters = 4;
inline constexpr int kLedgerMaxKeys = 40;

struct AckLedger {
  std::atomic<bool> stop{false};
  // While set, writers wait between two puts; `paused` counts the writers
  // that are waiting (so none of them has a put under way).
  std::atomic<bool> pause{false};
  std::atomic<int> paused{0};
  std::atomic<std::uint64_t> acked_total{0};
  std::atomic<std::uint64_t> async_ok{0};
  std::atomic<std::uint64_t> not_confirmed{0};  // unavailable / ring full
  std::atomic<std::uint64_t> attempted[kLedgerMaxWriters][kLedgerMaxKeys];
  std::atomic<std::uint64_t> acked[kLedgerMaxWriters][kLedgerMaxKeys];
};

std::string LedgerKey(int w, int k);
std::string LedgerValue(int w, int k, std::uint64_t counter);
// The counter in a value of key (w, k); UINT64_MAX if it is not one.
std::uint64_t LedgerCounterOf(const std::string& v, int w, int k);

// A writer process (ForkChild): puts to keys (w, 0..keys-1) chosen from
// `seed` with `options`, each recorded in the ledger (an OK put as
// acknowledged; kUnavailable or kResourceExhausted as not confirmed), and
// with `async_too` an async put to a key of its own after each. Counters go
// on from the largest one a previous writer w attempted. Exits 0
// when told to stop (and waits between puts while told to pause), 4 on any
// other error of a put, 5 of an async put, 2 if it cannot attach.
pid_t StartLedgerWriter(const std::string& name, int w, int keys,
                        AckLedger* ledger, std::uint64_t seed,
                        const WriteOptions& options, bool async_too);

// GoogleTest expectations: for writers [0, writers) and keys [0, keys),
// `grid` holds a value of each acknowledged key at or after its
// acknowledgement and at or before its last attempt. `when` prefixes the
// messages. Returns how many keys had a value.
std::uint64_t ExpectLedgerHeld(Grid& grid, const AckLedger& ledger, int writers,
                               int keys, const std::string& when);

}  // namespace numagrid::testing

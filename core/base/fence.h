// SeqCstFence: std::atomic_thread_fence(seq_cst), also under TSan.
//
// GCC 12 warns (-Wtsan, an error with -Werror) that TSan does not model
// standalone fences. TSan still checks the release/acquire edges that order
// every access to shared data; what the fences add (store-load ordering for
// the epoch protocol, docs/process-table.md) is covered by the stress and
// multi-process tests instead, as STYLE.md asks.
//
// Crash safety: not applicable; a fence holds no state.
#pragma once

#include <atomic>

namespace numagrid::base {

inline void SeqCstFence() noexcept {
#if defined(__SANITIZE_THREAD__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
#pragma GCC diagnostic pop
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace numagrid::base

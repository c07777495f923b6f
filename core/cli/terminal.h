// Terminal: the screen of a full-screen command (`numagrid top`), with
// plain ANSI escape sequences so that it works over ssh without a terminal
// library: cbreak mode and the alternate screen while it runs, frames
// redrawn in place, keys and signals waited for with ppoll, and everything
// put back on the way out (short of SIGKILL).
//
// Standard input and output need not be terminals: without a terminal on
// stdin no key is read (SIGINT, SIGTERM or SIGHUP end the wait); without
// one on stdout frames are printed one after the other with no escape
// sequences, for scripts and logs.
//
// Thread safety: thread-compatible, and one per process: it takes over the
// dispositions of SIGINT, SIGTERM, SIGHUP and SIGWINCH, and blocks them
// outside Wait() (the CLI has one thread).
#pragma once

#include <termios.h>

#include <csignal>
#include <cstdint>
#include <string_view>

#include "core/top_frame.h"

namespace numagrid::cli {

class Terminal {
 public:
  // Takes over stdin (cbreak: no line buffering, no echo; Ctrl-C still
  // sends SIGINT) and stdout (the alternate screen, cursor hidden) where
  // they are terminals, and the signals above.
  Terminal();
  ~Terminal() { Restore(); }
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // stdout's terminal size; 24x80 when it is no terminal or reports 0.
  core::TerminalSize Size() const;

  // Replaces the screen with `frame` (lines joined by '\n', none wider than
  // the terminal), or, when stdout is no terminal, prints it after a blank
  // line. False when the output is gone (a closed terminal or pipe).
  bool Draw(std::string_view frame);

  enum class Wake {
    kTimeout,  // `timeout_ms` passed
    kQuit,     // q, Ctrl-C (SIGINT), SIGTERM, SIGHUP, or stdin closed
    kResize,   // SIGWINCH: draw again at the new Size()
  };
  Wake Wait(std::int64_t timeout_ms);

  // Shows the cursor, leaves the alternate screen, restores stdin's modes,
  // then the signal mask and dispositions. Later calls do nothing.
  void Restore() noexcept;

 private:
  bool in_tty_ = false;
  bool out_tty_ = false;
  bool restored_ = false;
  bool drawn_ = false;  // a frame was printed (for the separator)
  termios saved_modes_{};
  sigset_t saved_mask_{};
  sigset_t wait_mask_{};  // saved_mask_ without our signals: for ppoll
  struct sigaction saved_actions_[4]{};
};

}  // namespace numagrid::cli

#include "core/cli/terminal.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>

namespace numagrid::cli {
namespace {

// Escape sequences (xterm; every terminal emulator in use knows them).
// Enter: the alternate screen, cursor hidden; leave: the reverse, in the
// reverse order.
constexpr std::string_view kEnterScreen = "\033[?1049h\033[?25l";
constexpr std::string_view kLeaveScreen = "\033[?25h\033[?1049l";
constexpr std::string_view kHome = "\033[H";
constexpr std::string_view kClearLine = "\033[2K";
constexpr std::string_view kClearBelow = "\033[J";

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH};

// Set by the handler, read by Wait(). Lock-free atomics are safe in a
// signal handler, and our signals are delivered only inside ppoll (they
// are blocked elsewhere), so relaxed suffices: ppoll returning EINTR is
// after the handler ran, in the same thread.
std::atomic<bool> g_quit{false};
std::atomic<bool> g_resized{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void OnTerminalSignal(int signo) {
  if (signo == SIGWINCH) {
    g_resized.store(true, std::memory_order_relaxed);
  } else {
    g_quit.store(true, std::memory_order_relaxed);
  }
}

// Writes all of `text`; false on an error other than EINTR.
bool WriteAll(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = write(fd, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

Terminal::Terminal() {
  in_tty_ =
      isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &saved_modes_) == 0;
  out_tty_ = isatty(STDOUT_FILENO) == 1;

  // Block our signals before handling them, so that one arriving between
  // a check of the flags and ppoll waits for ppoll (which unblocks them
  // atomically) instead of being missed for a whole interval.
  sigset_t ours;
  sigemptyset(&ours);
  for (int s : kSignals) sigaddset(&ours, s);
  pthread_sigmask(SIG_BLOCK, &ours, &saved_mask_);
  wait_mask_ = saved_mask_;
  for (int s : kSignals) sigdelset(&wait_mask_, s);
  struct sigaction sa {};
  sa.sa_handler = OnTerminalSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: ppoll must return EINTR
  for (std::size_t i = 0; i < std::size(kSignals); ++i) {
    sigaction(kSignals[i], &sa, &saved_actions_[i]);
  }

  if (in_tty_) {
    termios modes = saved_modes_;
    // cbreak: keys arrive one by one, unechoed; ISIG stays, so Ctrl-C is
    // SIGINT (and Ctrl-Z still stops us), handled like q.
    modes.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    modes.c_cc[VMIN] = 1;
    modes.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &modes);
  }
  if (out_tty_) (void)WriteAll(STDOUT_FILENO, kEnterScreen);
}

void Terminal::Restore() noexcept {
  if (restored_) return;
  restored_ = true;
  if (out_tty_) (void)WriteAll(STDOUT_FILENO, kLeaveScreen);
  if (in_tty_) tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_modes_);
  // Unblock before restoring the dispositions: a signal still pending then
  // reaches our handler (a flag nobody reads) rather than the default
  // action, which would kill the process after a clean exit was chosen.
  pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
  for (std::size_t i = 0; i < std::size(kSignals); ++i) {
    sigaction(kSignals[i], &saved_actions_[i], nullptr);
  }
}

core::TerminalSize Terminal::Size() const {
  core::TerminalSize size;
  winsize ws{};
  if (out_tty_ && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
      ws.ws_row != 0 && ws.ws_col != 0) {
    size.rows = ws.ws_row;
    size.cols = ws.ws_col;
  }
  return size;
}

bool Terminal::Draw(std::string_view frame) {
  std::string out;
  if (!out_tty_) {
    if (drawn_) out += '\n';
    out.append(frame);
    out += '\n';
  } else {
    // Each line is cleared before it is written, not after: a line as wide
    // as the terminal leaves the cursor on its last column, and clearing
    // from there would erase that column. \r\n: the output's own newline
    // translation is not relied on.
    out += kHome;
    std::size_t lines = 0;
    for (std::size_t pos = 0; pos <= frame.size(); ++lines) {
      std::size_t end = frame.find('\n', pos);
      if (end == std::string_view::npos) end = frame.size();
      if (lines != 0) out += "\r\n";
      out += kClearLine;
      out.append(frame.substr(pos, end - pos));
      pos = end + 1;
    }
    // Only below a frame shorter than the screen: after the last row a
    // newline would scroll.
    if (lines < Size().rows) {
      out += "\r\n";
      out += kClearBelow;
    }
  }
  drawn_ = true;
  return WriteAll(STDOUT_FILENO, out);
}

Terminal::Wake Terminal::Wait(std::int64_t timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    // relaxed: see g_quit.
    if (g_quit.load(std::memory_order_relaxed)) return Wake::kQuit;
    if (g_resized.exchange(false, std::memory_order_relaxed)) {
      return Wake::kResize;
    }
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) return Wake::kTimeout;
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    const timespec ts{static_cast<time_t>(ns / 1'000'000'000),
                      static_cast<long>(ns % 1'000'000'000)};
    pollfd in{STDIN_FILENO, POLLIN, 0};
    const int rc = ppoll(&in, in_tty_ ? 1 : 0, &ts, &wait_mask_);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return Wake::kQuit;
    }
    if (rc == 0) continue;
    if ((in.revents & POLLIN) == 0) return Wake::kQuit;  // hang-up, error
    char keys[64];
    const ssize_t n = read(STDIN_FILENO, keys, sizeof keys);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
      return Wake::kQuit;
    }
    for (ssize_t i = 0; i < n; ++i) {
      // \x03: Ctrl-C, should the terminal pass it on as a byte.
      if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == '\x03') {
        return Wake::kQuit;
      }
    }
  }
}

}  // namespace numagrid::cli

// Tests for `numagrid top` (core/cli/top_command.cc, core/cli/terminal.h)
// run as a child process: under a pseudo-terminal (frames drawn in place,
// a rate that follows puts made by the test, cbreak mode while it runs,
// q and Ctrl-C ending it with the terminal restored), with no terminal
// (plain frames, --iterations, SIGINT and SIGTERM), and its arguments.
// Every wait is bounded; nothing asserts on time.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/grid_admin.h"
#include "numagrid/grid.h"
#include "tests/support/cli_child.h"
#include "tests/support/journal_grid.h"
#include "tests/support/test_grid.h"

namespace numagrid {
namespace {

using ::numagrid::testing::GridGuard;
using ::numagrid::testing::SystemTopology;
using ::numagrid::testing::TempDir;
using ::numagrid::testing::UniqueName;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kCli = NUMAGRID_CLI;
constexpr int kDeadlineMs = 20000;  // only reached when something hangs
constexpr std::string_view kLeaveScreen = "\033[?25h\033[?1049l";

// A memory-only grid of 8 partitions, destroyed with the object.
class TopGrid {
 public:
  TopGrid() : name_(UniqueName("top")), guard_(name_) {
    core::CreateOptions o;
    o.partitions = 8;
    o.memory_bytes = 8ULL << 20;
    const auto created = core::CreateGrid(name_, o, SystemTopology());
    EXPECT_TRUE(created.ok()) << created.status().message();
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  GridGuard guard_;
};

// `numagrid args...` with its output read through one descriptor: a
// pseudo-terminal (stdin, stdout and stderr its slave side, 40x120) or,
// with `pty` false, a pipe (stdout and stderr; stdin /dev/null).
// SIGKILLed and reaped when the object goes away if still running.
class TopChild {
 public:
  TopChild(const std::vector<std::string>& args, bool pty) {
    std::vector<std::string> argv_s = {kCli};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (pty) {
      winsize ws{};
      ws.ws_row = 40;
      ws.ws_col = 120;
      pid_ = forkpty(&fd_, nullptr, nullptr, &ws);
      if (pid_ == 0) {
        execv(kCli, argv.data());
        _exit(127);
      }
      if (pid_ < 0) ADD_FAILURE() << "forkpty: " << errno;
      return;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << errno;
      return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    const int rc = posix_spawn(&pid_, kCli, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    fd_ = p[0];
    if (rc != 0) {
      ADD_FAILURE() << "posix_spawn: " << rc;
      pid_ = -1;
    }
  }
  ~TopChild() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    if (fd_ >= 0) close(fd_);
  }
  TopChild(const TopChild&) = delete;
  TopChild& operator=(const TopChild&) = delete;

  pid_t pid() const { return pid_; }
  int fd() const { return fd_; }
  const std::string& output() const { return out_; }

  // Reads until `done(output())` or the end of the output; returns done's
  // last answer.
  bool ReadUntil(const std::function<bool(const std::string&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(kDeadlineMs);
    while (!done(out_)) {
      if (eof_ || std::chrono::steady_clock::now() > deadline) return false;
      ReadSome();
    }
    return true;
  }

  void Send(std::string_view bytes) {
    ASSERT_EQ(write(fd_, bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }

  // Reads to the end of the output and reaps the child: its exit code
  // (128 + signal when killed), or -1 if it has not ended by the deadline.
  int WaitExit() {
    ReadUntil([](const std::string&) { return false; });
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(kDeadlineMs);
    int status = 0;
    for (;;) {
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (r < 0 && errno != EINTR) return -1;
      if (std::chrono::steady_clock::now() > deadline) return -1;
      poll(nullptr, 0, 10);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  void ReadSome() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) return;
    char buf[4096];
    const ssize_t n = read(fd_, buf, sizeof buf);
    if (n > 0) {
      out_.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      eof_ = true;  // EIO from a pty whose slave side is closed
    }
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  bool eof_ = false;
  std::string out_;
};

// How many frames `out` holds (each starts with the title).
std::size_t Frames(const std::string& out, const std::string& name) {
  std::size_t n = 0;
  const std::string title = "numagrid top: " + name + " ";
  for (auto p = out.find(title); p != std::string::npos;
       p = out.find(title, p + 1)) {
    ++n;
  }
  return n;
}

// Every puts rate the frames in `out` show ("-", "0", "2000", "1.2k").
std::vector<std::string> PutRates(const std::string& out) {
  static const std::regex kRate("  puts ([^ /]+)/s");
  std::vector<std::string> rates;
  for (std::sregex_iterator it(out.begin(), out.end(), kRate), end; it != end;
       ++it) {
    rates.push_back((*it)[1]);
  }
  return rates;
}

tcflag_t LocalModes(int pty_fd) {
  termios t{};
  EXPECT_EQ(tcgetattr(pty_fd, &t), 0);
  return t.c_lflag;
}

// Runs top under a pty until it drew `name`'s grid twice, checks the
// screen and the modes, makes puts and waits for a frame with their rate.
void DrawsFramesThatFollowPuts(TopChild& top, const std::string& name) {
  ASSERT_TRUE(top.ReadUntil([&](const std::string& out) {
    return Frames(out, name) >= 2;
  })) << top.output();
  const std::string& out = top.output();
  EXPECT_EQ(out.rfind("\033[?1049h\033[?25l", 0), 0u)
      << "enters the alternate screen, cursor hidden, first";
  EXPECT_THAT(out, HasSubstr("\033[H\033[2Knumagrid top: " + name + " "));
  EXPECT_THAT(out, HasSubstr("\r\n\033[2Knode entries  used  free get/s  hit% "
                             "put/s"));
  EXPECT_THAT(out, HasSubstr("\r\n\033[2K0 "));  // node 0's row
  EXPECT_THAT(out, HasSubstr("part node entries"));
  const tcflag_t modes = LocalModes(top.fd());
  EXPECT_EQ(modes & ICANON, 0u) << "cbreak while it runs";
  EXPECT_EQ(modes & ECHO, 0u);
  EXPECT_NE(modes & ISIG, 0u) << "Ctrl-C still sends SIGINT";

  auto grid = Grid::Attach(name);
  ASSERT_TRUE(grid.ok()) << grid.status().message();
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(grid->Put("k" + std::to_string(i), "v").ok());
  }
  // 133 hits and 67 misses: node 0's hit rate column shows them.
  std::string v;
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(
        grid->Get("k" + std::to_string(i % 3 == 0 ? 1000 + i : i), &v).ok(),
        i % 3 != 0);
  }
  const std::size_t seen = top.output().size();
  EXPECT_TRUE(top.ReadUntil([&](const std::string& o) {
    for (const std::string& r : PutRates(o.substr(seen))) {
      if (r != "0" && r != "-") return true;
    }
    return false;
  })) << "no frame shows the puts' rate: "
      << top.output().substr(seen);
  // node entries used free get/s hit%: the node's own hit rate.
  static const std::regex kNodeHitRate(
      "\r\n\033\\[2K0 +\\S+ +\\S+ +\\S+ +\\S+ +(\\S+) ");
  EXPECT_TRUE(top.ReadUntil([&](const std::string& o) {
    const std::string tail = o.substr(seen);
    for (std::sregex_iterator it(tail.begin(), tail.end(), kNodeHitRate), end;
         it != end; ++it) {
      // 66.5% when one frame's interval holds all 200 gets; a frame
      // boundary among them splits them, so any rate counts. The exact
      // numbers are TopFrame's unit tests.
      const std::string rate = (*it)[1];
      if (rate.back() == '%') return true;
    }
    return false;
  })) << "no frame shows node 0's hit rate: "
      << top.output().substr(seen);
}

void EndsRestoringTheTerminal(TopChild& top) {
  EXPECT_EQ(top.WaitExit(), 0) << top.output();
  const std::string& out = top.output();
  ASSERT_GE(out.size(), kLeaveScreen.size());
  EXPECT_EQ(out.substr(out.size() - kLeaveScreen.size()), kLeaveScreen)
      << "shows the cursor and leaves the alternate screen last";
  // The pty's modes outlive the child while the master side is open.
  const tcflag_t modes = LocalModes(top.fd());
  EXPECT_NE(modes & ICANON, 0u) << "cbreak mode off again";
  EXPECT_NE(modes & ECHO, 0u);
}

TEST(TopPty, DrawsFramesFollowsPutsAndQuitsOnQ) {
  TopGrid grid;
  TopChild top({"top", grid.name(), "--interval", "0.2"}, /*pty=*/true);
  ASSERT_GT(top.pid(), 0);
  DrawsFramesThatFollowPuts(top, grid.name());
  top.Send("q");
  EndsRestoringTheTerminal(top);
}

TEST(TopPty, CtrlCQuitsCleanly) {
  TopGrid grid;
  TopChild top({"top", grid.name(), "--interval", "0.2"}, /*pty=*/true);
  ASSERT_GT(top.pid(), 0);
  ASSERT_TRUE(top.ReadUntil([&](const std::string& out) {
    return Frames(out, grid.name()) >= 1;
  })) << top.output();
  top.Send("\x03");  // the line discipline turns it into SIGINT
  EndsRestoringTheTerminal(top);
}

TEST(TopCli, WithoutATerminalPrintsPlainFramesAndEndsAfterIterations) {
  TopGrid grid;
  TopChild top({"top", grid.name(), "--interval", "0.1", "--iterations", "3"},
               /*pty=*/false);
  ASSERT_GT(top.pid(), 0);
  EXPECT_EQ(top.WaitExit(), 0) << top.output();
  EXPECT_EQ(Frames(top.output(), grid.name()), 3u) << top.output();
  EXPECT_THAT(top.output(), Not(HasSubstr("\033"))) << "no escape sequences";
  EXPECT_THAT(top.output(), HasSubstr("\nnode entries"));
  // The first frame has no rates; the later ones do.
  EXPECT_EQ(PutRates(top.output()), (std::vector<std::string>{"-", "0", "0"}));
}

TEST(TopCli, WithoutATerminalSigintAndSigtermEndItCleanly) {
  for (int signo : {SIGINT, SIGTERM}) {
    TopGrid grid;
    TopChild top({"top", grid.name(), "--interval", "0.2"}, /*pty=*/false);
    ASSERT_GT(top.pid(), 0);
    // Once a frame is out, the handlers are in place.
    ASSERT_TRUE(top.ReadUntil([&](const std::string& out) {
      return Frames(out, grid.name()) >= 1;
    })) << top.output();
    ASSERT_EQ(kill(top.pid(), signo), 0);
    EXPECT_EQ(top.WaitExit(), 0) << "signal " << signo << ": " << top.output();
  }
}

TEST(TopCli, HelpExplainsEveryOption) {
  TempDir dir;
  const testing::CliRun r =
      testing::RunCli(kCli, {"top", "--help"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << testing::Describe(r);
  EXPECT_THAT(r.out, HasSubstr("usage: numagrid top NAME"));
  EXPECT_THAT(r.out, HasSubstr("--interval SECONDS"));
  EXPECT_THAT(r.out, HasSubstr("--iterations N"));
  EXPECT_THAT(r.out, HasSubstr("q quits"));
  EXPECT_THAT(r.out, HasSubstr("not per partition or node"));
  const testing::CliRun usage = testing::RunCli(kCli, {"--help"}, dir.path());
  EXPECT_THAT(usage.out, HasSubstr("  top "));
}

TEST(TopCli, AGridThatDoesNotExistExits3) {
  TempDir dir;
  const std::string name = UniqueName("top");
  const testing::CliRun r = testing::RunCli(kCli, {"top", name}, dir.path());
  EXPECT_EQ(r.exit_code, 3) << testing::Describe(r);
  EXPECT_THAT(r.err, HasSubstr("'" + name + "' does not exist"));
  EXPECT_EQ(r.out, "");
}

TEST(TopCli, RefusesABadIntervalOrIterationCount) {
  TopGrid grid;
  TempDir dir;
  for (const char* bad : {"0", "0.0", "-1", "abc", "1x", "0x10", "inf", "nan",
                          "", ".", "86401"}) {
    const testing::CliRun r = testing::RunCli(
        kCli, {"top", grid.name(), "--interval", bad}, dir.path());
    EXPECT_EQ(r.exit_code, 2) << "'" << bad << "': " << testing::Describe(r);
    EXPECT_THAT(r.err, HasSubstr("--interval needs a number of seconds"));
  }
  for (const char* bad : {"0", "-1", "x"}) {
    const testing::CliRun r = testing::RunCli(
        kCli, {"top", grid.name(), "--iterations", bad}, dir.path());
    EXPECT_EQ(r.exit_code, 2) << "'" << bad << "': " << testing::Describe(r);
  }
  EXPECT_EQ(testing::RunCli(kCli, {"top"}, dir.path()).exit_code, 2);
  EXPECT_EQ(testing::RunCli(kCli, {"top", grid.name(), "--bogus"}, dir.path())
                .exit_code,
            2);
}

}  // namespace
}  // namespace numagrid

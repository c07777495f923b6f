// The `numagrid` tool run as a child process by a test: its exit code and
// what it printed, or (for long-running commands such as `start
// --foreground`) a handle that the test may signal and wait for.
//
// Thread safety: thread-compatible.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace numagrid::testing {

struct CliRun {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
};

// "exit N, stdout: ..., stderr: ...", for failure messages.
std::string Describe(const CliRun& r);

// A child running `cli args...`, stdin /dev/null, its stdout and stderr
// going to files in `dir` (removed with the object). The child is SIGKILLed
// if it still runs when the object goes away.
class CliChild {
 public:
  CliChild(const std::string& cli, const std::vector<std::string>& args,
           const std::string& dir);
  ~CliChild();
  CliChild(const CliChild&) = delete;
  CliChild& operator=(const CliChild&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // Waits for the child's exit; -1 exit code if it never started.
  CliRun Wait();

 private:
  pid_t pid_ = -1;
  std::string out_path_;
  std::string err_path_;
};

// Runs `cli args...` to completion.
CliRun RunCli(const std::string& cli, const std::vector<std::string>& args,
              const std::string& dir);

}  // namespace numagrid::testing

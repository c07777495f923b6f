#include "tests/support/cli_child.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include "tests/support/journal_grid.h"

namespace numagrid::testing {

std::string Describe(const CliRun& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout: " + r.out +
         "\nstderr: " + r.err;
}

CliChild::CliChild(const std::string& cli, const std::vector<std::string>& args,
                   const std::string& dir) {
  static std::atomic<int> counter{0};
  const std::string base = dir + "/cli" + std::to_string(getpid()) + "-" +
                           std::to_string(counter.fetch_add(1));
  out_path_ = base + ".out";
  err_path_ = base + ".err";
  std::vector<std::string> argv_s = {cli};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const int rc =
      posix_spawn(&pid_, cli.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << cli << ": "
                  << std::strerror(rc);  // NOLINT(concurrency-mt-unsafe)
    pid_ = -1;
  }
}

CliChild::~CliChild() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    (void)Wait();
  }
  unlink(out_path_.c_str());
  unlink(err_path_.c_str());
}

CliRun CliChild::Wait() {
  CliRun r;
  if (pid_ <= 0) return r;
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  r.exit_code =
      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFileBytes(out_path_);
  r.err = ReadFileBytes(err_path_);
  return r;
}

CliRun RunCli(const std::string& cli, const std::vector<std::string>& args,
              const std::string& dir) {
  CliChild c(cli, args, dir);
  return c.Wait();
}

}  // namespace numagrid::testing

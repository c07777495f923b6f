#include "tests/support/test_grid.h"

#include <dirent.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>

namespace numagrid::testing {
namespace {

std::mutex& CleanupMu() {
  static std::mutex mu;
  return mu;
}
std::set<std::string>& CleanupSet() {
  static std::set<std::string> s;
  return s;
}
pid_t& OwnerPid() {
  static pid_t pid = 0;
  return pid;
}

void CleanupAtExit() {
  // Forked children inherit the atexit handler: only the creator cleans up.
  if (getpid() != OwnerPid()) return;
  std::lock_guard<std::mutex> lock(CleanupMu());
  for (const auto& f : CleanupSet()) RemoveShmMatching(f);
}

}  // namespace

std::string UniqueName(std::string_view suffix) {
  static std::atomic<int> counter{0};
  std::string base = "t" + std::to_string(getpid()) + "x" +
                     std::to_string(counter.fetch_add(1));
  {
    std::lock_guard<std::mutex> lock(CleanupMu());
    if (CleanupSet().empty()) {
      OwnerPid() = getpid();
      std::atexit(CleanupAtExit);
    }
    CleanupSet().insert(base);
  }
  return base + std::string(suffix);
}

void RemoveShmMatching(std::string_view fragment) {
  DIR* d = opendir("/dev/shm");
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    std::string_view n(e->d_name);
    if (n.find(fragment) != std::string_view::npos) {
      unlinkat(dirfd(d), e->d_name, 0);
    }
  }
  closedir(d);
}

pid_t ForkChild(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    int rc = 99;
    try {
      rc = body();
    } catch (...) {
      rc = 99;
    }
    _exit(rc);
  }
  return pid;
}

int WaitChild(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

Unprivileged NobodyUser() {
  if (passwd* pw = getpwnam("nobody")) return {pw->pw_uid, pw->pw_gid};
  return {65534, 65534};
}

}  // namespace numagrid::testing

// Helpers shared by the test suites: unique names for segments and grids
// (removed again on exit, even when a test fails), and fork/wait wrappers.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>

namespace numagrid::testing {

// A name no other test process uses: "t<pid>x<counter><suffix>". Every
// /dev/shm entry that contains it is removed when the test binary exits.
std::string UniqueName(std::string_view suffix = "");

// Removes every /dev/shm entry whose name contains `fragment`.
void RemoveShmMatching(std::string_view fragment);

// Forks; the child runs `body` and _exit()s with its return value (or 99 if
// it throws). Returns the child's pid.
pid_t ForkChild(const std::function<int()>& body);

// Waits for `pid`; returns its exit code, or 128 + signal when it was killed.
int WaitChild(pid_t pid);

// A uid/gid with no rights on root's files (nobody), for permission tests.
struct Unprivileged {
  uid_t uid;
  gid_t gid;
};
Unprivileged NobodyUser();

}  // namespace numagrid::testing

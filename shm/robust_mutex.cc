#include "shm/robust_mutex.h"

#include <errno.h>
#include <time.h>

namespace numagrid::shm {
namespace {

LockResult FromErrno(int rc) noexcept {
  switch (rc) {
    case 0:
      return LockResult::kAcquired;
    case EOWNERDEAD:
      return LockResult::kAcquiredOwnerDied;
    case ENOTRECOVERABLE:
      return LockResult::kUnrecoverable;
    default:
      return LockResult::kTimedOut;  // ETIMEDOUT, EBUSY
  }
}

}  // namespace

int RobustMutex::Initialize() noexcept {
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc != 0) return rc;
  rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  if (rc == 0) rc = pthread_mutex_init(&mu, &attr);
  pthread_mutexattr_destroy(&attr);
  return rc;
}

LockResult RobustMutex::Lock(std::uint64_t deadline_ns) noexcept {
  if (deadline_ns == 0) return FromErrno(pthread_mutex_lock(&mu));
#if defined(__SANITIZE_THREAD__)
  // GCC 12's TSan does not intercept pthread_mutex_clocklock (it would then
  // report every unlock as one of an unlocked mutex): give it the same
  // deadline on CLOCK_REALTIME through pthread_mutex_timedlock.
  timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  const std::uint64_t now = MonotonicNowNs();
  const std::uint64_t left = deadline_ns > now ? deadline_ns - now : 0;
  const std::uint64_t rt_deadline =
      static_cast<std::uint64_t>(rt.tv_sec) * 1000000000ULL +
      static_cast<std::uint64_t>(rt.tv_nsec) + left;
  timespec ts{static_cast<time_t>(rt_deadline / 1000000000),
              static_cast<long>(rt_deadline % 1000000000)};
  return FromErrno(pthread_mutex_timedlock(&mu, &ts));
#else
  timespec ts{static_cast<time_t>(deadline_ns / 1000000000),
              static_cast<long>(deadline_ns % 1000000000)};
  return FromErrno(pthread_mutex_clocklock(&mu, CLOCK_MONOTONIC, &ts));
#endif
}

LockResult RobustMutex::TryLock() noexcept {
  return FromErrno(pthread_mutex_trylock(&mu));
}

void RobustMutex::MarkConsistent() noexcept { pthread_mutex_consistent(&mu); }

void RobustMutex::Unlock() noexcept { pthread_mutex_unlock(&mu); }

std::uint64_t MonotonicNowNs() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace numagrid::shm

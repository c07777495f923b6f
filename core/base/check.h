// Invariant checks. A failed check is a bug in this process, never bad data:
// bad bytes in a segment or file are reported as kCorruption instead.
#pragma once

#include <cstdio>
#include <cstdlib>

#define NUMAGRID_CHECK(cond)                                                \
  do {                                                                      \
    if (__builtin_expect(!(cond), 0)) {                                     \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                  \
      std::abort();                                                         \
    }                                                                       \
  } while (0)

#ifdef NDEBUG
#define NUMAGRID_DCHECK(cond) \
  do {                        \
    (void)sizeof(cond);       \
  } while (0)
#else
#define NUMAGRID_DCHECK(cond) NUMAGRID_CHECK(cond)
#endif

// Returns early from the enclosing function with the Status of `expr` when it
// is not OK.
#define NUMAGRID_RETURN_IF_ERROR(expr)         \
  do {                                         \
    ::numagrid::Status numagrid_s_ = (expr);   \
    if (!numagrid_s_.ok()) return numagrid_s_; \
  } while (0)

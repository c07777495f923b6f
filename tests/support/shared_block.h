// SharedBlock<T>: one T in anonymous shared memory, so that forked children
// and their parent see the same object (counters, logs, handshakes).
#pragma once

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace numagrid::testing {

template <typename T>
class SharedBlock {
 public:
  SharedBlock() {
    void* p = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    t_ = new (p) T();
  }
  ~SharedBlock() { munmap(t_, sizeof(T)); }
  SharedBlock(const SharedBlock&) = delete;
  SharedBlock& operator=(const SharedBlock&) = delete;
  T* operator->() const { return t_; }
  T* get() const { return t_; }

 private:
  T* t_;
};

}  // namespace numagrid::testing

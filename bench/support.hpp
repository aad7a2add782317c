#pragma once
// Shared by the benchmark programs.
#include <sched.h>
#include <sys/mman.h>

#include <new>

namespace bench {

// Best effort: on a machine with fewer CPUs the numbers are only noisier.
inline void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

// An object in anonymous shared memory, for the primitives of other libraries that must live
// there themselves. Children forked afterwards share it; release_shared_object() unmaps it.
template <class T, class... Args>
T& shared_object(Args&&... args) {
  void* memory = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::bad_alloc();
  return *new (memory) T(static_cast<Args&&>(args)...);
}
template <class T>
void release_shared_object(T& object) {
  object.~T();
  munmap(&object, sizeof(T));
}

}  // namespace bench

#pragma once
// Internal: futex wait/wake on a 32-bit word in memory shared between processes.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>

#include <sched.h>

#include <multiproc/detail/os/deadline.hpp>

namespace multiproc::detail {

timespec to_timespec(Deadline deadline) noexcept;

// Sleeps while *word == expected, until a wake, a signal, or `deadline` (nullptr: none). Returns
// false only once the deadline has passed. Wakes may be spurious: callers re-check their condition.
// Not FUTEX_PRIVATE: the word may be mapped by several processes.
bool futex_wait_until(std::uint32_t* word, std::uint32_t expected, const Deadline* deadline) noexcept;

// Wakes up to `waiters` sleepers on `word` (INT_MAX for all).
void futex_wake(std::uint32_t* word, int waiters) noexcept;

// How long a waiter spins before it sleeps. A partner on another core usually answers within a
// microsecond, far sooner than a futex sleep and wake-up (30 us on this project's virtual machines).
// Measured by bench_sync's pingpong rows: with budgets of 63 pauses, 2, 10 and 50 us, a Semaphore
// round trip between two processes took 31.9, 15.6, 0.32 and 0.26 us (a pipe: 61 us). 20 us of CPU
// per unsatisfied wait is what it costs.
inline constexpr auto spin_budget = std::chrono::microseconds(20);

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spinning only helps when the partner can run meanwhile on another CPU.
bool spinning_helps() noexcept;

// Calls `ready()` until it returns true (then returns true) or the spin budget or `deadline` is
// spent (then false). Every 64 tries it reads the clock and yields the CPU: on a machine with few
// cores, the thread we wait for may be runnable but waiting for this very CPU (a pool's manager,
// its worker and the caller on 2 cores). Measured on this project's 2-core VMs with bench_pool:
// apply_async+get 43-56 us without the yield, 4.7-5.9 us with it; map with chunksize 1 0.93 ->
// 0.72 us per task; bench_sync's two-process ping-pong unchanged (313 ns).
template <class Ready>
bool spin_until(Ready&& ready, Deadline deadline) {
  if (ready()) {
    return true;
  }
  if (!spinning_helps()) {
    return false;
  }
  const Deadline spin_until = std::min(Clock::now() + spin_budget, deadline);
  for (unsigned tries = 1;; ++tries) {
    cpu_relax();
    if (ready()) {
      return true;
    }
    if (tries % 64 == 0) {
      if (Clock::now() >= spin_until) {
        return false;
      }
      sched_yield();
    }
  }
}

// How long a waiter sleeps before it looks again by itself, in case the wake meant for it went to a
// process killed before it could act (see Recheck in doorbell.hpp, and RobustMutex::acquire_until).
// Costs a blocked waiter one system call per slice; bounds what such a loss can cost.
inline constexpr auto lost_wake_recheck = std::chrono::milliseconds(100);

// The end of the next slice of a wait that must end by `deadline`.
inline Deadline next_recheck(Deadline deadline) noexcept {
  const Deadline now = Clock::now();
  return deadline - now > lost_wake_recheck ? now + lost_wake_recheck : deadline;
}

}  // namespace multiproc::detail

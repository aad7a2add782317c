#include "futex.hpp"

#include <algorithm>
#include <atomic>
#include <thread>
#include <cerrno>
#include <climits>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace multiproc::detail {

timespec to_timespec(Deadline deadline) noexcept {
  const auto since_epoch = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch());
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  return timespec{static_cast<time_t>(seconds.count()), static_cast<long>((since_epoch - seconds).count())};
}

bool futex_wait_until(std::uint32_t* word, std::uint32_t expected, const Deadline* deadline) noexcept {
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so an EINTR retry needs no
  // recomputation and a wall-clock jump changes nothing.
  timespec absolute{};
  if (deadline != nullptr) {
    absolute = to_timespec(*deadline);
  }
  const long rc = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, deadline ? &absolute : nullptr,
                          nullptr, FUTEX_BITSET_MATCH_ANY);
  return !(rc == -1 && errno == ETIMEDOUT);
}

void futex_wake(std::uint32_t* word, int waiters) noexcept {
  syscall(SYS_futex, word, FUTEX_WAKE, waiters, nullptr, nullptr, 0);
}

namespace {

// How long a waiter spins before it sleeps. A partner on another core usually answers within a
// microsecond, far sooner than a futex sleep and wake-up (30 us on this project's virtual machines).
// Measured by bench_sync's pingpong rows: with budgets of 63 pauses, 2, 10 and 50 us, a Semaphore
// round trip between two processes took 31.9, 15.6, 0.32 and 0.26 us (a pipe: 61 us). 20 us of CPU per unsatisfied
// wait is what it costs.
constexpr auto spin_budget = std::chrono::microseconds(20);

void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spinning only helps when the partner can run meanwhile on another CPU.
bool worth_spinning() noexcept {
  static const bool several_cpus = std::thread::hardware_concurrency() > 1;
  return several_cpus;
}

// Returns true as soon as `word` differs from `expected`, false once the spin budget (or the
// deadline) is spent. Reads are relaxed: callers re-read with the order they need.
bool spin_while_equal(const std::uint32_t& word, std::uint32_t expected, Deadline deadline) noexcept {
  const std::atomic_ref<const std::uint32_t> value(word);
  if (worth_spinning()) {
    const Deadline spin_until = std::min(Clock::now() + spin_budget, deadline);
    for (unsigned i = 1; value.load(std::memory_order_relaxed) == expected; ++i) {
      if (i % 64 == 0 && Clock::now() >= spin_until) {
        break;
      }
      cpu_relax();
    }
  }
  return value.load(std::memory_order_relaxed) != expected;
}

}  // namespace

bool sleep_while_equal(std::uint32_t& word, std::uint32_t& sleepers, std::uint32_t expected,
                       Deadline deadline) noexcept {
  if (spin_while_equal(word, expected, deadline)) {
    return true;
  }
  std::atomic_ref<std::uint32_t> count(sleepers);
  count.fetch_add(1, std::memory_order_seq_cst);
  const bool in_time = futex_wait_until(&word, expected, deadline == Deadline::max() ? nullptr : &deadline);
  count.fetch_sub(1, std::memory_order_relaxed);  // only a hint for wakers; nothing is published by it
  return in_time;
}

void wake_sleepers(std::uint32_t& word, std::uint32_t& sleepers, int how_many) noexcept {
  if (std::atomic_ref<std::uint32_t>(sleepers).load(std::memory_order_seq_cst) != 0) {
    futex_wake(&word, how_many);
  }
}

}  // namespace multiproc::detail

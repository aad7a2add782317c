#include "os/futex.hpp"

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
// Computed when the library is loaded, before any thread exists: a function-local static would be
// initialised lazily under a guard, and a fork while another thread held that guard would leave
// the child waiting on it forever.
const bool several_cpus = std::thread::hardware_concurrency() > 1;
}  // namespace

bool spinning_helps() noexcept { return several_cpus; }

bool sleep_while_equal(std::uint32_t& word, std::uint32_t& sleepers, std::uint32_t expected, Deadline deadline,
                       Recheck recheck, Spin spin) noexcept {
  const std::atomic_ref<const std::uint32_t> value(word);
  if (spin == Spin::first && spin_until([&] { return value.load(std::memory_order_relaxed) != expected; }, deadline)) {
    return true;
  }
  std::atomic_ref<std::uint32_t> count(sleepers);
  count.fetch_add(1, std::memory_order_seq_cst);
  const Deadline slice_end = recheck == Recheck::periodically ? next_recheck(deadline) : deadline;
  const bool in_time = futex_wait_until(&word, expected, slice_end == Deadline::max() ? nullptr : &slice_end) ||
                       slice_end < deadline;
  count.fetch_sub(1, std::memory_order_relaxed);  // only a hint for wakers; nothing is published by it
  return in_time;
}

void wake_sleepers(std::uint32_t& word, std::uint32_t& sleepers, int how_many) noexcept {
  if (std::atomic_ref<std::uint32_t>(sleepers).load(std::memory_order_seq_cst) != 0) {
    futex_wake(&word, how_many);
  }
}

}  // namespace multiproc::detail

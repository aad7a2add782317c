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

}  // namespace multiproc::detail

#pragma once
// Internal: turning a std::chrono timeout into an absolute point on the monotonic clock, so that
// a wait interrupted by a signal resumes with exactly the time that is left.
#include <chrono>

namespace multiproc::detail {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC in libstdc++ on Linux
using Deadline = Clock::time_point;

// now + timeout, saturating at Deadline::max() (so `hours::max()` means "forever"); a zero or
// negative timeout is "now": try once, do not wait.
template <class Rep, class Period>
Deadline deadline_after(std::chrono::duration<Rep, Period> timeout) noexcept {
  const Deadline now = Clock::now();
  if (timeout <= timeout.zero()) {
    return now;
  }
  if (std::chrono::duration<double>(timeout) >= std::chrono::duration<double>(Deadline::max() - now)) {
    return Deadline::max();
  }
  return now + std::chrono::ceil<Clock::duration>(timeout);
}

}  // namespace multiproc::detail

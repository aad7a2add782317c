#pragma once
// Internal: futex wait/wake on a 32-bit word in memory shared between processes.
#include <chrono>
#include <cstdint>
#include <ctime>

namespace multiproc::detail {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC in libstdc++ on Linux
using Deadline = Clock::time_point;

timespec to_timespec(Deadline deadline) noexcept;

// Sleeps while *word == expected, until a wake, a signal, or `deadline` (nullptr: none). Returns
// false only once the deadline has passed. Wakes may be spurious: callers re-check their condition.
// Not FUTEX_PRIVATE: the word may be mapped by several processes.
bool futex_wait_until(std::uint32_t* word, std::uint32_t expected, const Deadline* deadline) noexcept;

// Wakes up to `waiters` sleepers on `word` (INT_MAX for all).
void futex_wake(std::uint32_t* word, int waiters) noexcept;

}  // namespace multiproc::detail

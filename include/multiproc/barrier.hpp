#pragma once
// Barrier: `parties` processes or threads wait until all have arrived, as Python's Barrier.
//
//   multiproc::Barrier start{4};
//   // in each of 4 workers:
//   std::size_t index = start.wait(std::chrono::seconds(5));   // 0..3, distinct
//
// A wait that times out breaks the barrier: every waiter, and every later wait until reset(),
// throws BrokenBarrier. So a party that dies or never comes cannot leave the others blocked forever,
// provided they wait with a timeout. abort() breaks it on purpose; reset() makes it usable again
// (waiters at that moment get BrokenBarrier). A party that arrived and then died still counts as
// arrived, as in Python. A waiter sleeps on a futex and uses no CPU.
//
// As in Python, a Barrier may be given an `action`, run by the last party to arrive (one call per
// round, before anyone is released), and a default timeout for wait() without one. Both belong to
// the handle, not to the shared state: a forked child inherits them, a process that opens a named
// barrier gives its own. An action that throws breaks the barrier (the others get BrokenBarrier)
// and its exception reaches the party that ran it; an action that dies breaks it too.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <type_traits>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/error.hpp>
#include <multiproc/export.hpp>
#include <multiproc/lock.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

// Shared state. Fixed layout, trivially copyable. `guard` serialises every change; sleepers read
// `generation` without it.
struct BarrierState {
  // Robust: a process that dies while holding it (a few instructions) leaves the other fields
  // possibly half-updated, so the next holder, seeing recovered(), breaks the barrier.
  LockState guard;
  std::uint32_t parties;     // written once by the creator, read-only afterwards
  std::uint32_t arrived;     // waiters in the current generation; under `guard`
  // Futex word: +1 (seq_cst, under `guard`) whenever a generation ends, by the last arrival, a
  // break, or a reset; waiters sleep while it still holds the value it had when they arrived.
  std::uint32_t generation;
  std::uint32_t sleepers;    // waiters asleep on `generation`
  std::uint32_t broken;      // 1 while broken: waits fail at once until reset(); under `guard`
  std::uint32_t reserved;
  // How recent generations ended: bit (g % 64) is set if generation g ended broken, clear if it
  // ended because all parties arrived; under `guard`. A woken waiter reads the bit of its own
  // generation. It would misread only if 64 further generations ended between its wake-up and
  // its read, which needs other processes to pass the barrier 64 times while it is descheduled.
  std::uint64_t ended_broken;
};
static_assert(std::is_trivially_copyable_v<BarrierState> && alignof(BarrierState) == alignof(LockState));
static_assert(offsetof(BarrierState, parties) == sizeof(LockState) &&
              offsetof(BarrierState, ended_broken) == sizeof(LockState) + 6 * sizeof(std::uint32_t) &&
              sizeof(BarrierState) == sizeof(LockState) + 6 * sizeof(std::uint32_t) + sizeof(std::uint64_t));
static_assert(detail::atomic_across_processes<std::uint32_t>);

class MULTIPROC_API Barrier {
 public:
  // Run by the last party to arrive, before the round's waiters are released.
  using Action = std::function<void()>;
  // The timeout of a wait() called without one; nullopt: wait as long as it takes.
  using Timeout = std::optional<std::chrono::nanoseconds>;

  explicit Barrier(int parties, Action action = {}, Timeout timeout = std::nullopt)
      : Barrier(Where(), parties, std::move(action), timeout) {}
  Barrier(create_t how, std::string_view name, int parties, Action action = {}, Timeout timeout = std::nullopt)
      : Barrier(Where(how, name), parties, std::move(action), timeout) {}
  explicit Barrier(open_t how, std::string_view name, Action action = {}, Timeout timeout = std::nullopt)
      : Barrier(Where(how, name), 0, std::move(action), timeout) {}
  Barrier(open_or_create_t how, std::string_view name, int parties, Action action = {},
          Timeout timeout = std::nullopt)
      : Barrier(Where(how, name), parties, std::move(action), timeout) {}

  // Blocks until all parties have arrived (or the default timeout passes: see below); returns
  // this caller's arrival index, 0..parties-1. Throws BrokenBarrier if the barrier is or becomes
  // broken.
  std::size_t wait() {
    return wait_until(default_timeout_ ? detail::deadline_after(*default_timeout_) : detail::Deadline::max());
  }
  // As wait(); if `timeout` passes first, breaks the barrier and throws BrokenBarrier.
  template <class Rep, class Period>
  std::size_t wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout));
  }
  // Breaks the barrier: current and later waits throw BrokenBarrier until reset().
  void abort();
  // Returns the barrier to its empty, unbroken state; current waiters get BrokenBarrier.
  void reset();
  [[nodiscard]] bool broken() const;
  [[nodiscard]] int parties() const noexcept;
  [[nodiscard]] int n_waiting() const;

  // Empty for an anonymous barrier.
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  // The name it travels by to another process (see codec.hpp). ValueError when anonymous, or when
  // it has an action (a function of this process).
  [[nodiscard]] const std::string& name_to_travel() const {
    if (action_) {
      throw ValueError("multiproc: a Barrier with an action cannot be sent to another process: open it there by name "
                       "with the action");
    }
    return segment_.name_to_travel("Barrier");
  }

 private:
  Barrier(const Where& where, int parties, Action action, Timeout timeout);
  std::size_t wait_until(detail::Deadline deadline);
  [[nodiscard]] std::unique_lock<Lock> hold() const;
  void end_generation(bool broken) const;

  Segment segment_;
  BarrierState* state_;
  mutable Lock guard_;  // a view of state_->guard
  Action action_;
  Timeout default_timeout_;
};

}  // namespace multiproc

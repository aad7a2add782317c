#pragma once
// Condition: wait until another process or thread says something changed, as Python's
// multiprocessing.Condition. Owns a Lock, or borrows one that the caller keeps alive.
//
//   multiproc::Condition ready;
//   // consumer:                                  // producer:
//   std::scoped_lock guard(ready);                 std::scoped_lock guard(ready);
//   ready.wait_for([&] { return count.value() > 0; });   count.value() += 1; ready.notify();
//
// Waiters sleep on a futex word that every notify bumps, so they use no CPU, and a waiter that dies
// simply leaves the kernel's queue: later notifications still reach the others. As in Python,
// notify while holding the lock; a notify without it may be missed by a waiter that is just about
// to wait. Wake-ups may be spurious: wait in a loop on a predicate, or use wait_for.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <optional>
#include <string_view>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/export.hpp>
#include <multiproc/lock.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

// Shared state (an owned Lock's LockState precedes it in the segment). Fixed layout.
struct ConditionState {
  // Bumped by every notify (fetch_add, seq_cst: ordered before the read of `sleepers`). A waiter
  // reads it while holding the lock, releases the lock, and sleeps while it is unchanged.
  std::uint32_t sequence;
  // Waiters asleep on `sequence`.
  std::uint32_t sleepers;
};
static_assert(std::is_trivially_copyable_v<ConditionState> && sizeof(ConditionState) == 8 &&
              alignof(ConditionState) == 4);
static_assert(detail::atomic_across_processes<std::uint32_t>);

class MULTIPROC_API Condition {
 public:
  Condition() : Condition(Where(), nullptr) {}
  explicit Condition(Lock& lock) : Condition(Where(), &lock) {}
  Condition(create_t how, std::string_view name) : Condition(Where(how, name), nullptr) {}
  Condition(create_t how, std::string_view name, Lock& lock) : Condition(Where(how, name), &lock) {}
  Condition(open_t how, std::string_view name) : Condition(Where(how, name), nullptr) {}
  Condition(open_t how, std::string_view name, Lock& lock) : Condition(Where(how, name), &lock) {}
  Condition(open_or_create_t how, std::string_view name) : Condition(Where(how, name), nullptr) {}
  Condition(open_or_create_t how, std::string_view name, Lock& lock) : Condition(Where(how, name), &lock) {}

  [[nodiscard]] Lock& get_lock() noexcept { return borrowed_ != nullptr ? *borrowed_ : *own_lock_; }
  void acquire() { get_lock().acquire(); }
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return get_lock().acquire(timeout);
  }
  void release() { get_lock().release(); }
  void lock() { acquire(); }
  void unlock() { release(); }
  [[nodiscard]] bool try_lock() { return get_lock().try_acquire(); }

  // Releases the lock (NotOwner if the calling thread does not hold it), sleeps until notified,
  // and takes the lock again before returning.
  void wait() { (void)wait_until(detail::Deadline::max()); }
  // As wait(); returns false if `timeout` passed without a notification. The lock is held again
  // on return either way.
  template <class Rep, class Period>
  [[nodiscard]] bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout));
  }
  // Waits until pred() is true. pred is called with the lock held.
  template <class Predicate>
  bool wait_for(Predicate pred) {
    while (!pred()) {
      wait();
    }
    return true;
  }
  // Waits until pred() is true or `timeout` has passed; returns pred()'s last value.
  template <class Predicate, class Rep, class Period>
  bool wait_for(Predicate pred, std::chrono::duration<Rep, Period> timeout) {
    const detail::Deadline deadline = detail::deadline_after(timeout);
    while (!pred()) {
      if (!wait_until(deadline)) {
        return pred();
      }
    }
    return true;
  }

  // Wakes up to `n` waiters (at least min(n, sleeping waiters); one that is just starting to wait
  // may wake as well).
  void notify(int n = 1);
  void notify_all();

  // Empty for an anonymous condition.
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }

 private:
  Condition(const Where& where, Lock* borrowed);
  [[nodiscard]] bool wait_until(detail::Deadline deadline);

  Segment segment_;
  ConditionState* state_;
  std::optional<Lock> own_lock_;  // a view of the LockState in this segment's prefix, when owned
  Lock* borrowed_;
};

}  // namespace multiproc

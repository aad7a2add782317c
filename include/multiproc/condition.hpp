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
// to wait. notify(n) wakes at most n waiters, as Python promises. A wake-up is spurious only after
// a waiter was killed inside wait() (see ConditionState): wait in a loop on a predicate, or use
// wait_for.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <optional>
#include <string_view>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/error.hpp>
#include <multiproc/export.hpp>
#include <multiproc/lock.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

// Shared state (an owned Lock's LockState precedes it in the segment). Fixed layout.
//
// How notify(n) wakes at most n: a waiter counts itself in `tickets` (waiting) while it still
// holds the lock; notify moves up to n of the waiting into granted; a waiter returns notified only
// by taking a grant. So the number of waits that return true never exceeds the grants, however a
// waiter's spin or sleep lines up with the notify. A waiter takes only a grant made after it was
// counted (its `sequence` has moved since), so a notifier that waits again right away cannot take
// the grant it made for another. `sequence` also says "look again".
struct ConditionState {
  // The futex word: bumped by every notify that granted something (fetch_add, seq_cst: after the
  // grant, and ordered before the read of `sleepers`). A waiter reads it (acquire) before it looks
  // for a grant, and sleeps while it is unchanged.
  std::uint32_t sequence;
  // Waiters asleep on `sequence`.
  std::uint32_t sleepers;
  // Low 32 bits: waiters counted and not yet granted; high 32 bits: grants not yet taken. One
  // word, so that every change is one compare-exchange (seq_cst) by a waiter (count itself, take a
  // grant, or leave on timeout) or a notifier (move waiting to granted). A waiter killed inside
  // wait() stays counted: a later notify may grant it, and the grant goes to the next waiter,
  // which then returns at once (a spurious wake-up: wait on a predicate).
  std::uint64_t tickets;
};
static_assert(std::is_trivially_copyable_v<ConditionState> && sizeof(ConditionState) == 16 &&
              alignof(ConditionState) == 8 && offsetof(ConditionState, tickets) == 8);
static_assert(detail::atomic_across_processes<std::uint64_t>);
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

  // Wakes min(n, waiting) waiters, never more, whatever the timing (a waiter counts as waiting
  // from the moment it calls wait() with the lock held). n < 1 is a ValueError.
  void notify(int n = 1);
  void notify_all();

  // Empty for an anonymous condition.
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  // The name it travels by to another process (see codec.hpp). ValueError when anonymous, or when
  // it waits with a Lock passed in (the receiver could not know that lock).
  [[nodiscard]] const std::string& name_to_travel() const {
    if (borrowed_ != nullptr) {
      throw ValueError("multiproc: a Condition over a Lock passed in cannot be sent to another process: open it there "
                       "by name with the same lock");
    }
    return segment_.name_to_travel("Condition");
  }

 private:
  Condition(const Where& where, Lock* borrowed);
  [[nodiscard]] bool wait_until(detail::Deadline deadline);

  Segment segment_;
  ConditionState* state_;
  std::optional<Lock> own_lock_;  // a view of the LockState in this segment's prefix, when owned
  Lock* borrowed_;
};

}  // namespace multiproc

#pragma once
// Lock: a mutex shared by processes and threads that survives the death of its holder.
//
// Built on a process-shared, robust, error-checking pthread mutex: when a holder dies, the kernel
// marks the mutex and wakes one waiter, which takes the lock over in the same call and sees
// recovered() == true. Data the dead holder was changing may be half-updated; recovered() is the
// signal to check or repair it. A blocked acquirer sleeps in the kernel (futex) and uses no CPU.
//
// The thread that acquired a Lock is the one that releases it (as with std::mutex); releasing a
// Lock one does not hold throws NotOwner, and acquiring it again from the holding thread throws
// ValueError instead of hanging forever (try_acquire() returns false, as in Python). Use RLock
// for re-entry.
#include <pthread.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <string_view>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/export.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

// The shared part of a Lock or RLock, inside the segment of whatever owns it (a standalone lock,
// a Value, an Array, a Condition...). Fixed layout, trivially copyable.
struct LockState {
  // Process-shared, robust; PTHREAD_MUTEX_ERRORCHECK for Lock, PTHREAD_MUTEX_RECURSIVE for RLock.
  // Touched only through pthread calls, which order memory themselves: acquire on lock, release
  // on unlock.
  pthread_mutex_t mutex;
  // The kernel thread id of the holder, 0 while free. Written (relaxed atomic) by the thread that
  // has just taken `mutex` at depth 1, and cleared by it before its last unlock; read by release()
  // to tell the holder from other threads (only the holder can read its own id there), and by
  // locked() and `multiproc inspect` (snapshots: a holder killed between taking `mutex` and
  // writing this field shows as free until the next taker recovers the lock).
  std::uint32_t holder_tid;
  // How many times the holder has acquired it without releasing (1 for a Lock). Under `mutex`;
  // read without it by `multiproc inspect` only.
  std::uint32_t depth;
  // 1 when the current (outermost) acquisition took the lock over from a dead holder, else 0.
  // Written by the thread that has just acquired `mutex`, read by the holder, under `mutex`.
  std::uint32_t recovered;
  std::uint32_t reserved;
};
static_assert(std::is_trivially_copyable_v<LockState> && alignof(LockState) == alignof(pthread_mutex_t));
static_assert(offsetof(LockState, holder_tid) == sizeof(pthread_mutex_t) &&
              sizeof(LockState) == sizeof(pthread_mutex_t) + 4 * sizeof(std::uint32_t));

namespace detail {

// What Lock and RLock share: a robust process-shared pthread mutex in a segment (or borrowed from
// another object's segment), and the calls on it.
class MULTIPROC_API RobustMutex {
 public:
  // Blocks until the lock is held by the calling thread.
  void acquire();
  // Returns false if the lock could not be taken within `timeout` (monotonic clock).
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return acquire_until(deadline_after(timeout));
  }
  // False if another thread holds the lock, or if the calling thread does (for a Lock).
  [[nodiscard]] bool try_acquire();
  // Throws NotOwner if the calling thread does not hold the lock.
  void release();
  // True when the current acquisition took the lock over from a holder that died with it.
  [[nodiscard]] bool recovered() const noexcept;
  // Whether any thread of any process holds the lock now (a snapshot, as Python's locked()). A
  // holder that died with it counts as holding it until the next acquirer takes it over.
  [[nodiscard]] bool locked() const noexcept;

  // The standard names, so that std::scoped_lock and std::unique_lock work.
  void lock() { acquire(); }
  void unlock() { release(); }
  [[nodiscard]] bool try_lock() { return try_acquire(); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire(timeout);
  }
  template <class C, class D>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<C, D> when) {
    return acquire(when - C::now());
  }

  // Empty for an anonymous or borrowed lock.
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  // The name it travels by to another process (see codec.hpp); ValueError when anonymous.
  [[nodiscard]] const std::string& name_to_travel() const { return segment_.name_to_travel("Lock or RLock"); }

 protected:
  RobustMutex(const Where& where, ObjectKind kind);
  explicit RobustMutex(LockState& borrowed) noexcept;
  static void initialise(LockState& state, bool recursive);

 private:
  [[nodiscard]] bool acquire_until(Deadline deadline);

  Segment segment_;  // empty when borrowed
  LockState* state_ = nullptr;
};

}  // namespace detail

class MULTIPROC_API Lock : public detail::RobustMutex {
 public:
  Lock() : RobustMutex(Where(), ObjectKind::lock) {}  // anonymous: shared with children forked after it
  Lock(create_t how, std::string_view name) : RobustMutex(Where(how, name), ObjectKind::lock) {}
  Lock(open_t how, std::string_view name) : RobustMutex(Where(how, name), ObjectKind::lock) {}
  Lock(open_or_create_t how, std::string_view name) : RobustMutex(Where(how, name), ObjectKind::lock) {}

  // For objects that keep their lock inside their own segment: the segment's creator builds the
  // state once, then every handle views it.
  static void initialise(LockState& state) { RobustMutex::initialise(state, false); }
  struct borrow_t {};
  Lock(borrow_t, LockState& state) noexcept : RobustMutex(state) {}
};

}  // namespace multiproc

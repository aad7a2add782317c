#include <multiproc/lock.hpp>

#include <cerrno>
#include <system_error>

#include <multiproc/detail/os/liveness.hpp>
#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/error.hpp>

#include "os/futex.hpp"
#include "os/thread_id.hpp"
#include "sync/lock_inspection.hpp"

#include <multiproc/detail/os/tsan.hpp>
#ifdef MULTIPROC_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace multiproc::detail {

namespace {

// pthread_mutex_clocklock with a monotonic deadline. ThreadSanitizer (as of LLVM 14) intercepts the
// other pthread lock calls but not this one, so under it the call is announced by hand; otherwise
// TSan would see every acquisition made here as missing and report races on what the lock guards.
int clocklock(pthread_mutex_t* mutex, Deadline deadline) {
  const timespec absolute = to_timespec(deadline);
#ifdef MULTIPROC_TSAN
  __tsan_mutex_pre_lock(mutex, __tsan_mutex_try_lock);
  const int rc = pthread_mutex_clocklock(mutex, CLOCK_MONOTONIC, &absolute);
  __tsan_mutex_post_lock(mutex, rc == 0 || rc == EOWNERDEAD ? __tsan_mutex_try_lock : __tsan_mutex_try_lock_failed, 0);
  return rc;
#else
  return pthread_mutex_clocklock(mutex, CLOCK_MONOTONIC, &absolute);
#endif
}

void check(int rc, const char* what) {
  if (rc != 0) {
    throw std::system_error(rc, std::generic_category(), what);
  }
}

// What a call does when the calling thread already holds a (non-recursive) Lock.
enum class WhenHeld { refuse, report_busy };

// Turns the result of a pthread lock call into "acquired or not", recovering a dead holder's lock.
bool acquired(LockState& state, int rc, WhenHeld when_held) {
  switch (rc) {
    case 0:
      // A nested acquisition of an RLock keeps the outermost one's `recovered`.
      if (++state.depth == 1) {
        state.recovered = 0;
        shared_atomic(state.holder_tid).store(this_thread_id(), std::memory_order_relaxed);
      }
      return true;
    case EOWNERDEAD:
      // We hold the mutex, at depth 1 whatever the dead holder's was; marking it consistent keeps it
      // usable after our release.
      check(pthread_mutex_consistent(&state.mutex), "multiproc: cannot recover a lock whose holder died");
      state.depth = 1;
      state.recovered = 1;
      shared_atomic(state.holder_tid).store(this_thread_id(), std::memory_order_relaxed);
      return true;
    case ETIMEDOUT:
    case EBUSY:
      return false;
    case EDEADLK:
      if (when_held == WhenHeld::report_busy) {
        return false;
      }
      throw ValueError("multiproc::Lock: this thread already holds the lock (use RLock to re-enter)");
    default:
      throw std::system_error(rc, std::generic_category(), "multiproc: cannot acquire a lock");
  }
}

}  // namespace

void RobustMutex::initialise(LockState& state, bool recursive) {
  pthread_mutexattr_t attr;
  check(pthread_mutexattr_init(&attr), "multiproc: pthread_mutexattr_init");
  const int rc = [&] {
    if (int e = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)) return e;
    if (int e = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST)) return e;
    if (int e = pthread_mutexattr_settype(&attr, recursive ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_ERRORCHECK)) {
      return e;
    }
    return pthread_mutex_init(&state.mutex, &attr);
  }();
  pthread_mutexattr_destroy(&attr);
  check(rc, "multiproc: cannot initialise a process-shared robust mutex");
  state.holder_tid = 0;
  state.depth = 0;
  state.recovered = 0;
  state.reserved = 0;
}

RobustMutex::RobustMutex(const Where& where, ObjectKind kind)
    : segment_(where, {kind, fingerprint_of<LockState>()},
               [kind](Segment& s) { initialise(*static_cast<LockState*>(s.elements()), kind == ObjectKind::rlock); }),
      state_(static_cast<LockState*>(segment_.elements())) {}

RobustMutex::RobustMutex(LockState& borrowed) noexcept : state_(&borrowed) {}

void RobustMutex::acquire() { (void)acquire_until(Deadline::max()); }

bool RobustMutex::try_acquire() {
  return acquired(*state_, pthread_mutex_trylock(&state_->mutex), WhenHeld::report_busy);
}

// Waits in slices of lost_wake_recheck, because glibc's robust mutexes can lose a wake-up to a
// death: an unlock clears FUTEX_WAITERS and wakes one waiter, which is then to set it again when
// it takes the lock; if that waiter is killed first and another thread takes the lock meanwhile,
// nobody knows of the remaining sleepers, and a plain pthread_mutex_lock would sleep forever (the
// kernel's exit handling only wakes another waiter when the lock word is free). Found by the
// fault campaign: 6 of 40 trials with a killed Lock/RLock user hung before this.
bool RobustMutex::acquire_until(Deadline deadline) {
  int rc = pthread_mutex_trylock(&state_->mutex);
  while (rc == EBUSY) {
    const Deadline slice_end = next_recheck(deadline);
    rc = clocklock(&state_->mutex, slice_end);
    if (rc == ETIMEDOUT && slice_end < deadline) {
      rc = EBUSY;
    }
  }
  return acquired(*state_, rc, WhenHeld::refuse);
}

void RobustMutex::release() {
  // relaxed: only the holder ever reads its own id here; any other thread reads another value.
  if (shared_atomic(state_->holder_tid).load(std::memory_order_relaxed) != this_thread_id()) {
    throw NotOwner("multiproc: release of a lock the calling thread does not hold");
  }
  if (--state_->depth == 0) {
    shared_atomic(state_->holder_tid).store(0, std::memory_order_relaxed);
  }
  check(pthread_mutex_unlock(&state_->mutex), "multiproc: cannot release a lock");
}

bool RobustMutex::recovered() const noexcept { return state_->recovered != 0; }

// relaxed: a snapshot; the id is written right after the mutex is taken and cleared right before
// it is released, so a caller ordered after an acquire() (or a release()) by other means sees it.
bool RobustMutex::locked() const noexcept { return shared_atomic(state_->holder_tid).load(std::memory_order_relaxed) != 0; }

void describe_lock(const LockState& lock, bool recursive, FieldList& out, std::string_view prefix) {
  const std::string p(prefix);
  const std::uint32_t holder = lock.holder_tid;
  const bool alive = holder != 0 && process_is_alive(holder);
  out.add(p + "held", alive);
  if (holder != 0) {
    out.add(p + "held_by_tid", static_cast<pid_t>(holder));
    if (const std::uint32_t process = process_of_thread(holder); process != 0) {
      out.add(p + "held_by_pid", static_cast<pid_t>(process));
    }
    out.add(p + "holder_alive", alive);
    if (recursive) {
      out.add(p + "depth", lock.depth);
    }
  }
  // The next acquirer takes it over (EOWNERDEAD) and sees recovered().
  out.add(p + "holder_died", holder != 0 && !alive);
}

namespace {

bool inspect_lock(const SegmentSnapshot& snapshot, FieldList& out, bool recursive) {
  const auto lock = snapshot.element<LockState>();
  if (!lock) {
    return false;
  }
  describe_lock(*lock, recursive, out);
  return true;
}

[[maybe_unused]] const bool lock_inspectors_registered =
    register_inspector(ObjectKind::lock, {no_element_type, [](const SegmentSnapshot& s, FieldList& out) {
                                            return inspect_lock(s, out, false);
                                          }}) &&
    register_inspector(ObjectKind::rlock, {no_element_type, [](const SegmentSnapshot& s, FieldList& out) {
                                             return inspect_lock(s, out, true);
                                           }});

}  // namespace

}  // namespace multiproc::detail

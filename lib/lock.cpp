#include <multiproc/lock.hpp>

#include <cerrno>
#include <system_error>

#include <multiproc/error.hpp>

#include "futex.hpp"

namespace multiproc {

namespace {

Segment::Layout lock_layout() { return {ObjectKind::lock, fingerprint_of<LockState>(), 0, 1, 1}; }

LockState& state_of(const Segment& segment) { return *static_cast<LockState*>(segment.elements()); }

void initialise_segment(Segment& segment) { Lock::initialise(state_of(segment)); }

void check(int rc, const char* what) {
  if (rc != 0) {
    throw std::system_error(rc, std::generic_category(), what);
  }
}

// Turns the result of a pthread lock call into "acquired or not", recovering a dead holder's lock.
bool acquired(LockState& state, int rc) {
  switch (rc) {
    case 0:
      state.recovered = 0;
      return true;
    case EOWNERDEAD:
      // We hold the mutex; marking it consistent keeps it usable after our release.
      check(pthread_mutex_consistent(&state.mutex), "multiproc::Lock: cannot recover the lock");
      state.recovered = 1;
      return true;
    case ETIMEDOUT:
    case EBUSY:
      return false;
    case EDEADLK:
      throw std::system_error(rc, std::generic_category(),
                              "multiproc::Lock: this thread already holds the lock (use RLock to re-enter)");
    default:
      throw std::system_error(rc, std::generic_category(), "multiproc::Lock: cannot acquire");
  }
}

}  // namespace

void Lock::initialise(LockState& state) {
  pthread_mutexattr_t attr;
  check(pthread_mutexattr_init(&attr), "multiproc::Lock: pthread_mutexattr_init");
  const int rc = [&] {
    if (int e = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED)) return e;
    if (int e = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST)) return e;
    if (int e = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK)) return e;
    return pthread_mutex_init(&state.mutex, &attr);
  }();
  pthread_mutexattr_destroy(&attr);
  check(rc, "multiproc::Lock: cannot initialise a process-shared robust mutex");
  state.recovered = 0;
}

Lock::Lock() : segment_(lock_layout(), initialise_segment), state_(&state_of(segment_)) {}

Lock::Lock(create_t how, std::string_view name)
    : segment_(how, name, lock_layout(), initialise_segment), state_(&state_of(segment_)) {}

Lock::Lock(open_t how, std::string_view name) : segment_(how, name, lock_layout()), state_(&state_of(segment_)) {}

Lock::Lock(open_or_create_t how, std::string_view name)
    : segment_(how, name, lock_layout(), initialise_segment), state_(&state_of(segment_)) {}

Lock::Lock(borrow_t, LockState& state) noexcept : state_(&state) {}

Lock::Lock(Lock&&) noexcept = default;
Lock& Lock::operator=(Lock&&) noexcept = default;
Lock::~Lock() = default;

void Lock::acquire() { acquired(*state_, pthread_mutex_lock(&state_->mutex)); }

bool Lock::try_acquire() { return acquired(*state_, pthread_mutex_trylock(&state_->mutex)); }

bool Lock::acquire_until(Clock::time_point deadline) {
  const timespec absolute = detail::to_timespec(deadline);
  return acquired(*state_, pthread_mutex_clocklock(&state_->mutex, CLOCK_MONOTONIC, &absolute));
}

void Lock::release() {
  const int rc = pthread_mutex_unlock(&state_->mutex);
  if (rc == EPERM) {
    throw NotOwner("multiproc::Lock::release: the calling thread does not hold this lock");
  }
  check(rc, "multiproc::Lock::release");
}

bool Lock::recovered() const noexcept { return state_->recovered != 0; }

}  // namespace multiproc

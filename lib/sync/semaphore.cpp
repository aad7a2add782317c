#include <multiproc/semaphore.hpp>

#include <atomic>
#include <climits>
#include <stdexcept>
#include <string>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/error.hpp>

#include <multiproc/detail/os/doorbell.hpp>

#include "os/futex.hpp"
#include "shm/inspection.hpp"

namespace multiproc {

namespace {

// Checked before anything is created or opened, so a bad start value never leaves a name behind.
std::uint32_t start_value(int value) {
  if (value < 0) {
    throw ValueError("multiproc::Semaphore: the start value must be >= 0, not " + std::to_string(value));
  }
  return static_cast<std::uint32_t>(value);
}

}  // namespace

Semaphore::Semaphore(const Where& where, ObjectKind kind, int value)
    : segment_(where, {kind, fingerprint_of<SemaphoreState>()},
               [start = start_value(value), kind](Segment& s) {
                 auto& state = *static_cast<SemaphoreState*>(s.elements());
                 state.value = start;
                 state.bound = kind == ObjectKind::bounded_semaphore ? start : 0;
               }),
      state_(static_cast<SemaphoreState*>(segment_.elements())),
      bounded_(kind == ObjectKind::bounded_semaphore) {}

void Semaphore::acquire() { (void)acquire_until(detail::Deadline::max()); }

bool Semaphore::try_acquire() { return acquire_until(detail::Deadline::min()); }

bool Semaphore::acquire_until(detail::Deadline deadline) {
  auto value = detail::shared_atomic(state_->value);
  std::uint32_t seen = value.load(std::memory_order_relaxed);
  for (;;) {
    while (seen > 0) {
      // acquire: pairs with release()'s increment, so the releaser's writes are visible to us.
      if (value.compare_exchange_weak(seen, seen - 1, std::memory_order_acquire, std::memory_order_relaxed)) {
        return true;
      }
    }
    if (detail::Clock::now() >= deadline ||
        (!detail::wait_at_doorbell(state_->value, state_->sleepers, 0, deadline, detail::Recheck::periodically) &&
         value.load(std::memory_order_relaxed) == 0)) {
      return false;
    }
    seen = value.load(std::memory_order_relaxed);
  }
}

void Semaphore::release(int n) {
  if (n < 1) {
    throw ValueError("multiproc::Semaphore::release: n must be >= 1, not " + std::to_string(n));
  }
  auto value = detail::shared_atomic(state_->value);
  const std::uint32_t limit = bounded_ ? state_->bound : static_cast<std::uint32_t>(INT_MAX);
  std::uint32_t seen = value.load(std::memory_order_relaxed);
  do {
    if (seen > limit || static_cast<std::uint32_t>(n) > limit - seen) {
      if (bounded_) {
        throw TooManyReleases("multiproc::BoundedSemaphore: released more times than acquired (bound " +
                              std::to_string(state_->bound) + ")");
      }
      throw ValueError("multiproc::Semaphore: value would exceed INT_MAX");
    }
    // seq_cst: orders the increment before wake_sleepers' read of `sleepers` (see futex.hpp).
  } while (!value.compare_exchange_weak(seen, seen + static_cast<std::uint32_t>(n), std::memory_order_seq_cst,
                                        std::memory_order_relaxed));
  detail::ring_doorbell(state_->value, state_->sleepers, n);
}

int Semaphore::get_value() const noexcept {
  return static_cast<int>(detail::shared_atomic(state_->value).load(std::memory_order_relaxed));
}

namespace {

bool inspect_semaphore(const detail::SegmentSnapshot& snapshot, detail::FieldList& out) {
  const auto state = snapshot.element<SemaphoreState>();
  if (!state) {
    return false;
  }
  out.add("value", state->value);
  out.add("sleepers", state->sleepers);
  if (snapshot.header().kind == static_cast<std::uint32_t>(ObjectKind::bounded_semaphore)) {
    out.add("bound", state->bound);
  }
  return true;
}

[[maybe_unused]] const bool semaphore_inspectors_registered =
    detail::register_inspector(ObjectKind::semaphore, {detail::no_element_type, inspect_semaphore}) &&
    detail::register_inspector(ObjectKind::bounded_semaphore, {detail::no_element_type, inspect_semaphore});

}  // namespace

}  // namespace multiproc

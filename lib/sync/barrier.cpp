#include <multiproc/barrier.hpp>

#include <atomic>
#include <climits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/error.hpp>

#include <multiproc/detail/os/doorbell.hpp>

#include "os/futex.hpp"
#include "shm/inspection.hpp"

namespace multiproc {

namespace {

BarrierState& state_of(Segment& segment) { return *static_cast<BarrierState*>(segment.elements()); }

}  // namespace

Barrier::Barrier(const Where& where, int parties, Action action, Timeout timeout)
    : segment_(where, {ObjectKind::barrier, fingerprint_of<BarrierState>()},
               [parties](Segment& s) {
                 if (parties < 1) {
                   throw ValueError("multiproc::Barrier: parties must be >= 1, not " +
                                               std::to_string(parties));
                 }
                 BarrierState& state = state_of(s);
                 Lock::initialise(state.guard);
                 state.parties = static_cast<std::uint32_t>(parties);
               }),
      state_(&state_of(segment_)),
      guard_(Lock::borrow_t{}, state_->guard),
      action_(std::move(action)),
      default_timeout_(timeout) {}

// Takes the guard; if its last holder died inside, the fields may be half-updated: break.
std::unique_lock<Lock> Barrier::hold() const {
  guard_.acquire();
  if (guard_.recovered() && state_->broken == 0) {
    state_->broken = 1;
    end_generation(true);
  }
  return std::unique_lock<Lock>(guard_, std::adopt_lock);
}

// Under the guard: ends the current generation and wakes its waiters.
void Barrier::end_generation(bool broken) const {
  const std::uint32_t ending = state_->generation;
  const std::uint64_t bit = std::uint64_t{1} << (ending % 64);
  state_->ended_broken = broken ? (state_->ended_broken | bit) : (state_->ended_broken & ~bit);
  state_->arrived = 0;
  detail::shared_atomic(state_->generation).fetch_add(1, std::memory_order_seq_cst);
  detail::ring_doorbell(state_->generation, state_->sleepers, INT_MAX);
}

std::size_t Barrier::wait_until(detail::Deadline deadline) {
  std::unique_lock<Lock> held = hold();
  if (state_->broken != 0) {
    throw BrokenBarrier("multiproc::Barrier: the barrier is broken");
  }
  const std::uint32_t generation = state_->generation;
  const std::uint32_t index = state_->arrived++;
  if (state_->arrived >= state_->parties) {
    if (action_) {
      try {
        action_();  // under the guard, as Python: nobody is released before it ends
      } catch (...) {
        state_->broken = 1;
        end_generation(true);
        throw;
      }
    }
    end_generation(false);
    return index;
  }
  held.unlock();

  auto current = detail::shared_atomic(state_->generation);
  bool in_time = true;
  // acquire: pairs with end_generation's seq_cst bump; the outcome is then read under the guard.
  while (in_time && current.load(std::memory_order_acquire) == generation) {
    in_time = detail::wait_at_doorbell(state_->generation, state_->sleepers, generation, deadline);
  }
  held = hold();
  if (state_->generation == generation) {  // timed out, and our generation is still filling
    state_->broken = 1;
    end_generation(true);
    throw BrokenBarrier("multiproc::Barrier: timed out waiting for the other parties; the barrier is now broken");
  }
  if ((state_->ended_broken >> (generation % 64) & 1) != 0) {
    throw BrokenBarrier("multiproc::Barrier: the barrier was broken or reset while waiting");
  }
  return index;
}

void Barrier::abort() {
  const std::unique_lock<Lock> held = hold();
  if (state_->broken == 0) {
    state_->broken = 1;
    end_generation(true);
  }
}

void Barrier::reset() {
  const std::unique_lock<Lock> held = hold();
  if (state_->arrived > 0) {
    end_generation(true);
  }
  state_->broken = 0;
}

bool Barrier::broken() const {
  const std::unique_lock<Lock> held = hold();
  return state_->broken != 0;
}

int Barrier::parties() const noexcept { return static_cast<int>(state_->parties); }

int Barrier::n_waiting() const {
  const std::unique_lock<Lock> held = hold();
  return static_cast<int>(state_->arrived);
}

namespace {

bool inspect_barrier(const detail::SegmentSnapshot& snapshot, detail::FieldList& out) {
  const auto state = snapshot.element<BarrierState>();
  if (!state) {
    return false;
  }
  out.add("parties", state->parties);
  out.add("waiting", state->arrived);
  out.add("broken", state->broken != 0);
  out.add("generation", state->generation);
  return true;
}

[[maybe_unused]] const bool barrier_inspector_registered =
    detail::register_inspector(ObjectKind::barrier, {detail::no_element_type, inspect_barrier});

}  // namespace

}  // namespace multiproc

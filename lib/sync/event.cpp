#include <multiproc/event.hpp>

#include <atomic>
#include <climits>

#include <multiproc/detail/os/doorbell.hpp>
#include <multiproc/detail/os/shared_layout.hpp>

#include "os/futex.hpp"
#include "shm/inspection.hpp"

namespace multiproc {

namespace {

bool flag_set(const EventState& state) noexcept {
  return detail::shared_atomic(state.flag).load(std::memory_order_acquire) != 0;
}

// What Event::wait and the ready fd's helper thread both do: true once set, false at the deadline.
// The helper thread does not spin (see ReadyBridge).
bool wait_set(EventState& state, detail::Deadline deadline, detail::Spin spin = detail::Spin::first) noexcept {
  while (!flag_set(state)) {
    if (!detail::wait_at_doorbell(state.flag, state.sleepers, 0, deadline, detail::Recheck::never, spin)) {
      return flag_set(state);
    }
  }
  return true;
}

}  // namespace

Event::Event(const Where& where)
    : segment_(where, {ObjectKind::event, fingerprint_of<EventState>()}, [](Segment&) {}),  // all zero: clear
      state_(static_cast<EventState*>(segment_.elements())) {}
Event::Event(Event&&) noexcept = default;
Event& Event::operator=(Event&&) noexcept = default;
Event::~Event() = default;

int Event::ready_fd() {
  if (!ready_) {
    EventState* state = state_;  // in shared memory: stays put when this handle moves
    ready_ = std::make_unique<detail::ReadyBridge>(
        [state](detail::Deadline deadline) { return wait_set(*state, deadline, detail::Spin::never); },
        [state] { detail::ring_doorbell(state->flag, state->sleepers, INT_MAX); });
  }
  return ready_->fd();
}

void Event::saw_clear() const noexcept {
  if (ready_) {
    ready_->rearm();
  }
}

void Event::set() {
  if (detail::shared_atomic(state_->flag).exchange(1, std::memory_order_seq_cst) == 0) {
    detail::ring_doorbell(state_->flag, state_->sleepers, INT_MAX);
  }
}

void Event::clear() {
  detail::shared_atomic(state_->flag).store(0, std::memory_order_seq_cst);
  saw_clear();
}

bool Event::is_set() const noexcept {
  const bool set = flag_set(*state_);
  if (!set) {
    saw_clear();
  }
  return set;
}

void Event::wait() { (void)wait_until(detail::Deadline::max()); }

bool Event::wait_until(detail::Deadline deadline) {
  const bool set = wait_set(*state_, deadline);
  if (!set) {
    saw_clear();
  }
  return set;
}

namespace {

bool inspect_event(const detail::SegmentSnapshot& snapshot, detail::FieldList& out) {
  const auto state = snapshot.element<EventState>();
  if (!state) {
    return false;
  }
  out.add("set", state->flag != 0);
  out.add("sleepers", state->sleepers);
  return true;
}

[[maybe_unused]] const bool event_inspector_registered =
    detail::register_inspector(ObjectKind::event, {detail::no_element_type, inspect_event});

}  // namespace

}  // namespace multiproc

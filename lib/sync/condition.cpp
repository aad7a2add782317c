#include <multiproc/condition.hpp>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/error.hpp>

#include <atomic>
#include <climits>
#include <stdexcept>

#include <multiproc/detail/os/doorbell.hpp>

#include "os/futex.hpp"
#include "shm/inspection.hpp"
#include "sync/lock_inspection.hpp"

namespace multiproc {

namespace {

// An owned lock lives in the prefix; a borrowed one elsewhere, so the two layouts differ and
// opening one as the other throws LayoutMismatch.
Segment::Layout condition_layout(bool owns_lock) {
  return {ObjectKind::condition, fingerprint_of<ConditionState>(), owns_lock ? sizeof(LockState) : 0,
          alignof(LockState), 1};
}

}  // namespace

Condition::Condition(const Where& where, Lock* borrowed)
    : segment_(where, condition_layout(borrowed == nullptr),
               [borrowed](Segment& s) {
                 if (borrowed == nullptr) {
                   Lock::initialise(*static_cast<LockState*>(s.prefix()));
                 }
               }),
      state_(static_cast<ConditionState*>(segment_.elements())),
      borrowed_(borrowed) {
  if (borrowed == nullptr) {
    own_lock_.emplace(Lock::borrow_t{}, *static_cast<LockState*>(segment_.prefix()));
  }
}

bool Condition::wait_until(detail::Deadline deadline) {
  auto sequence = detail::shared_atomic(state_->sequence);
  // Read while we hold the lock: a notify made after we release it changes the value we sleep on.
  const std::uint32_t seen = sequence.load(std::memory_order_relaxed);
  get_lock().release();  // throws NotOwner, with nothing changed, if we do not hold it
  bool notified = true;
  // acquire: pairs with notify's seq_cst bump (a release), although the data itself is published
  // through the lock, which we take again below.
  while (sequence.load(std::memory_order_acquire) == seen) {
    if (!detail::wait_at_doorbell(state_->sequence, state_->sleepers, seen, deadline)) {
      notified = sequence.load(std::memory_order_acquire) != seen;
      break;
    }
  }
  get_lock().acquire();
  return notified;
}

void Condition::notify(int n) {
  if (n < 1) {
    throw ValueError("multiproc::Condition::notify: n must be >= 1");
  }
  detail::shared_atomic(state_->sequence).fetch_add(1, std::memory_order_seq_cst);
  detail::ring_doorbell(state_->sequence, state_->sleepers, n);
}

void Condition::notify_all() {
  detail::shared_atomic(state_->sequence).fetch_add(1, std::memory_order_seq_cst);
  detail::ring_doorbell(state_->sequence, state_->sleepers, INT_MAX);
}

namespace {

bool inspect_condition(const detail::SegmentSnapshot& snapshot, detail::FieldList& out) {
  const auto state = snapshot.element<ConditionState>();
  if (!state) {
    return false;
  }
  out.add("notifications", state->sequence);
  out.add("sleepers", state->sleepers);
  if (snapshot.header().prefix_bytes >= sizeof(LockState)) {  // it owns its lock
    const auto lock = snapshot.control<LockState>();
    if (!lock) {
      return false;
    }
    detail::describe_lock(*lock, false, out, "lock_");
  }
  return true;
}

[[maybe_unused]] const bool condition_inspector_registered =
    detail::register_inspector(ObjectKind::condition, {detail::no_element_type, inspect_condition});

}  // namespace

}  // namespace multiproc

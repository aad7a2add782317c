#include <multiproc/condition.hpp>

#include <atomic>
#include <climits>
#include <stdexcept>

#include "os/futex.hpp"

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
  std::atomic_ref<std::uint32_t> sequence(state_->sequence);
  // Read while we hold the lock: a notify made after we release it changes the value we sleep on.
  const std::uint32_t seen = sequence.load(std::memory_order_relaxed);
  get_lock().release();  // throws NotOwner, with nothing changed, if we do not hold it
  bool notified = true;
  // acquire: pairs with notify's seq_cst bump (a release), although the data itself is published
  // through the lock, which we take again below.
  while (sequence.load(std::memory_order_acquire) == seen) {
    if (!detail::sleep_while_equal(state_->sequence, state_->sleepers, seen, deadline)) {
      notified = sequence.load(std::memory_order_acquire) != seen;
      break;
    }
  }
  get_lock().acquire();
  return notified;
}

void Condition::notify(int n) {
  if (n < 1) {
    throw std::invalid_argument("multiproc::Condition::notify: n must be >= 1");
  }
  std::atomic_ref<std::uint32_t>(state_->sequence).fetch_add(1, std::memory_order_seq_cst);
  detail::wake_sleepers(state_->sequence, state_->sleepers, n);
}

void Condition::notify_all() {
  std::atomic_ref<std::uint32_t>(state_->sequence).fetch_add(1, std::memory_order_seq_cst);
  detail::wake_sleepers(state_->sequence, state_->sleepers, INT_MAX);
}

}  // namespace multiproc

#include <multiproc/condition.hpp>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/error.hpp>

#include <algorithm>
#include <atomic>
#include <climits>
#include <stdexcept>
#include <string>

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

namespace {

// ConditionState::tickets: waiting in the low half, granted in the high half.
constexpr std::uint64_t one_granted = std::uint64_t{1} << 32;
constexpr std::uint32_t waiting_of(std::uint64_t tickets) { return static_cast<std::uint32_t>(tickets); }
constexpr std::uint32_t granted_of(std::uint64_t tickets) { return static_cast<std::uint32_t>(tickets >> 32); }

// Takes a grant if there is one. seq_cst, as every change of `tickets`.
bool take_grant(std::atomic_ref<std::uint64_t> tickets) noexcept {
  std::uint64_t seen = tickets.load(std::memory_order_seq_cst);
  while (granted_of(seen) > 0) {
    if (tickets.compare_exchange_weak(seen, seen - one_granted, std::memory_order_seq_cst)) {
      return true;
    }
  }
  return false;
}

// A waiter that stops waiting: takes a grant if one is there and a notify came since it began
// (true: it was notified), or uncounts itself. If no notify came since, its own count is still
// among the waiting.
bool leave(std::atomic_ref<std::uint64_t> tickets, bool notified_since) noexcept {
  std::uint64_t seen = tickets.load(std::memory_order_seq_cst);
  for (;;) {
    const bool granted = notified_since && granted_of(seen) > 0;
    if (tickets.compare_exchange_weak(seen, granted ? seen - one_granted : seen - 1, std::memory_order_seq_cst)) {
      return granted;
    }
  }
}

}  // namespace

bool Condition::wait_until(detail::Deadline deadline) {
  auto tickets = detail::shared_atomic(state_->tickets);
  // Counted while we hold the lock: a notify made after we release it grants us. Only a grant
  // made after this point is ours to take: one made before was meant for an earlier waiter (the
  // notifier itself, waiting again, must not take the grant it just made for another).
  tickets.fetch_add(1, std::memory_order_seq_cst);
  auto sequence = detail::shared_atomic(state_->sequence);
  const std::uint32_t counted_at = sequence.load(std::memory_order_seq_cst);
  try {
    get_lock().release();  // throws NotOwner if we do not hold it
  } catch (...) {
    (void)leave(tickets, false);
    throw;
  }
  bool notified = false;
  for (;;) {
    // acquire, read before we look for a grant: a grant made after this read also changes
    // `sequence`, so the sleep below does not begin (or is woken).
    const std::uint32_t seen = sequence.load(std::memory_order_acquire);
    if (seen != counted_at && take_grant(tickets)) {
      notified = true;
      break;
    }
    if (!detail::wait_at_doorbell(state_->sequence, state_->sleepers, seen, deadline)) {
      notified = leave(tickets, sequence.load(std::memory_order_seq_cst) != counted_at);
      break;
    }
  }
  get_lock().acquire();
  return notified;
}

void Condition::notify(int n) {
  if (n < 1) {
    throw ValueError("multiproc::Condition::notify: n must be >= 1, not " + std::to_string(n));
  }
  auto tickets = detail::shared_atomic(state_->tickets);
  std::uint64_t seen = tickets.load(std::memory_order_seq_cst);
  std::uint32_t woken = 0;
  do {
    woken = std::min(waiting_of(seen), static_cast<std::uint32_t>(n));
    if (woken == 0) {
      return;
    }
  } while (!tickets.compare_exchange_weak(seen, seen - woken + woken * one_granted, std::memory_order_seq_cst));
  detail::shared_atomic(state_->sequence).fetch_add(1, std::memory_order_seq_cst);
  detail::ring_doorbell(state_->sequence, state_->sleepers, static_cast<int>(woken));
}

void Condition::notify_all() { notify(INT_MAX); }

namespace {

bool inspect_condition(const detail::SegmentSnapshot& snapshot, detail::FieldList& out) {
  const auto state = snapshot.element<ConditionState>();
  if (!state) {
    return false;
  }
  out.add("notifications", state->sequence);
  out.add("waiting", static_cast<std::uint32_t>(state->tickets));
  out.add("granted", static_cast<std::uint32_t>(state->tickets >> 32));
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

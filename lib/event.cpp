#include <multiproc/event.hpp>

#include <atomic>
#include <climits>

#include "futex.hpp"

namespace multiproc {

Event::Event(const Where& where)
    : segment_(where, {ObjectKind::event, fingerprint_of<EventState>()}, [](Segment&) {}),  // all zero: clear
      state_(static_cast<EventState*>(segment_.elements())) {}

void Event::set() {
  if (std::atomic_ref<std::uint32_t>(state_->flag).exchange(1, std::memory_order_seq_cst) == 0) {
    detail::wake_sleepers(state_->flag, state_->sleepers, INT_MAX);
  }
}

void Event::clear() { std::atomic_ref<std::uint32_t>(state_->flag).store(0, std::memory_order_seq_cst); }

bool Event::is_set() const noexcept {
  return std::atomic_ref<std::uint32_t>(state_->flag).load(std::memory_order_acquire) != 0;
}

void Event::wait() { (void)wait_until(detail::Deadline::max()); }

bool Event::wait_until(detail::Deadline deadline) {
  while (!is_set()) {
    if (!detail::sleep_while_equal(state_->flag, state_->sleepers, 0, deadline)) {
      return is_set();
    }
  }
  return true;
}

}  // namespace multiproc

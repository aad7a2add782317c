#include <multiproc/detail/os/doorbell.hpp>

#include <climits>
#include <utility>

#include "os/futex.hpp"

namespace multiproc::detail {

bool wait_at_doorbell(std::uint32_t& word, std::uint32_t& sleepers, std::uint32_t seen, Deadline deadline,
                      Recheck recheck, Spin spin) noexcept {
  const auto value = shared_atomic(std::as_const(word));
  // relaxed: a changed word only sends us back to the caller's own (ordered) check.
  if (spin == Spin::first && spin_until([&] { return value.load(std::memory_order_relaxed) != seen; }, deadline)) {
    return true;
  }
  auto count = shared_atomic(sleepers);
  count.fetch_add(1, std::memory_order_seq_cst);  // see doorbell.hpp: why a wake cannot be lost
  const Deadline slice_end = recheck == Recheck::periodically ? next_recheck(deadline) : deadline;
  const bool in_time = futex_wait_until(&word, seen, slice_end == Deadline::max() ? nullptr : &slice_end) ||
                       slice_end < deadline;
  count.fetch_sub(1, std::memory_order_relaxed);  // only a hint for wakers; nothing is published by it
  return in_time;
}

void ring_doorbell(std::uint32_t& word, std::uint32_t& sleepers, int how_many) noexcept {
  if (shared_atomic(sleepers).load(std::memory_order_seq_cst) != 0) {
    futex_wake(&word, how_many);
  }
}

std::uint32_t doorbell_state(const Doorbell& bell) noexcept {
  // acquire: pairs with ring_doorbell()'s seq_cst bump, so what the ringer published before it
  // rang is seen.
  return shared_atomic(bell.rings).load(std::memory_order_acquire);
}

void ring_doorbell(Doorbell& bell) noexcept {
  shared_atomic(bell.rings).fetch_add(1, std::memory_order_seq_cst);
  ring_doorbell(bell.rings, bell.sleepers, INT_MAX);
}

bool wait_at_doorbell(Doorbell& bell, std::uint32_t seen, Deadline deadline, Spin spin) noexcept {
  return wait_at_doorbell(bell.rings, bell.sleepers, seen, deadline, Recheck::never, spin);
}

}  // namespace multiproc::detail

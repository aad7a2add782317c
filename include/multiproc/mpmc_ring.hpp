#pragma once
// MpmcRing<T>: a bounded lock-free ring for any number of producers and consumers (processes or
// threads), slots inline in shared memory. Never blocks and never makes a system call on its
// normal path; Queue<T> adds blocking on top of the same ring.
//
//   multiproc::MpmcRing<Order> orders{multiproc::create, "orders", 1024};
//   orders.try_push(order);            if (auto o = orders.try_pop()) handle(*o);
//
// If a process dies in the middle of try_push, its half-written message is skipped; one that dies
// in the middle of try_pop loses nothing (the message is either still in the ring or was already
// its own). Nothing else is lost or delivered twice, and the ring stays usable (see
// detail/ring/slot_ring.hpp for the algorithm).
// The capacity is rounded up to a power of two.
#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <multiproc/detail/ring/slot_ring.hpp>
#include <multiproc/error.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

template <class T>
class MpmcRing {
  static_assert(std::is_trivially_copyable_v<T>, "multiproc::MpmcRing<T>: T must be trivially copyable");

 public:
  explicit MpmcRing(std::size_t capacity) : MpmcRing(Where(), capacity) {}
  MpmcRing(create_t how, std::string_view name, std::size_t capacity) : MpmcRing(Where(how, name), capacity) {}
  MpmcRing(open_t how, std::string_view name) : MpmcRing(Where(how, name), 2) {}
  MpmcRing(open_or_create_t how, std::string_view name, std::size_t capacity)
      : MpmcRing(Where(how, name), capacity) {}

  [[nodiscard]] bool try_push(const T& value) noexcept { return ring_.try_push(value); }
  [[nodiscard]] std::optional<T> try_pop() noexcept { return ring_.try_pop(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return ring_.capacity(); }
  // Exact when no one is pushing or popping; otherwise a value that was true a moment ago.
  [[nodiscard]] std::size_t size_approx() const noexcept { return ring_.size_approx(); }
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  // The name it travels by to another process (see codec.hpp); ValueError when anonymous.
  [[nodiscard]] const std::string& name_to_travel() const { return segment_.name_to_travel("MpmcRing"); }

 private:
  MpmcRing(const Where& where, std::size_t capacity)
      : segment_(where, detail::slot_ring_layout<T, detail::SlotRingControl>(ObjectKind::mpmc_ring, capacity),
                 [](Segment&) {}),  // zero-filled: every slot empty in lap 0, both indices at 0
        ring_((detail::check_ring_capacity(segment_), static_cast<detail::SlotRingControl*>(segment_.prefix())),
              static_cast<detail::Slot<T>*>(segment_.elements()), segment_.count()) {}

  Segment segment_;
  detail::SlotRing<T> ring_;
};

}  // namespace multiproc

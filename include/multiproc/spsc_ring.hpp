#pragma once
// SpscRing<T>: a bounded lock-free ring for exactly one producer and one consumer (processes or
// threads), with its slots inline in shared memory.
//
//   multiproc::SpscRing<Tick> ring{multiproc::create, "ticks", 4096};   // in the producer
//   multiproc::SpscRing<Tick> ring{multiproc::open, "ticks"};           // in the consumer
//   ring.try_push(tick);              if (auto t = ring.try_pop()) use(*t);
//
// Never blocks and never makes a system call. The capacity is rounded up to a power of two.
// A producer killed in the middle of try_push leaves nothing half-written visible: the slot only
// counts once `write_pos` moves past it.
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/error.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

// Shared control block, before the slots. Fixed layout, trivially copyable. The two positions
// live on separate cache lines so the two sides never write the same line.
struct SpscControl {
  // Next position to write. Written only by the producer, with release after the slot's bytes;
  // read by the consumer with acquire, so the slot is complete when the consumer sees it.
  alignas(detail::cache_line) std::uint64_t write_pos;
  // Next position to read. Written only by the consumer, with release after it copied the slot
  // out; read by the producer with acquire, so the slot is free when the producer reuses it.
  alignas(detail::cache_line) std::uint64_t read_pos;
};
static_assert(sizeof(SpscControl) == 2 * detail::cache_line && alignof(SpscControl) == detail::cache_line);
static_assert(detail::on_separate_lines(offsetof(SpscControl, write_pos), offsetof(SpscControl, read_pos)));
static_assert(detail::atomic_across_processes<std::uint64_t>);

// The algorithm (Lamport's ring with cached positions): positions grow without bound; position p
// lives in slot p & (capacity - 1).
// Invariants: read_pos <= write_pos <= read_pos + capacity; slots [read_pos, write_pos) hold
// published values; only the producer writes write_pos and the slots in [write_pos, read_pos +
// capacity); only the consumer writes read_pos.
// Each side keeps, in its own process-local handle, the last value it read of the other side's
// position, and re-reads the shared one only when that cached value says full (or empty): most
// calls touch only the slot and their own position.
// Positions read from shared memory are never used unmasked, so a corrupt peer cannot make either
// side access outside the slots.
template <class T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "multiproc::SpscRing<T>: T must be trivially copyable");

 public:
  explicit SpscRing(std::size_t capacity) : SpscRing(Where(), capacity) {}
  SpscRing(create_t how, std::string_view name, std::size_t capacity) : SpscRing(Where(how, name), capacity) {}
  SpscRing(open_t how, std::string_view name) : SpscRing(Where(how, name), 1) {}
  SpscRing(open_or_create_t how, std::string_view name, std::size_t capacity)
      : SpscRing(Where(how, name), capacity) {}

  // Producer only. False when full.
  [[nodiscard]] bool try_push(const T& value) noexcept {
    auto write_pos = detail::shared_atomic(control_->write_pos);
    const std::uint64_t position = write_pos.load(std::memory_order_relaxed);  // we are its only writer
    if (position - cached_read_pos_ >= capacity()) {
      cached_read_pos_ = detail::shared_atomic(control_->read_pos).load(std::memory_order_acquire);
      if (position - cached_read_pos_ >= capacity()) {
        return false;
      }
    }
    slots_[position & mask_] = value;
    write_pos.store(position + 1, std::memory_order_release);
    return true;
  }

  // Consumer only. Empty when there is nothing to take.
  [[nodiscard]] std::optional<T> try_pop() noexcept {
    auto read_pos = detail::shared_atomic(control_->read_pos);
    const std::uint64_t position = read_pos.load(std::memory_order_relaxed);  // we are its only writer
    if (position >= cached_write_pos_) {
      cached_write_pos_ = detail::shared_atomic(control_->write_pos).load(std::memory_order_acquire);
      if (position >= cached_write_pos_) {
        return std::nullopt;
      }
    }
    T value = slots_[position & mask_];
    read_pos.store(position + 1, std::memory_order_release);
    return value;
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }
  // Exact when neither side is moving; otherwise a value that was true a moment ago.
  [[nodiscard]] std::size_t size_approx() const noexcept {
    const std::uint64_t read_pos = detail::shared_atomic(control_->read_pos).load(std::memory_order_acquire);
    const std::uint64_t write_pos = detail::shared_atomic(control_->write_pos).load(std::memory_order_acquire);
    return write_pos > read_pos ? static_cast<std::size_t>(std::min<std::uint64_t>(write_pos - read_pos, capacity())) : 0;
  }
  // Empty for an anonymous ring.
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }

 private:
  // `capacity` rounded up to a power of two.
  static std::size_t rounded_capacity(std::size_t capacity) {
    constexpr std::size_t largest = std::size_t{1} << (std::numeric_limits<std::size_t>::digits - 1);
    if (capacity > largest) {
      throw ValueError("multiproc::SpscRing: a capacity of " + std::to_string(capacity) + " is too large (at most " +
                       std::to_string(largest) + ")");
    }
    return std::bit_ceil(std::max<std::size_t>(capacity, 1));
  }

  SpscRing(const Where& where, std::size_t capacity)
      : segment_(where,
                 {ObjectKind::spsc_ring, fingerprint_of<T>(), sizeof(SpscControl), alignof(SpscControl),
                  rounded_capacity(capacity)},
                 [](Segment&) {}),  // zero-filled memory is an empty ring
        control_(static_cast<SpscControl*>(segment_.prefix())),
        slots_(static_cast<T*>(segment_.elements())),
        mask_(segment_.count() - 1) {
    if (!std::has_single_bit(segment_.count())) {
      throw LayoutMismatch("multiproc::SpscRing: \"" + segment_.name() + "\" has a capacity that is not a power of two");
    }
  }

  Segment segment_;
  SpscControl* control_;
  T* slots_;
  std::size_t mask_;                // capacity - 1, from the segment's (checked) element count
  std::uint64_t cached_read_pos_ = 0;   // producer's last reading of control_->read_pos
  std::uint64_t cached_write_pos_ = 0;  // consumer's last reading of control_->write_pos
};

}  // namespace multiproc

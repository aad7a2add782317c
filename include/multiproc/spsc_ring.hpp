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
//
// Zero-copy for large messages: the producer builds the message in its slot, the consumer reads
// it there (nothing is copied in or out, so the cost does not grow with sizeof(T)):
//   if (auto slot = ring.try_loan()) { new (&*slot) Frame{...}; slot.publish(); }
//   if (auto view = ring.try_take()) use(*view);      // the slot is freed when `view` is dropped
// One loan (one view) at a time per handle; while it is open, try_push (try_pop) reports no room
// (nothing) and a second try_loan (try_take) throws ValueError. The handle must outlive, and not
// be moved under, its open loan or view.
// Crash rules: a loan is invisible until publish(), so a producer killed holding one leaves
// nothing visible, and the next producer reuses the slot. A view frees its slot by moving
// `read_pos` on when it is dropped, so a consumer killed holding a view has not consumed its
// message: the next consumer that opens the ring takes that same message again (delivered at
// least once; every other message exactly once) and frees the slot then. No slot stays lost.
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
#include <utility>

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

  class Loan;
  class View;

  // Producer only. False when full (or while this handle has a loan open).
  [[nodiscard]] bool try_push(const T& value) noexcept {
    auto write_pos = detail::shared_atomic(control_->write_pos);
    const std::uint64_t position = write_pos.load(std::memory_order_relaxed);  // we are its only writer
    if (position - cached_read_pos_ >= capacity() && !has_room(position)) {
      return false;
    }
    slots_[position & mask_] = value;
    write_pos.store(position + 1, std::memory_order_release);
    return true;
  }

  // Consumer only. Empty when there is nothing to take (or while this handle has a view open).
  [[nodiscard]] std::optional<T> try_pop() noexcept {
    auto read_pos = detail::shared_atomic(control_->read_pos);
    const std::uint64_t position = read_pos.load(std::memory_order_relaxed);  // we are its only writer
    if (position >= cached_write_pos_ && !has_message(position)) {
      return std::nullopt;
    }
    T value = slots_[position & mask_];
    read_pos.store(position + 1, std::memory_order_release);
    return value;
  }

  // Producer only: the next free slot, to build a message in place; an empty Loan when full.
  // Throws ValueError if this handle already has a loan open.
  [[nodiscard]] Loan try_loan() {
    if (loan_open_) {
      throw ValueError("multiproc::SpscRing: try_loan() while this handle's previous loan is still open");
    }
    // relaxed: we are write_pos's only writer.
    const std::uint64_t position = detail::shared_atomic(control_->write_pos).load(std::memory_order_relaxed);
    if (position - cached_read_pos_ >= capacity() && !has_room(position)) {
      return Loan();
    }
    return Loan(*this, position);
  }

  // Consumer only: the oldest message, read in place; an empty View when there is none.
  // Throws ValueError if this handle already has a view open.
  [[nodiscard]] View try_take() {
    if (view_open_) {
      throw ValueError("multiproc::SpscRing: try_take() while this handle's previous view is still open");
    }
    // relaxed: we are read_pos's only writer.
    const std::uint64_t position = detail::shared_atomic(control_->read_pos).load(std::memory_order_relaxed);
    if (position >= cached_write_pos_ && !has_message(position)) {
      return View();
    }
    return View(*this, position);
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
  // The name it travels by to another process (see codec.hpp); ValueError when anonymous.
  [[nodiscard]] const std::string& name_to_travel() const { return segment_.name_to_travel("SpscRing"); }

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

  // The slow paths, taken only when the cached position of the other side says full (empty), or
  // while a loan (view) is open: opening one sets the cached position so that the fast check
  // fails, so the fast paths of try_push and try_pop pay nothing for loans.
  [[nodiscard]] bool has_room(std::uint64_t position) noexcept {
    if (loan_open_) {
      return false;
    }
    cached_read_pos_ = detail::shared_atomic(control_->read_pos).load(std::memory_order_acquire);
    return position - cached_read_pos_ < capacity();
  }
  [[nodiscard]] bool has_message(std::uint64_t position) noexcept {
    if (view_open_) {
      return false;
    }
    cached_write_pos_ = detail::shared_atomic(control_->write_pos).load(std::memory_order_acquire);
    return position < cached_write_pos_;
  }
  // A cached position may always be set back (the other side's position only grows); these make
  // the fast checks above fail until the slow path reloads it.
  void open_loan(std::uint64_t position) noexcept {
    loan_open_ = true;
    cached_read_pos_ = position - capacity();
  }
  void open_view() noexcept {
    view_open_ = true;
    cached_write_pos_ = 0;
  }
  // How a Loan and a View end (dropped, overwritten, published or released).
  void end_loan(std::uint64_t /*position*/) noexcept { loan_open_ = false; }
  void free_slot(std::uint64_t position) noexcept {
    // release: our reads of the slot are done before the producer, acquiring read_pos, reuses it.
    detail::shared_atomic(control_->read_pos).store(position + 1, std::memory_order_release);
    view_open_ = false;
  }

  // What Loan and View share: a move-only hold on the slot at `position_` of `ring_` (none when
  // empty), ended by `End` when it is dropped or overwritten, or by the owner's end().
  template <void (SpscRing::*End)(std::uint64_t) noexcept>
  class SlotHold {
   public:
    SlotHold(SlotHold&& other) noexcept : ring_(std::exchange(other.ring_, nullptr)), position_(other.position_) {}
    SlotHold& operator=(SlotHold&& other) noexcept {
      if (this != &other) {
        end();
        ring_ = std::exchange(other.ring_, nullptr);
        position_ = other.position_;
      }
      return *this;
    }
    SlotHold(const SlotHold&) = delete;
    SlotHold& operator=(const SlotHold&) = delete;
    ~SlotHold() { end(); }

    [[nodiscard]] explicit operator bool() const noexcept { return ring_ != nullptr; }

   protected:
    SlotHold() noexcept = default;
    SlotHold(SpscRing& ring, std::uint64_t position) noexcept : ring_(&ring), position_(position) {}
    [[nodiscard]] T& slot() const noexcept { return ring_->slots_[position_ & ring_->mask_]; }
    void end() noexcept {
      if (ring_ != nullptr) {
        (ring_->*End)(position_);
        ring_ = nullptr;
      }
    }

    SpscRing* ring_ = nullptr;
    std::uint64_t position_ = 0;
  };

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
  bool loan_open_ = false;              // the producer holds a Loan of the slot at write_pos
  bool view_open_ = false;              // the consumer holds a View of the slot at read_pos
};

// A slot lent to the producer: write the message through it, then publish() it. Dropped unpublished,
// it leaves nothing visible. Move-only; empty (false) when try_loan found the ring full.
template <class T>
class SpscRing<T>::Loan : public SpscRing<T>::template SlotHold<&SpscRing<T>::end_loan> {
 public:
  Loan() noexcept = default;

  // The slot's storage (holding whatever was there before: construct or assign the message).
  [[nodiscard]] T& operator*() const noexcept { return this->slot(); }
  [[nodiscard]] T* operator->() const noexcept { return &**this; }

  // Makes the message visible to the consumer; the Loan is empty afterwards.
  void publish() noexcept {
    // release: the message's bytes are visible before the consumer, acquiring write_pos, sees it.
    detail::shared_atomic(this->ring_->control_->write_pos).store(this->position_ + 1, std::memory_order_release);
    this->end();
  }

 private:
  friend class SpscRing<T>;
  Loan(SpscRing& ring, std::uint64_t position) noexcept : Loan::SlotHold(ring, position) { ring.open_loan(position); }
};

// The consumer's view of the oldest message, read in place; dropping it frees the slot. Move-only;
// empty (false) when try_take found nothing.
template <class T>
class SpscRing<T>::View : public SpscRing<T>::template SlotHold<&SpscRing<T>::free_slot> {
 public:
  View() noexcept = default;

  [[nodiscard]] const T& operator*() const noexcept { return this->slot(); }
  [[nodiscard]] const T* operator->() const noexcept { return &**this; }

  // Frees the slot for the producer now (the destructor does it otherwise); the View is empty afterwards.
  void release() noexcept { this->end(); }

 private:
  friend class SpscRing<T>;
  View(SpscRing& ring, std::uint64_t position) noexcept : View::SlotHold(ring, position) { ring.open_view(); }
};

}  // namespace multiproc

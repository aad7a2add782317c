#pragma once
// Internal: what a Queue<T> keeps its messages in. Trivially copyable messages travel as their
// bytes through the lock-free slot ring; any other T is encoded by the codec into the locked
// record ring. Both backends offer the same calls, so Queue<T> is written once.
#include <algorithm>
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <multiproc/codec.hpp>
#include <multiproc/detail/channel/queue_signals.hpp>
#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/detail/ring/attempt.hpp>
#include <multiproc/detail/ring/locked_record_ring.hpp>
#include <multiproc/detail/ring/slot_ring.hpp>
#include <multiproc/error.hpp>
#include <multiproc/segment.hpp>

namespace multiproc::detail {

// Control blocks: the ring's, then the doorbells on their own cache line.
struct SlotQueueControl {
  SlotRingControl ring;
  alignas(cache_line) QueueSignals signals;
};
static_assert(sizeof(SlotQueueControl) == 3 * cache_line && alignof(SlotQueueControl) == cache_line);
static_assert(offsetof(SlotQueueControl, signals) == 2 * cache_line);
struct RecordQueueControl {
  LockedRecordRingControl ring;
  alignas(cache_line) QueueSignals signals;
};
static_assert(alignof(RecordQueueControl) == cache_line && offsetof(RecordQueueControl, signals) % cache_line == 0 &&
              offsetof(RecordQueueControl, signals) >= sizeof(LockedRecordRingControl));

// Trivially copyable messages: the lock-free slot ring.
template <class T>
class SlotQueueBackend {
 public:
  // `ring_bytes` is for the record backend only: always 0 here.
  SlotQueueBackend(const Where& where, std::size_t capacity, std::size_t /*ring_bytes*/, bool joinable)
      : segment_(where,
                 slot_ring_layout<T, SlotQueueControl>(joinable ? ObjectKind::joinable_queue : ObjectKind::queue, capacity),
                 [](Segment&) {}),
        ring_((check_ring_capacity(segment_), &control().ring), static_cast<Slot<T>*>(segment_.elements()),
              segment_.count()) {}

  using Taken = T;  // what try_get hands back
  // What a put hands to try_put: the value itself.
  static const T& encoded(const T& value) noexcept { return value; }
  Attempted try_put(const T& value) noexcept { return ring_.try_push(value) ? Attempted::done : Attempted::blocked; }
  Attempted try_get(std::optional<T>& out) noexcept {
    Attempted why = Attempted::blocked;
    out = ring_.try_pop(&why);
    return out ? Attempted::done : why;
  }
  static T decoded(T&& value) noexcept { return std::move(value); }

  [[nodiscard]] std::size_t size() const noexcept { return ring_.size_approx(); }
  // size(), from what does not move with this handle (the shared control block).
  [[nodiscard]] std::function<std::size_t()> size_probe() const {
    return [control = &control().ring, capacity = ring_.capacity()] { return SlotRing<T>::size_of(*control, capacity); };
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return ring_.capacity(); }
  [[nodiscard]] QueueSignals& signals() const noexcept { return control().signals; }
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }

 private:
  [[nodiscard]] SlotQueueControl& control() const noexcept { return *static_cast<SlotQueueControl*>(segment_.prefix()); }

  Segment segment_;
  SlotRing<T> ring_;
};

// Other messages: encoded by the codec into a record ring of `capacity` x `typical_bytes` bytes.
template <class T>
class RecordQueueBackend {
 public:
  static constexpr std::size_t typical_bytes = 256;

  // `ring_bytes` 0: room for `capacity` messages of typical_bytes.
  RecordQueueBackend(const Where& where, std::size_t capacity, std::size_t ring_bytes, bool joinable)
      : segment_(where,
                 {joinable ? ObjectKind::joinable_byte_queue : ObjectKind::byte_queue, fingerprint_of<std::byte>(),
                  sizeof(RecordQueueControl),
                  alignof(RecordQueueControl),
                  ring_bytes != 0 ? (ring_bytes + 7) / 8 * 8
                                  : LockedRecordRing::record_bytes(typical_bytes) * std::max<std::size_t>(capacity, 1)},
                 [capacity](Segment& s) {
                   LockedRecordRing::initialise(static_cast<RecordQueueControl*>(s.prefix())->ring, std::max<std::size_t>(capacity, 1),
                                        fingerprint_of<T>().name_hash);
                 }),
        ring_(control().ring, static_cast<std::byte*>(segment_.elements()), segment_.count()) {
    if (control().ring.message_type != fingerprint_of<T>().name_hash || segment_.count() % 8 != 0 ||
        segment_.count() == 0) {
      throw LayoutMismatch("multiproc::Queue: \"" + segment_.name() + "\" holds messages of another type");
    }
  }

  using Taken = T;  // what try_get hands back: the message, decoded
  // Encoded once per put, into a buffer of the calling thread, then copied by each try.
  static std::span<const std::byte> encoded(const T& value) {
    thread_local std::vector<std::byte> buffer;
    encode(value, buffer);
    return buffer;
  }
  Attempted try_put(std::span<const std::byte> bytes) { return ring_.try_write(bytes); }
  // Reads into a buffer of the calling thread, kept (and its capacity with it) for the next read,
  // and decodes from there.
  Attempted try_get(std::optional<T>& out) {
    thread_local std::vector<std::byte> buffer;
    const Attempted result = ring_.try_read(buffer);
    if (result == Attempted::done) {
      out = decode<T>(buffer);
    }
    return result;
  }
  static T decoded(T&& value) noexcept { return std::move(value); }

  [[nodiscard]] std::size_t size() const noexcept { return ring_.messages(); }
  // size(), from what does not move with this handle (the shared control block).
  [[nodiscard]] std::function<std::size_t()> size_probe() const {
    return [control = &control().ring] { return LockedRecordRing::messages_in(*control); };
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return ring_.max_messages(); }
  [[nodiscard]] QueueSignals& signals() const noexcept { return control().signals; }
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }

 private:
  [[nodiscard]] RecordQueueControl& control() const noexcept { return *static_cast<RecordQueueControl*>(segment_.prefix()); }

  Segment segment_;
  LockedRecordRing ring_;
};

template <class T>
using QueueBackend = std::conditional_t<bitwise_message<T>, SlotQueueBackend<T>, RecordQueueBackend<T>>;

}  // namespace multiproc::detail

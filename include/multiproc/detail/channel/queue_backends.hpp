#pragma once
// Internal: what a Queue<T> keeps its messages in. Trivially copyable messages travel as their
// bytes through the lock-free slot ring; any other T is encoded by the codec into the locked
// record ring. Both backends offer the same calls, so Queue<T> is written once.
#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <multiproc/codec.hpp>
#include <multiproc/detail/channel/queue_signals.hpp>
#include <multiproc/detail/channel/spilled_message.hpp>
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
  // The most messages the queue holds, as asked for (the ring has that many slots rounded up to a
  // power of two). Written once (plain store) by the creator's initialiser, before the segment is
  // published; read once (relaxed) by every opener, which checks 1 <= capacity <= slots. The
  // publication (header magic, release; name linked only when complete) orders the two.
  std::uint64_t capacity;
};
static_assert(sizeof(SlotQueueControl) == 3 * cache_line && alignof(SlotQueueControl) == cache_line);
static_assert(offsetof(SlotQueueControl, signals) == 2 * cache_line &&
              offsetof(SlotQueueControl, capacity) == 2 * cache_line + sizeof(QueueSignals));

// A queue must hold at least one message (Python's "maxsize <= 0: unbounded" has no bounded twin).
inline std::size_t checked_queue_capacity(std::size_t capacity) {
  if (capacity == 0) {
    throw ValueError("multiproc::Queue: a capacity of 0 can hold nothing (ask for at least 1)");
  }
  return capacity;
}
struct RecordQueueControl {
  LockedRecordRingControl ring;
  alignas(cache_line) QueueSignals signals;
};
static_assert(alignof(RecordQueueControl) == cache_line && offsetof(RecordQueueControl, signals) % cache_line == 0 &&
              offsetof(RecordQueueControl, signals) >= sizeof(LockedRecordRingControl));

// The room a user asks for, for the messages of a codec queue or pipe: at least one record of a
// byte, and not so much that rounding it up overflows.
inline std::size_t checked_ring_bytes(std::size_t ring_bytes) {
  if (ring_bytes < LockedRecordRing::record_bytes(1) || ring_bytes > std::numeric_limits<std::size_t>::max() / 2) {
    throw ValueError("multiproc: a ring of " + std::to_string(ring_bytes) + " bytes is not a ring (at least " +
                     std::to_string(LockedRecordRing::record_bytes(1)) + " bytes)");
  }
  return ring_bytes;
}

// Trivially copyable messages: the lock-free slot ring.
template <class T>
class SlotQueueBackend {
 public:
  // `ring_bytes` is for the record backend only: always 0 here. `capacity` is ignored by open; an
  // open_or_create that finds the queue must ask for the capacity it has.
  SlotQueueBackend(const Where& where, std::size_t capacity, std::size_t /*ring_bytes*/, bool joinable)
      : segment_(where,
                 slot_ring_layout<T, SlotQueueControl>(joinable ? ObjectKind::joinable_queue : ObjectKind::queue,
                                                       checked_queue_capacity(capacity)),
                 [capacity](Segment& s) { static_cast<SlotQueueControl*>(s.prefix())->capacity = capacity; }),
        ring_(&control().ring, static_cast<Slot<T>*>(segment_.elements()), segment_.count(),
              checked_limit(segment_, where, capacity)) {}

  using Taken = T;  // what try_get hands back
  // What a put hands to try_put: the value itself.
  static const T& encoded(const T& value) noexcept { return value; }
  Attempted try_put(const T& value) noexcept {
    Attempted why = Attempted::blocked;
    return ring_.try_push(value, &why) ? Attempted::done : why;
  }
  Attempted try_get(std::optional<T>& out) noexcept {
    Attempted why = Attempted::blocked;
    out = ring_.try_pop(&why);
    return out ? Attempted::done : why;
  }
  static T decoded(T&& value) noexcept { return std::move(value); }

  // Zero-copy: a slot claimed for the caller to build a message in (a loan), or to read one in
  // (a view); ended by publish (a loan) or release (a dropped loan, a view).
  Attempted try_loan(SlotClaim<T>& out) noexcept {
    Attempted why = Attempted::blocked;
    out = ring_.try_claim(&why);
    return out ? Attempted::done : why;
  }
  Attempted try_view(SlotClaim<T>& out) noexcept {
    Attempted why = Attempted::blocked;
    out = ring_.try_view(&why);
    return out ? Attempted::done : why;
  }
  static void publish(const SlotClaim<T>& claim) noexcept { SlotRing<T>::publish(claim); }
  static void release(const SlotClaim<T>& claim) noexcept { SlotRing<T>::release(claim); }

  [[nodiscard]] std::size_t size() const noexcept { return ring_.size_approx(); }
  // Whether a get would find a message now (see SlotRing::look_for_message), from what does not
  // move with this handle (the segment's mapping).
  [[nodiscard]] std::function<Attempted()> message_probe() const {
    return [control = &control().ring, slots = static_cast<Slot<T>*>(segment_.elements()), count = segment_.count()] {
      return SlotRing<T>::look_for_message(*control, slots, count);
    };
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return ring_.limit(); }
  [[nodiscard]] QueueSignals& signals() const noexcept { return control().signals; }
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  [[nodiscard]] const std::string& name_to_travel() const { return segment_.name_to_travel("Queue"); }

 private:
  [[nodiscard]] SlotQueueControl& control() const noexcept { return *static_cast<SlotQueueControl*>(segment_.prefix()); }

  // The queue's capacity as its creator recorded it, checked (it comes from shared memory) against
  // the slots, and against the capacity an open_or_create asked for.
  static std::size_t checked_limit(const Segment& segment, const Where& where, std::size_t asked) {
    check_ring_capacity(segment);
    // relaxed: written before the segment was published, which the open already synchronised with.
    const std::uint64_t limit = shared_atomic(static_cast<SlotQueueControl*>(segment.prefix())->capacity).load(std::memory_order_relaxed);
    if (limit == 0 || limit > segment.count()) {
      throw LayoutMismatch("multiproc::Queue: \"" + segment.name() + "\" records a capacity of " + std::to_string(limit) +
                           " for " + std::to_string(segment.count()) + " slots");
    }
    if (where.how == Where::How::open_or_create && limit != asked) {
      throw LayoutMismatch("multiproc::Queue: \"" + segment.name() + "\" exists with a capacity of " +
                           std::to_string(limit) + ", not " + std::to_string(asked));
    }
    return static_cast<std::size_t>(limit);
  }

  Segment segment_;
  SlotRing<T> ring_;
};

// Other messages: encoded by the codec into a record ring of `capacity` x `typical_bytes` bytes; a
// message whose record would take more than a quarter of the ring travels in a segment of its own
// (see detail/channel/spilled_message.hpp), so any size that fits in memory goes.
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
                                  : LockedRecordRing::record_bytes(typical_bytes) * checked_queue_capacity(capacity)},
                 [capacity](Segment& s) {
                   LockedRecordRing::initialise(static_cast<RecordQueueControl*>(s.prefix())->ring,
                                                checked_queue_capacity(capacity), fingerprint_of<T>().name_hash);
                 }),
        ring_(control().ring, static_cast<std::byte*>(segment_.elements()), segment_.count()),
        largest_in_ring_(largest_unspilled(segment_.count())) {
    if (control().ring.message_type != fingerprint_of<T>().name_hash || segment_.count() % 8 != 0 ||
        segment_.count() == 0) {
      throw LayoutMismatch("multiproc::Queue: \"" + segment_.name() + "\" holds messages of another type");
    }
  }

  using Taken = T;  // what try_get hands back: the message, decoded
  // Encoded once per put, into a buffer of the calling thread, then copied by each try.
  static OutgoingMessage encoded(const T& value) {
    std::vector<std::byte>& buffer = encode_buffer();
    encode(value, buffer);
    return OutgoingMessage(buffer, true);
  }
  Attempted try_put(const OutgoingMessage& message) {
    if (message.bytes.size() <= largest_in_ring_) {
      return ring_.try_write(message.bytes);
    }
    return try_put_spilled(message);
  }
  // Reads into a buffer of the calling thread, kept (and its capacity with it) for the next read,
  // and decodes from there; a spilled message from its own mapping.
  Attempted try_get(std::optional<T>& out) {
    thread_local std::vector<std::byte> buffer;
    IncomingSpill spill;
    const Attempted result = try_read(buffer, spill);
    if (result == Attempted::done) {
      out = decode<T>(spill.taken() == IncomingSpill::Taken::message ? spill.message() : std::span<const std::byte>(buffer));
    }
    return result;
  }
  static T decoded(T&& value) noexcept { return std::move(value); }
  // The next message's bytes, undecoded.
  Attempted try_get_bytes(std::vector<std::byte>& out) {
    IncomingSpill spill;
    const Attempted result = try_read(out, spill);
    if (result == Attempted::done && spill.taken() == IncomingSpill::Taken::message) {
      out.assign(spill.message().begin(), spill.message().end());
    }
    return result;
  }

  [[nodiscard]] std::size_t size() const noexcept { return ring_.messages(); }
  // Whether a get would find a message now, from what does not move with this handle (the shared
  // control block). A record is counted only once it is whole, so the count says it.
  [[nodiscard]] std::function<Attempted()> message_probe() const {
    return [control = &control().ring] {
      return LockedRecordRing::messages_in(*control) > 0 ? Attempted::done : Attempted::blocked;
    };
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return ring_.max_messages(); }
  [[nodiscard]] QueueSignals& signals() const noexcept { return control().signals; }
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  [[nodiscard]] const std::string& name_to_travel() const { return segment_.name_to_travel("Queue"); }

 private:
  [[nodiscard]] RecordQueueControl& control() const noexcept { return *static_cast<RecordQueueControl*>(segment_.prefix()); }

  static std::vector<std::byte>& encode_buffer() {
    thread_local std::vector<std::byte> buffer;
    return buffer;
  }

  // The first try of a big message writes it into its segment (and gives back the encode buffer's
  // memory: a thread keeps no big buffer after a big message); every try puts its reference.
  Attempted try_put_spilled(const OutgoingMessage& message) {
    if (!message.spill) {
      if (segment_.name().empty() && owner_inode_ == 0) {
        owner_inode_ = mapping_inode(segment_.header());
      }
      message.spill = std::make_unique<OutgoingSpill>(message.bytes, segment_.name(), owner_inode_);
      if (message.encode_buffer) {
        std::vector<std::byte>().swap(encode_buffer());
      }
    }
    return ring_.try_write_reference(message.spill->reference(), message.spill->queued());
  }

  // The next record; a spilled message whose segment vanished (its reader was killed while taking
  // it: the message went with it) is passed over.
  Attempted try_read(std::vector<std::byte>& out, IncomingSpill& spill) {
    for (;;) {
      const Attempted result = ring_.try_read(out, &spill);
      if (result != Attempted::done || spill.taken() != IncomingSpill::Taken::vanished) {
        return result;
      }
      spill.forget();
    }
  }

  Segment segment_;
  LockedRecordRing ring_;
  std::size_t largest_in_ring_;    // bigger messages spill (see spills())
  std::uint64_t owner_inode_ = 0;  // an anonymous queue's memory, found at its first spilled message
};

template <class T>
using QueueBackend = std::conditional_t<bitwise_message<T>, SlotQueueBackend<T>, RecordQueueBackend<T>>;

}  // namespace multiproc::detail

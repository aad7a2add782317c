#pragma once
// Internal: a ring of variable-size records (serialised messages) in shared memory for any number
// of producers and consumers, guarded by a robust Lock. Under Queue<T> and Pipe<T> for the types
// that go through the codec.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/detail/ring/attempt.hpp>
#include <multiproc/detail/ring/record_buffer.hpp>
#include <multiproc/export.hpp>
#include <multiproc/lock.hpp>

namespace multiproc::detail {

// Shared control block. Fixed layout, trivially copyable.
struct LockedRecordRingControl {
  LockState lock;  // robust; every change to the fields below and to the bytes happens under it
  // Bytes ever consumed; the oldest record starts at read_pos % capacity. Written under the lock,
  // with a relaxed atomic store so that qsize() and the lock-free first look of try_read/try_write
  // may read it without the lock (a stale value only sends the caller to the locked check).
  std::uint64_t read_pos;
  // Bytes ever produced. A record becomes visible only when write_pos moves past it, so a writer
  // that dies mid-record (its lock then recovered by the next caller) leaves nothing half-written.
  std::uint64_t write_pos;
  std::uint64_t messages;      // records in the ring; as read_pos
  std::uint64_t max_messages;  // written once by the creator: the ring refuses a record beyond it
  std::uint64_t message_type;  // name hash of the message type, checked by openers
};
static_assert(alignof(LockedRecordRingControl) == 8 &&
              sizeof(LockedRecordRingControl) == sizeof(LockState) + 5 * sizeof(std::uint64_t));
static_assert(offsetof(LockedRecordRingControl, read_pos) == sizeof(LockState));
static_assert(atomic_across_processes<std::uint64_t>);

// Takes a reference record (see LockedRecordRing::try_write_reference) out of the ring for its
// reader.
class ReferenceTaker {
 public:
  // Called with the record's bytes under the ring's lock, before the record leaves the ring:
  // throwing leaves it there for the next reader.
  virtual void take(std::span<const std::byte> reference) = 0;

 protected:
  ReferenceTaker() = default;
  ReferenceTaker(const ReferenceTaker&) = default;
  ReferenceTaker& operator=(const ReferenceTaker&) = default;
  ~ReferenceTaker() = default;
};

class MULTIPROC_API LockedRecordRing {
 public:
  // The most bytes a reference record may have.
  static constexpr std::size_t max_reference_bytes = 64;

  // `capacity` bytes at `bytes`: a multiple of 8, from the segment's (checked) size.
  LockedRecordRing(LockedRecordRingControl& control, std::byte* bytes, std::size_t capacity) noexcept;
  static void initialise(LockedRecordRingControl& control, std::size_t max_messages, std::uint64_t message_type);
  // Bytes a message of `message_bytes` takes in the ring.
  static std::size_t record_bytes(std::size_t message_bytes) noexcept { return RecordBuffer::record_bytes(message_bytes); }

  // Throws MessageTooLarge for a message that could never fit.
  Attempted try_write(std::span<const std::byte> message) { return write(message, 0, nullptr); }
  // Writes `reference` (at most max_reference_bytes: a message kept elsewhere, named by these
  // bytes) as a reference record, which try_read hands to its ReferenceTaker. Under the lock, just
  // before the record becomes visible, stores 1 (relaxed) into `committed`, which lives in shared
  // memory with the message it names: a writer that dies before that leaves it 0, one that dies
  // after has put the record.
  Attempted try_write_reference(std::span<const std::byte> reference, std::uint32_t& committed) {
    return write(reference, reference_tag, &committed);
  }
  // Replaces `message` with the oldest record's bytes; for a reference record, hands its bytes to
  // `taker` instead (under the lock) and leaves `message` alone. Throws LayoutMismatch if the
  // ring's contents are corrupt (a record header that the ring could not have written, a
  // reference with no taker or longer than max_reference_bytes).
  Attempted try_read(std::vector<std::byte>& message, ReferenceTaker* taker = nullptr);

  [[nodiscard]] std::size_t messages() const noexcept { return messages_in(*control_); }
  // The same from the shared control block alone (for a reader that holds no LockedRecordRing).
  [[nodiscard]] static std::size_t messages_in(const LockedRecordRingControl& control) noexcept;
  [[nodiscard]] std::size_t max_messages() const noexcept;
  [[nodiscard]] std::size_t capacity() const noexcept { return buffer_.capacity(); }

 private:
  Attempted write(std::span<const std::byte> record, std::uint32_t tag, std::uint32_t* committed);
  // Under the lock: after taking it over from a holder that died, count the records again (the dead
  // holder may have moved a position and not the count, which would otherwise stay off for good).
  void recount_if_recovered();

  LockedRecordRingControl* control_;
  RecordBuffer buffer_;
  Lock lock_;
};

}  // namespace multiproc::detail

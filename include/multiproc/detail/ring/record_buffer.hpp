#pragma once
// Internal: the bytes of a ring of variable-size records, as both record rings lay them out
// (LockedRecordRing: many producers and consumers under a lock; SpscRecordRing: one of each, no
// lock). Positions are byte counts that only grow; a record starts at a multiple of 8 and may wrap
// around the end of the buffer.
#include <cstddef>
#include <cstdint>
#include <span>

#include <multiproc/export.hpp>

namespace multiproc::detail {

// A record: this header, then the message, then padding to the next multiple of 8. A header never
// straddles the end of the ring, because the capacity is a multiple of 8.
struct RecordHeader {
  std::uint32_t length;   // message bytes
  // ~length for a message, ~length ^ reference_tag for a reference to a message kept elsewhere
  // (LockedRecordRing's big messages): a cheap check that the header is one the ring wrote, and
  // the one bit of a record's kind that no message's bytes can fake.
  std::uint32_t inverse;
};
static_assert(sizeof(RecordHeader) == 8 && alignof(RecordHeader) == 4);
inline constexpr std::uint32_t reference_tag = 0x52454631;  // "REF1"

// What a record's header says, once checked.
struct RecordKind {
  std::size_t length;  // message bytes
  bool reference;      // written with reference_tag
};

class MULTIPROC_API RecordBuffer {
 public:
  // `capacity` bytes at `bytes`, a multiple of 8.
  RecordBuffer(std::byte* bytes, std::size_t capacity) noexcept : bytes_(bytes), capacity_(capacity) {}

  // Bytes a message of `message_bytes` takes in the ring.
  static std::size_t record_bytes(std::size_t message_bytes) noexcept {
    return sizeof(RecordHeader) + (message_bytes + 7) / 8 * 8;
  }
  // Throws MessageTooLarge (naming `owner`) if a message of this size could never fit.
  void check_fits(std::size_t message_bytes, const char* owner) const;

  // Writes the header (tagged with `tag`: 0, or reference_tag) and the message (given in `parts`,
  // concatenated) at position `at`; returns the record's size. The caller has checked that there
  // is room.
  std::size_t write_record(std::uint64_t at, std::span<const std::span<const std::byte>> parts,
                           std::uint32_t tag = 0) noexcept;
  // The length of the record at position `at`, checked against what the header must look like and
  // against the `queued` bytes behind it; throws LayoutMismatch (naming `owner`) if it is not one
  // the ring wrote, or a reference. Never trust a length read from shared memory.
  std::size_t checked_length(std::uint64_t at, std::uint64_t queued, const char* owner) const;
  // The same, for a ring that also holds references: says which the record is. Inline: it is on
  // every read of a codec queue.
  RecordKind checked_record(std::uint64_t at, std::uint64_t queued, const char* owner) const {
    RecordHeader header{};
    copy_out(at, &header, sizeof header);
    const std::uint32_t tag = header.inverse ^ ~header.length;
    if ((tag != 0 && tag != reference_tag) || queued > capacity_ || record_bytes(header.length) > queued || at % 8 != 0) {
      corrupt(header.length, queued, owner);
    }
    return {header.length, tag != 0};
  }

  void copy_in(std::uint64_t at, const void* from, std::size_t size) noexcept;
  void copy_out(std::uint64_t at, void* to, std::size_t size) const noexcept;
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  // Throws LayoutMismatch for a record header the ring could not have written.
  [[noreturn]] static void corrupt(std::uint32_t length, std::uint64_t queued, const char* owner);

  std::byte* bytes_;
  std::size_t capacity_;
};

}  // namespace multiproc::detail

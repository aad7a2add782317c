#pragma once
// Internal: how a codec queue (and so a Pipe) carries a message too big for its ring. The sender
// writes the encoded message into a named segment of its own ("spill-<pid>-<serial>", kind
// ObjectKind::spilled_message: the Segment layer gives it the liveness flock, its pages up front
// and a clear error when shared memory runs out) and puts into the ring a reference record naming
// it (LockedRecordRing::try_write_reference). The reader that takes the record opens the segment
// and unlinks its name under the ring's lock, then decodes from the mapping. So:
//   * a sender killed before its record is in the ring leaves a segment that nobody holds and
//     that was never queued: `multiproc gc` removes it; nothing else is lost.
//   * a reader killed while taking: either the record is still in the ring (the next reader takes
//     the message), or the name is already gone (the message went with it).
//   * a queue that goes away with unread big messages: their segments are held by nobody and
//     their queue is no longer in use, which `multiproc gc` checks before removing them.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/detail/ring/locked_record_ring.hpp>
#include <multiproc/export.hpp>
#include <multiproc/segment.hpp>

namespace multiproc::detail {

// Shared: the prefix of a spilled message's segment. Fixed layout, trivially copyable.
struct SpilledMessageControl {
  static constexpr std::size_t owner_name_bytes = 208;  // max_name_length and its NUL, rounded up to 8
  // spilled_message_magic. Written by the sender's initialiser, before the segment is published;
  // read by the reader after its open (which synchronised with the publication) and by tools.
  std::uint32_t magic;
  // 0 until the record naming the message is in a ring, then 1: stored (relaxed) by the sender
  // under the ring's lock (LockedRecordRing::try_write_reference); read (relaxed) by `multiproc gc`
  // once no process holds the segment, which orders it (see try_write_reference).
  std::uint32_t queued;
  // The message's size: equal to the segment's element count. Written before publication.
  std::uint64_t message_bytes;
  // The queue the message was put into, so that gc can tell an unread message from a leftover:
  // for an anonymous queue the inode of its memory (as /proc/<pid>/maps shows it), 0 for a named
  // one. Written before publication; read by tools only.
  std::uint64_t owner_inode;
  // A named queue's name, NUL-terminated; empty for an anonymous queue. As owner_inode.
  char owner_name[owner_name_bytes];
};
static_assert(std::is_trivially_copyable_v<SpilledMessageControl> && alignof(SpilledMessageControl) == 8 &&
              sizeof(SpilledMessageControl) == 24 + SpilledMessageControl::owner_name_bytes);
static_assert(offsetof(SpilledMessageControl, queued) == 4 && offsetof(SpilledMessageControl, message_bytes) == 8 &&
              offsetof(SpilledMessageControl, owner_inode) == 16 && offsetof(SpilledMessageControl, owner_name) == 24);
static_assert(SpilledMessageControl::owner_name_bytes > max_name_length);
inline constexpr std::uint32_t spilled_message_magic = 0x4d50534d;  // "MPSM"

// The bytes of a reference record in the ring: which segment holds the message. Checked in full
// by the reader before it is used (it comes from shared memory).
struct SpillReference {
  std::uint32_t magic;       // spill_reference_magic
  std::uint32_t sender_pid;  // with serial, the segment's name (spill_name)
  std::uint64_t serial;
  std::uint64_t message_bytes;
};
static_assert(std::is_trivially_copyable_v<SpillReference> && sizeof(SpillReference) == 24 &&
              sizeof(SpillReference) <= LockedRecordRing::max_reference_bytes);
inline constexpr std::uint32_t spill_reference_magic = 0x4d505352;  // "MPSR"

// The name of the segment of a sender's `serial`-th spilled message.
MULTIPROC_API std::string spill_name(std::uint32_t sender_pid, std::uint64_t serial);

// A message spills when its record would take more than a quarter of the ring: so a ring always
// has room for a record once it is no more than three-quarters full, a big message never waits
// for a nearly empty ring (which many small ones could keep it from) nor fills the ring for the
// small ones behind it. A ring too small for even the reference keeps its messages in the ring.
[[nodiscard]] inline bool spills(std::size_t message_bytes, std::size_t ring_bytes) noexcept {
  return LockedRecordRing::record_bytes(message_bytes) > ring_bytes / 4 &&
         LockedRecordRing::record_bytes(sizeof(SpillReference)) <= ring_bytes / 4;
}
// The largest message that does not spill from a ring of `ring_bytes` (a multiple of 8): what a
// put compares with, once per message.
[[nodiscard]] inline std::size_t largest_unspilled(std::size_t ring_bytes) noexcept {
  if (!spills(std::numeric_limits<std::size_t>::max() / 2, ring_bytes)) {
    return std::numeric_limits<std::size_t>::max();
  }
  return ring_bytes / 4 / 8 * 8 - sizeof(RecordHeader);
}

// The inode of this process's mapping at `address` (from /proc/self/maps); 0 if it is not found.
MULTIPROC_API std::uint64_t mapping_inode(const void* address);

// Sender side: a message written into a segment of its own, to be put as a reference record.
class MULTIPROC_API OutgoingSpill {
 public:
  // Creates the segment and copies `message` into it. The owner is the queue's name, or (for an
  // anonymous queue: empty name) the inode of its memory.
  OutgoingSpill(std::span<const std::byte> message, const std::string& owner_name, std::uint64_t owner_inode);
  OutgoingSpill(const OutgoingSpill&) = delete;
  OutgoingSpill& operator=(const OutgoingSpill&) = delete;
  // Unlinks the segment unless its record went into a ring.
  ~OutgoingSpill();

  [[nodiscard]] std::span<const std::byte> reference() const noexcept;
  // Set to 1 by the ring as it takes the reference.
  [[nodiscard]] std::uint32_t& queued() const noexcept;

 private:
  Segment segment_;
  SpillReference reference_{};
};

// What a codec queue's put hands to each of its tries: the encoded message, and once a try has made
// it, the segment of a big one (made once per put, however often the put must wait for room).
struct OutgoingMessage {
  explicit OutgoingMessage(std::span<const std::byte> message, bool in_encode_buffer = false) noexcept
      : bytes(message), encode_buffer(in_encode_buffer) {}
  std::span<const std::byte> bytes;
  bool encode_buffer;  // `bytes` are the calling thread's encode buffer, which a spill may free
  mutable std::unique_ptr<OutgoingSpill> spill;
};

// Reader side: takes a reference record out of the ring (opening the segment it names and
// removing its name), and then holds the message's mapping until destroyed.
class MULTIPROC_API IncomingSpill final : public ReferenceTaker {
 public:
  enum class Taken {
    nothing,   // the record read was not a reference
    message,   // message() is the spilled message
    vanished,  // the reference's segment was gone: a reader killed while taking it took it
  };
  IncomingSpill() = default;
  IncomingSpill(const IncomingSpill&) = delete;
  IncomingSpill& operator=(const IncomingSpill&) = delete;
  ~IncomingSpill() = default;

  // Throws LayoutMismatch for a reference that the ring's writer could not have written, or a
  // segment that is not what it names; NotFound never (the message counts as vanished).
  void take(std::span<const std::byte> reference) override;
  [[nodiscard]] Taken taken() const noexcept { return taken_; }
  // Back to "nothing taken", for the next read.
  void forget() noexcept {
    segment_.reset();
    taken_ = Taken::nothing;
  }
  [[nodiscard]] std::span<const std::byte> message() const noexcept;

 private:
  std::unique_ptr<Segment> segment_;  // only for a big message: a plain read stays allocation-free
  Taken taken_ = Taken::nothing;
};

}  // namespace multiproc::detail

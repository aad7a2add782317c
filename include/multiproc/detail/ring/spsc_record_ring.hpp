#pragma once
// Internal: a lock-free ring of variable-size records with one producer and one consumer, in
// memory shared between processes. The pool's channel to each worker is a pair of these: no lock
// to contend for, none to recover when a side dies.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <multiproc/detail/os/doorbell.hpp>
#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/detail/ring/record_buffer.hpp>
#include <multiproc/export.hpp>

namespace multiproc::detail {

// Shared control block. Fixed layout, trivially copyable; zeroed means empty.
struct SpscRecordRingControl {
  // Bytes ever written. The producer release-stores it once a record's bytes are all in place, so
  // a record is visible whole or not at all (a producer killed mid-record leaves nothing); the
  // consumer acquire-loads it before it reads records.
  alignas(cache_line) std::uint64_t write_pos;
  // Bytes ever consumed. The consumer release-stores it once a record is copied out, handing its
  // bytes back; the producer acquire-loads it before it overwrites them.
  alignas(cache_line) std::uint64_t read_pos;
  // The consumer sleeps at `data` when the ring is empty, the producer at `room` when it is full.
  // Who rings them, and when, is the user's policy (the pool batches).
  alignas(cache_line) Doorbell data;
  Doorbell room;
};
static_assert(sizeof(SpscRecordRingControl) == 3 * cache_line && alignof(SpscRecordRingControl) == cache_line);
static_assert(offsetof(SpscRecordRingControl, write_pos) == 0 &&
              offsetof(SpscRecordRingControl, read_pos) == cache_line &&
              offsetof(SpscRecordRingControl, data) == 2 * cache_line &&
              offsetof(SpscRecordRingControl, room) == 2 * cache_line + sizeof(Doorbell));
static_assert(atomic_across_processes<std::uint64_t>);

// Invariants: read_pos <= write_pos <= read_pos + capacity; [read_pos, write_pos) holds whole
// records, each written by RecordBuffer; only the producer moves write_pos, only the consumer
// read_pos. The records need no lock because no byte is written by one side while the other may
// read it.
class MULTIPROC_API SpscRecordRing {
 public:
  // `capacity` bytes at `bytes` (a multiple of 8). `owner` names the user in error messages.
  SpscRecordRing(SpscRecordRingControl& control, std::byte* bytes, std::size_t capacity, const char* owner) noexcept
      : control_(&control), buffer_(bytes, capacity), owner_(owner) {}

  // Producer: appends one record made of `parts`; false if there is no room now. Throws
  // MessageTooLarge for a record that could never fit.
  bool try_write(std::span<const std::span<const std::byte>> parts);
  // Consumer: replaces `message` with the oldest record; false if there is none. Throws
  // LayoutMismatch for a record the ring could not have written.
  bool try_read(std::vector<std::byte>& message);
  // Bytes queued now, as either side sees it.
  [[nodiscard]] std::size_t queued_bytes() const noexcept;
  // Empties the ring. Only while neither side uses it.
  void reset() noexcept;

  [[nodiscard]] Doorbell& data_doorbell() noexcept { return control_->data; }
  [[nodiscard]] Doorbell& room_doorbell() noexcept { return control_->room; }

 private:
  SpscRecordRingControl* control_;
  RecordBuffer buffer_;
  const char* owner_;
};

}  // namespace multiproc::detail

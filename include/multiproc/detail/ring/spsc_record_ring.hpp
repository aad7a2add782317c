#pragma once
// Internal: a lock-free ring of variable-size records with one producer and one consumer, in
// memory shared between processes; and the futex doorbell its two sides (and the pool) sleep on.
// The pool's channel to each worker is a pair of these: no lock to contend for, no lock to recover.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/ring/record_buffer.hpp>
#include <multiproc/export.hpp>

namespace multiproc::detail {

// A futex doorbell in shared memory. Fixed layout, trivially copyable.
struct Bell {
  // Changed by every ring (seq_cst read-modify-write); a sleeper waits while it holds the value the
  // sleeper read (acquire) before its last look at what it waits for.
  std::uint32_t rings;
  // How many sleep on `rings` now: raised (seq_cst) before sleeping, read by ringers (seq_cst) to
  // skip the system call when nobody sleeps.
  std::uint32_t sleepers;
};

// What a sleeper reads before its last look at the condition it waits for.
MULTIPROC_API std::uint32_t bell_state(const Bell& bell) noexcept;
// Wakes everyone asleep on `bell`. Call after publishing what they wait for.
MULTIPROC_API void ring(Bell& bell) noexcept;
// Sleeps until `bell` rings after `seen` was read, a signal, or `deadline`; false once the deadline
// passed. `spin`: poll for up to 20 us first (worth it when a partner answers from another CPU).
MULTIPROC_API bool wait_for_ring(Bell& bell, std::uint32_t seen, Deadline deadline, bool spin) noexcept;

// Shared control block. Fixed layout, trivially copyable; zeroed means empty.
struct SpscBytesControl {
  // Bytes ever written. The producer release-stores it once a record's bytes are all in place, so
  // a record is visible whole or not at all (a producer killed mid-record leaves nothing); the
  // consumer acquire-loads it before it reads records.
  alignas(64) std::uint64_t tail;
  // Bytes ever consumed. The consumer release-stores it once a record is copied out, handing its
  // bytes back; the producer acquire-loads it before it overwrites them. On its own cache line:
  // the two sides write only their own.
  alignas(64) std::uint64_t head;
  // The consumer sleeps on `data` when the ring is empty, the producer on `room` when it is full.
  // Who rings them, and when, is the user's policy (the pool batches).
  alignas(64) Bell data;
  Bell room;
};

// Invariants: head <= tail <= head + capacity; [head, tail) holds whole records, each written by
// RecordBuffer; only the producer moves tail, only the consumer moves head. The records never
// need a lock because no byte is written by one side while the other may read it.
class MULTIPROC_API SpscBytes {
 public:
  // `capacity` bytes at `bytes` (a multiple of 8). `owner` names the user in error messages.
  SpscBytes(SpscBytesControl& control, std::byte* bytes, std::size_t capacity, const char* owner) noexcept
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

  [[nodiscard]] Bell& data_bell() noexcept { return control_->data; }
  [[nodiscard]] Bell& room_bell() noexcept { return control_->room; }

 private:
  SpscBytesControl* control_;
  RecordBuffer buffer_;
  const char* owner_;
};

}  // namespace multiproc::detail

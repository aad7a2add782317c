#pragma once
// Internal to the pool: the channels between the manager thread and the worker processes, in one
// anonymous segment made before the first worker is forked (a ChannelBoard prefix, then one
// WorkerChannel per worker). What the manager (manager.cpp) and the workers (worker.cpp) share.
#include <chrono>
#include <cstddef>
#include <cstdint>

#include <multiproc/detail/os/doorbell.hpp>
#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/detail/ring/spsc_record_ring.hpp>
#include <multiproc/segment.hpp>

namespace multiproc::detail {

// How often the manager looks for workers that died, and a sleeping worker for a pool whose
// process died, when nothing else wakes them. A task held by a dead worker fails with WorkerLost
// within about this long.
inline constexpr auto death_check_interval = std::chrono::milliseconds(50);

// Room for the serialised arguments of one task (a map chunk included), or one result, and more.
inline constexpr std::size_t channel_bytes = (std::size_t{8} << 20) + 4096;

// Shared by the manager and every worker. Fixed layout, trivially copyable.
struct ChannelBoard {
  // Rung by workers (news, running dry, past the refill mark, a slow task's result) and by the
  // pool's user threads (a submission, close, terminate); the manager sleeps at it.
  alignas(cache_line) Doorbell manager;
};
static_assert(sizeof(ChannelBoard) == cache_line && alignof(ChannelBoard) == cache_line);

// One worker's channel. Fixed layout, trivially copyable; reset before each worker starts.
struct WorkerChannel {
  SpscRecordRingControl inbox;   // manager -> worker: tasks (and the stop message); rung per batch
  SpscRecordRingControl outbox;  // worker -> manager: results and news
  // How many inbox messages the worker has taken. The worker release-stores it after taking one,
  // before running it; the manager acquire-loads it after reaping the worker, to tell the task it
  // died with (sequence <= taken) from those it never took. A worker killed between taking a
  // message and this store never ran it, so it is requeued, rightly.
  alignas(cache_line) std::uint64_t taken;
  // The worker rings the manager when it takes the message with this sequence number: the manager
  // relaxed-stores it after each top-up (the half-way mark of what is queued); the worker
  // relaxed-loads it per task (a stale value costs one early or late ring, nothing else).
  alignas(cache_line) std::uint64_t refill_at;
  std::byte inbox_bytes[channel_bytes];
  std::byte outbox_bytes[channel_bytes];
};
static_assert(alignof(WorkerChannel) == cache_line);
static_assert(offsetof(WorkerChannel, outbox) == sizeof(SpscRecordRingControl) &&
              offsetof(WorkerChannel, taken) == 2 * sizeof(SpscRecordRingControl) &&
              offsetof(WorkerChannel, refill_at) == offsetof(WorkerChannel, taken) + cache_line &&
              offsetof(WorkerChannel, inbox_bytes) == offsetof(WorkerChannel, refill_at) + sizeof(std::uint64_t));
static_assert(sizeof(WorkerChannel) % cache_line == 0 && channel_bytes % 8 == 0);

inline ChannelBoard& board_of(const Segment& channels) { return *static_cast<ChannelBoard*>(channels.prefix()); }
inline WorkerChannel& channel_of(const Segment& channels, std::size_t worker) {
  return static_cast<WorkerChannel*>(channels.elements())[worker];
}
inline SpscRecordRing inbox_of(WorkerChannel& channel) {
  return SpscRecordRing(channel.inbox, channel.inbox_bytes, channel_bytes, "multiproc::Pool (task)");
}
inline SpscRecordRing outbox_of(WorkerChannel& channel) {
  return SpscRecordRing(channel.outbox, channel.outbox_bytes, channel_bytes, "multiproc::Pool (result)");
}

}  // namespace multiproc::detail

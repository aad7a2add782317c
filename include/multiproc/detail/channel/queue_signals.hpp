#pragma once
// Internal: how the callers of a Queue (or Pipe) sleep when it is empty or full, and how they are
// woken, across processes: the queue's doorbells. A put or get that does not have to wait makes no
// system call.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/os/doorbell.hpp>
#include <multiproc/detail/os/ready_bridge.hpp>
#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/detail/ring/attempt.hpp>
#include <multiproc/export.hpp>

namespace multiproc::detail {

// Shared: part of a queue's control block. Fixed layout, trivially copyable.
// Two doorbells, each a futex word and a waiting flag (not a count of sleepers, as the other
// doorbells of doorbell.hpp keep: a flag lets a stream of puts make no system call at all).
struct QueueSignals {
  // Futex word consumers sleep on. Bumped (fetch_add, seq_cst) by the producer that wakes them,
  // and by close().
  std::uint32_t data_rings;
  // 1 while some consumer may be asleep. Set (exchange, seq_cst) by a consumer before its last
  // check of the queue; after a put, a producer reads it (after a seq_cst fence that follows the
  // put): either the producer sees the flag, or the consumer's last check sees the message, so a
  // wake-up cannot be lost. The first producer to see it clears it (exchange) and wakes every
  // sleeper with one system call; the next puts make none until someone sleeps again. A consumer
  // killed asleep leaves it set, which costs one needless wake-up, once.
  std::uint32_t consumers_waiting;
  // The same pair for producers waiting for room, rung by consumers after a get.
  std::uint32_t room_rings;
  std::uint32_t producers_waiting;
  // 1 once close() was called (stored seq_cst, loaded acquire). Never goes back to 0.
  std::uint32_t closed;
  // JoinableQueue: messages put but not yet matched by task_done() (fetch_add/fetch_sub, seq_cst),
  // and the futex word join() sleeps on while it is non-zero.
  std::uint32_t unfinished_tasks;
  std::uint32_t joiners_sleeping;
  std::uint32_t reserved;
};
static_assert(sizeof(QueueSignals) == 8 * sizeof(std::uint32_t) && alignof(QueueSignals) == alignof(std::uint32_t));
static_assert(offsetof(QueueSignals, closed) == 4 * sizeof(std::uint32_t));
static_assert(atomic_across_processes<std::uint32_t>);

enum class Side { consumer, producer };

// A non-owning reference to "try once", so the waiting loop can live in the library.
struct AttemptRef {
  Attempted (*call)(void* context);
  void* context;
  template <class F>
  static AttemptRef to(F& f) noexcept {
    return {[](void* c) { return (*static_cast<F*>(c))(); }, &f};
  }
  Attempted operator()() const { return call(context); }
};

// Repeats `attempt` until it is done: first for a short spin (Spin::first), then asleep at the
// side's doorbell, rung by the other side (or every few milliseconds while stalled). Returns false
// once `deadline` passes. Throws Closed when the queue is closed and, for a consumer, nothing is left.
MULTIPROC_API bool wait_until_done(QueueSignals& signals, Side side, AttemptRef attempt, Deadline deadline,
                                   Spin spin = Spin::first);

// Waits until `size()` (the queue's message count) is non-zero, without taking anything: as a
// consumer, asleep at the consumers' doorbell. False once `deadline` passes; throws Closed when
// the queue is closed and empty. Used by Pipe's poll().
template <class Size>
bool wait_nonempty_until(QueueSignals& signals, Size size, Deadline deadline, Spin spin = Spin::first) {
  auto attempt = [&] { return size() > 0 ? Attempted::done : Attempted::blocked; };
  return attempt() == Attempted::done || wait_until_done(signals, Side::consumer, AttemptRef::to(attempt), deadline, spin);
}

// True when this process is registered for membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)
// (registering it, once per process, on first call). Then the fast path of put and get needs only
// a compiler barrier before it reads the waiting flag: a waiter, between raising the flag and its
// last check, makes the kernel run a full memory barrier on every CPU running a registered process,
// which orders their earlier put/get before their later flag read (the asymmetric Dekker of
// userspace RCU). Otherwise both sides use a seq_cst fence.
MULTIPROC_API bool light_barriers() noexcept;

// Wakes the sleepers of `side` unconditionally (the slow half of ring_doorbell).
MULTIPROC_API void wake_waiters(QueueSignals& signals, Side side) noexcept;
// After a put (Side::consumer: rings for consumers) or a get (Side::producer: rings for
// producers): makes the wake-up system call only if someone went to sleep since the last one.
inline void ring_doorbell(QueueSignals& signals, Side side) noexcept {
  // Orders our put/get before the read of the waiting flag (see QueueSignals and light_barriers).
  if (light_barriers()) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  const std::uint32_t& waiting = side == Side::consumer ? signals.consumers_waiting : signals.producers_waiting;
  // relaxed: the fence above orders it (see light_barriers).
  if (shared_atomic(waiting).load(std::memory_order_relaxed) != 0) {
    wake_waiters(signals, side);
  }
}

// Marks the queue closed and wakes every sleeper on both sides.
MULTIPROC_API void close(QueueSignals& signals) noexcept;
[[nodiscard]] inline bool is_closed(const QueueSignals& signals) noexcept {
  return shared_atomic(signals.closed).load(std::memory_order_acquire) != 0;
}

// JoinableQueue: counts a put; task_done() (false if called more often than put); join().
MULTIPROC_API void add_task(QueueSignals& signals) noexcept;
MULTIPROC_API bool finish_task(QueueSignals& signals) noexcept;
MULTIPROC_API bool wait_tasks_done(QueueSignals& signals, Deadline deadline);

// The ready fd of a queue: ready while `message()` says a get would find one (done), or the queue
// is closed, or (checked every 20 ms, if given) while `also_ready()` holds: a pipe's "nobody is
// left at the other end". While `message()` says stalled (a message being written at the head),
// it looks again every few milliseconds. `signals` and whatever the functions read must live in
// shared memory (they outlive moves of the queue handle).
MULTIPROC_API std::unique_ptr<ReadyBridge> make_ready_bridge(QueueSignals& signals, std::function<Attempted()> message,
                                                            std::function<bool()> also_ready = {});

}  // namespace multiproc::detail

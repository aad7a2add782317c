#pragma once
// Internal: how the callers of a Queue (or Pipe) sleep when it is empty or full, and how they are
// woken, across processes. A put or get that does not have to wait makes no system call.
#include <atomic>
#include <cstdint>
#include <utility>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/export.hpp>

namespace multiproc::detail {

// Shared: part of a queue's control block. Fixed layout, trivially copyable.
struct QueueSignals {
  // Futex word consumers sleep on. Bumped (fetch_add, seq_cst) by the producer that wakes them,
  // and by close().
  std::uint32_t data_signal;
  // 1 while some consumer may be asleep. Set (exchange, seq_cst) by a consumer before its last
  // check of the queue; after a put, a producer reads it (after a seq_cst fence that follows the
  // put): either the producer sees the flag, or the consumer's last check sees the message, so a
  // wake-up cannot be lost. The first producer to see it clears it (exchange) and wakes every
  // sleeper with one system call; the next puts make none until someone sleeps again. A consumer
  // killed asleep leaves it set, which costs one needless wake-up, once.
  std::uint32_t consumers_waiting;
  // The same pair for producers waiting for room, woken by consumers after a get.
  std::uint32_t room_signal;
  std::uint32_t producers_waiting;
  // 1 once close() was called (stored seq_cst, loaded acquire). Never goes back to 0.
  std::uint32_t closed;
  // JoinableQueue: messages put but not yet matched by task_done() (fetch_add/fetch_sub, seq_cst),
  // and the futex word join() sleeps on while it is non-zero.
  std::uint32_t unfinished_tasks;
  std::uint32_t joiners_sleeping;
  std::uint32_t reserved;
};

enum class Side { consumer, producer };

// The result of one try at a put or get.
enum class Attempted {
  done,     // it happened
  blocked,  // empty (for a get) or full (for a put): sleep until woken
  stalled,  // the next message is being written by a process that may have died: retry soon
};

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

// Repeats `attempt` until it is done: first for a short spin, then asleep on the side's futex
// word, woken by the other side (or every few milliseconds while stalled). Returns false once
// `deadline` passes. Throws Closed when the queue is closed and, for a consumer, nothing is left.
MULTIPROC_API bool wait_until_done(QueueSignals& signals, Side side, AttemptRef attempt, Deadline deadline);

// Waits until `size()` (the queue's message count) is non-zero, without taking anything: as a
// consumer, asleep on the consumers' futex word. False once `deadline` passes; throws Closed when
// the queue is closed and empty. Used by Pipe's poll() and by the ready fd's helper thread.
template <class Size>
bool wait_nonempty_until(QueueSignals& signals, Size size, Deadline deadline) {
  auto attempt = [&] { return size() > 0 ? Attempted::done : Attempted::blocked; };
  return attempt() == Attempted::done || wait_until_done(signals, Side::consumer, AttemptRef::to(attempt), deadline);
}

// True when this process is registered for membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)
// (registering it, once per process, on first call). Then the fast path of put and get needs only
// a compiler barrier before it reads the waiting flag: a waiter, between raising the flag and its
// last check, makes the kernel run a full memory barrier on every CPU running a registered process,
// which orders their earlier put/get before their later flag read (the asymmetric Dekker of
// userspace RCU). Otherwise both sides use a seq_cst fence.
MULTIPROC_API bool light_barriers() noexcept;

// After a put (Side::consumer: wake consumers) or a get (Side::producer: wake producers): makes
// the wake-up system call only if someone went to sleep since the last one.
MULTIPROC_API void wake_waiters(QueueSignals& signals, Side side) noexcept;
inline void announce(QueueSignals& signals, Side side) noexcept {
  // Orders our put/get before the read of the waiting flag (see QueueSignals and light_barriers).
  if (light_barriers()) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  const std::uint32_t& waiting = side == Side::consumer ? signals.consumers_waiting : signals.producers_waiting;
  if (std::atomic_ref<const std::uint32_t>(waiting).load(std::memory_order_relaxed) != 0) {
    wake_waiters(signals, side);
  }
}

// Marks the queue closed and wakes every sleeper on both sides.
MULTIPROC_API void close(QueueSignals& signals) noexcept;
[[nodiscard]] inline bool is_closed(const QueueSignals& signals) noexcept {
  return std::atomic_ref<const std::uint32_t>(signals.closed).load(std::memory_order_acquire) != 0;
}

// JoinableQueue: counts a put; task_done() (false if called more often than put); join().
MULTIPROC_API void add_task(QueueSignals& signals) noexcept;
MULTIPROC_API bool finish_task(QueueSignals& signals) noexcept;
MULTIPROC_API bool wait_tasks_done(QueueSignals& signals, Deadline deadline);

}  // namespace multiproc::detail

#include <multiproc/detail/channel/queue_signals.hpp>

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>

#include <multiproc/detail/os/liveness.hpp>
#include <multiproc/error.hpp>

#include <multiproc/detail/os/doorbell.hpp>

#include "os/futex.hpp"

namespace multiproc::detail {

namespace {

std::uint32_t& signal_word(QueueSignals& s, Side side) { return side == Side::consumer ? s.data_rings : s.room_rings; }
std::uint32_t& waiting_flag(QueueSignals& s, Side side) {
  return side == Side::consumer ? s.consumers_waiting : s.producers_waiting;
}

// How long a waiter stalled by a half-written message sleeps before it looks again (and, after a
// millisecond, asks whether the writer is still alive).
constexpr auto stalled_recheck = std::chrono::milliseconds(5);

long membarrier(int command) noexcept { return ::syscall(SYS_membarrier, command, 0, 0); }

// The pid that registered for global expedited membarriers: registration belongs to a process,
// so a forked child registers anew. 0: not yet; `refused`: the kernel refused (use seq_cst
// fences). No pid takes either value (pids are 1 to 2^22), so PID 1 (a container's entrypoint)
// registers like any other.
std::atomic<std::uint32_t> registered_pid{0};
constexpr std::uint32_t refused = UINT32_MAX;

// The waiter's half of the barrier pair: after raising its flag, before its last check.
void full_barrier_everywhere() noexcept {
  if (!light_barriers() || membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
}

[[noreturn]] void throw_closed(Side side) {
  throw Closed(side == Side::consumer ? "multiproc::Queue: closed and drained" : "multiproc::Queue: closed");
}

}  // namespace

bool light_barriers() noexcept {
  const std::uint32_t registered = registered_pid.load(std::memory_order_relaxed);
  if (registered == refused) {
    return false;
  }
  const std::uint32_t me = current_pid();
  if (registered == me) {
    return true;
  }
  // The system call is itself a full barrier, so the put or get that brought us here is covered.
  const bool ok = membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
  registered_pid.store(ok ? me : refused, std::memory_order_relaxed);
  return ok;
}

bool wait_until_done(QueueSignals& signals, Side side, AttemptRef attempt, Deadline deadline, Spin spin) {
  std::uint32_t& word = signal_word(signals, side);
  auto waiting = shared_atomic(waiting_flag(signals, side));
  for (bool spun = false;; spun = true) {
    Attempted result = attempt();
    if (result == Attempted::done) {
      return true;
    }
    if (is_closed(signals)) {
      throw_closed(side);
    }
    if (Clock::now() >= deadline) {
      return false;
    }
    if (!spun && spin == Spin::first && spin_until([&] { return (result = attempt()) == Attempted::done; }, deadline)) {
      return true;
    }
    // acquire: pairs with the waker's seq_cst bump; read before we raise the flag, so a bump made
    // after our last check below makes the futex wait return at once.
    const std::uint32_t seen = shared_atomic(word).load(std::memory_order_acquire);
    waiting.exchange(1, std::memory_order_seq_cst);
    full_barrier_everywhere();
    result = attempt();
    if (result == Attempted::done) {
      return true;  // the flag stays up: it costs the other side one needless wake-up at most
    }
    if (!is_closed(signals)) {
      const Deadline wake_by = result == Attempted::stalled ? std::min(deadline, Clock::now() + stalled_recheck) : deadline;
      futex_wait_until(&word, seen, wake_by == Deadline::max() ? nullptr : &wake_by);
    }
  }
}

void wake_waiters(QueueSignals& signals, Side side) noexcept {
  // Only the caller that lowers the flag makes the system call; the sleepers it wakes raise it
  // again if they must sleep again.
  if (shared_atomic(waiting_flag(signals, side)).exchange(0, std::memory_order_acq_rel) != 0) {
    std::uint32_t& word = signal_word(signals, side);
    shared_atomic(word).fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&word, INT_MAX);
  }
}

void close(QueueSignals& signals) noexcept {
  shared_atomic(signals.closed).store(1, std::memory_order_seq_cst);
  for (const Side side : {Side::consumer, Side::producer}) {
    shared_atomic(signal_word(signals, side)).fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&signal_word(signals, side), INT_MAX);
  }
}

void add_task(QueueSignals& signals) noexcept {
  shared_atomic(signals.unfinished_tasks).fetch_add(1, std::memory_order_seq_cst);
}

bool finish_task(QueueSignals& signals) noexcept {
  auto unfinished = shared_atomic(signals.unfinished_tasks);
  std::uint32_t seen = unfinished.load(std::memory_order_relaxed);
  do {
    if (seen == 0) {
      return false;
    }
  } while (!unfinished.compare_exchange_weak(seen, seen - 1, std::memory_order_seq_cst, std::memory_order_relaxed));
  if (seen == 1) {
    ring_doorbell(signals.unfinished_tasks, signals.joiners_sleeping, INT_MAX);
  }
  return true;
}

bool wait_tasks_done(QueueSignals& signals, Deadline deadline) {
  auto unfinished = shared_atomic(signals.unfinished_tasks);
  for (std::uint32_t seen; (seen = unfinished.load(std::memory_order_acquire)) != 0;) {
    if (!wait_at_doorbell(signals.unfinished_tasks, signals.joiners_sleeping, seen, deadline)) {
      return unfinished.load(std::memory_order_acquire) == 0;
    }
  }
  return true;
}

std::unique_ptr<ReadyBridge> make_ready_bridge(QueueSignals& signals, std::function<Attempted()> message,
                                               std::function<bool()> also_ready) {
  // mutable: AttemptRef calls the probe through a plain reference.
  auto wait_ready = [&signals, message = std::move(message),
                     also_ready = std::move(also_ready)](Deadline deadline) mutable {
    constexpr auto also_ready_interval = std::chrono::milliseconds(20);
    if (also_ready) {
      deadline = std::min(deadline, Clock::now() + also_ready_interval);
    }
    // Spin::never: the thread waits right after its owner drained the queue, when nothing is
    // coming yet; and a thread that spins before it sleeps is woken late on a busy CPU (see
    // ReadyBridge: bug 14.13).
    return wait_until_done(signals, Side::consumer, AttemptRef::to(message), deadline, Spin::never) ||
           (also_ready && also_ready());  // Closed: throws, ready
  };
  // Wakes the bridge's thread if it sleeps as a consumer (with every other sleeping consumer: they
  // look again and sleep on).
  auto interrupt = [&signals] { wake_waiters(signals, Side::consumer); };
  return std::make_unique<ReadyBridge>(std::move(wait_ready), std::move(interrupt));
}

}  // namespace multiproc::detail

// The pool, inside each worker process: take tasks from the inbox, run them, send results and
// news to the manager through the outbox, and say when the manager should look.
#include <multiproc/detail/pool/pool_core.hpp>

#include <unistd.h>

#include <chrono>
#include <utility>

#include <multiproc/error.hpp>

#include "os/demangle.hpp"
#include "pool/worker_channel.hpp"

namespace multiproc::detail {

namespace {

using namespace std::chrono_literals;

// A task that ran this long gets its result delivered at once: the wake-up is cheap beside it.
constexpr auto slow_task = 200us;

// Writes one record, sleeping (and ringing the manager, whose draining makes room) while the
// outbox is full. A worker whose pool's process has gone leaves instead of waiting for ever.
void send_to_manager(WorkerChannel& channel, Doorbell& manager, std::span<const std::byte> message, pid_t parent) {
  SpscRecordRing outbox = outbox_of(channel);
  const std::span<const std::byte> parts[] = {message};
  for (;;) {
    const std::uint32_t seen = doorbell_state(outbox.room_doorbell());
    if (outbox.try_write(parts)) {
      return;
    }
    ring_doorbell(manager);
    (void)wait_at_doorbell(outbox.room_doorbell(), seen, Clock::now() + death_check_interval, Spin::never);
    if (::getppid() != parent) {
      ::_exit(1);
    }
  }
}

}  // namespace

std::string type_name(const std::type_info& type) { return demangle(type.name()); }

void PoolCore::run_worker(std::size_t index) {
  const pid_t parent = owner_pid_;
  WorkerChannel& channel = channel_of(channels_, index);
  Doorbell& manager = board_of(channels_).manager;
  SpscRecordRing inbox = inbox_of(channel);
  std::vector<std::byte> encoded;
  const auto tell = [&](const ResultMessage& message) {
    ResultMessage::encode_bytes(message, encoded);
    send_to_manager(channel, manager, encoded, parent);
  };
  const auto tell_now = [&](const ResultMessage& message) {
    tell(message);
    ring_doorbell(manager);
  };
  const auto worker = static_cast<std::uint32_t>(index);
  if (initializer_) {
    try {
      initializer_();
    } catch (const std::exception& e) {
      tell_now(ResultMessage{0, worker, Outcome::init_failed, {}, current_exception_type(), e.what()});
      ::_exit(1);
    } catch (...) {
      tell_now(ResultMessage{0, worker, Outcome::init_failed, {}, current_exception_type(), ""});
      ::_exit(1);
    }
  }
  tell_now(ResultMessage{0, worker, Outcome::ready, {}, {}, {}});
  std::vector<std::byte> record;
  ResultMessage result;
  std::uint64_t taken = 0;
  std::uint64_t rang_for = 0;  // the refill mark this worker last rang for
  // A task's time runs from the end of the previous one (or from the wake-up that brought it), so
  // that a busy worker reads the clock once per task: taking and answering a task is part of what
  // the manager paces by, and a clock read costs 76 ns on this project's VMs (a tiny task ~1 us).
  auto previous_end = Clock::now();
  for (int done = 0; maxtasksperchild_ <= 0 || done < maxtasksperchild_; ++done) {
    for (;;) {
      const std::uint32_t seen = doorbell_state(inbox.data_doorbell());
      if (inbox.try_read(record)) {
        break;
      }
      (void)wait_at_doorbell(inbox.data_doorbell(), seen, Clock::now() + death_check_interval, Spin::first);
      if (::getppid() != parent) {
        ::_exit(1);  // the pool's process is gone: nobody will read what we do
      }
      previous_end = Clock::now();
    }
    shared_atomic(channel.taken).store(++taken, std::memory_order_release);
    const TaskHeader task = TaskHeader::read(record);
    if (task.id == stop_task_id) {
      ::_exit(0);
    }
    result.id = task.id;
    result.worker = worker;
    result.outcome = Outcome::value;
    result.error_type.clear();
    result.error_message.clear();
    try {
      // The address came from the parent, whose code this forked worker shares (see task.hpp).
      // NOLINTNEXTLINE(performance-no-int-to-ptr)
      reinterpret_cast<Invoker>(task.invoker)(task.function, std::span(record).subspan(sizeof task), result.payload);
    } catch (const std::exception& e) {
      result = ResultMessage{task.id, worker, Outcome::error, {}, current_exception_type(), e.what()};
    } catch (...) {
      result = ResultMessage{task.id, worker, Outcome::error, {}, current_exception_type(), ""};
    }
    const auto ended = Clock::now();
    const auto ran = ended - std::exchange(previous_end, ended);
    result.run_nanos = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(ran).count());
    const bool slow = ran >= slow_task;
    try {
      tell(result);
    } catch (const MessageTooLarge& e) {  // the result cannot travel: the task fails, the worker goes on
      tell(ResultMessage{task.id, worker, Outcome::error, {}, "multiproc::MessageTooLarge", e.what()});
    }
    // relaxed: a stale mark costs one early or late ring (see WorkerChannel::refill_at).
    const std::uint64_t refill_at = shared_atomic(channel.refill_at).load(std::memory_order_relaxed);
    const bool past_mark = taken >= refill_at && rang_for != refill_at;
    if (slow || past_mark || inbox.queued_bytes() == 0) {
      rang_for = refill_at;
      ring_doorbell(manager);
    }
  }
  tell_now(ResultMessage{0, worker, Outcome::retiring, {}, {}, {}});
  ::_exit(0);
}

}  // namespace multiproc::detail

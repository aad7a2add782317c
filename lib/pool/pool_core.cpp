#include <multiproc/detail/pool/pool_core.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>

#include <multiproc/error.hpp>

#include "os/demangle.hpp"

namespace multiproc::detail {

namespace {

using namespace std::chrono_literals;

// How often the manager looks for workers that died, when nothing else wakes it. A task held by
// a dead worker fails with WorkerLost within about this long.
constexpr auto death_check_interval = 50ms;
// While tasks are out, the manager also looks at the outboxes this often by itself: the longest a
// finished result can wait for delivery (a worker does not ring for every result).
constexpr auto result_poll_interval = 1ms;
// A task that ran this long gets its result delivered at once: the wake-up is cheap beside it.
constexpr auto slow_task = 200us;
// How much work (by the worker's recent pace) an inbox is filled with, and the bounds on how many
// tasks that is. Deep enough that a busy worker never waits for the manager; shallow enough that
// tasks do not pile up behind a slow one while another worker could take them.
constexpr double inbox_work_micros = 500;
constexpr std::size_t min_inbox_tasks = 1;
constexpr std::size_t max_inbox_tasks = 256;
// Room for the serialised arguments of one task (a map chunk included), or one result, and more.
constexpr std::size_t channel_bytes = (std::size_t{8} << 20) + 4096;

// Shared by the manager and every worker. Fixed layout, trivially copyable.
struct ChannelBoard {
  // Rung by workers (news, running dry, past the refill mark, a slow task's result) and by the
  // pool's user threads (a submission, close, terminate); the manager sleeps on it.
  alignas(64) Bell manager;
};

// One worker's channel. Fixed layout, trivially copyable; reset before each worker starts.
struct WorkerChannel {
  SpscBytesControl inbox;   // manager -> worker: tasks (and the stop message); rung per batch
  SpscBytesControl outbox;  // worker -> manager: results and news
  // How many inbox messages the worker has taken. The worker release-stores it after taking one,
  // before running it; the manager acquire-loads it after reaping the worker, to tell the task it
  // died with (sequence <= taken) from those it never took. A worker killed between taking a
  // message and this store never ran it, so it is requeued, rightly.
  alignas(64) std::uint64_t taken;
  // The worker rings the manager when it takes the message with this sequence number: the manager
  // relaxed-stores it after each top-up (the half-way mark of what is queued); the worker
  // relaxed-loads it per task (a stale value costs one early or late ring, nothing else).
  alignas(64) std::uint64_t refill_at;
  std::byte inbox_bytes[channel_bytes];
  std::byte outbox_bytes[channel_bytes];
};

ChannelBoard& board_of(const Segment& channels) { return *static_cast<ChannelBoard*>(channels.prefix()); }
WorkerChannel& channel_of(const Segment& channels, std::size_t slot) {
  return static_cast<WorkerChannel*>(channels.elements())[slot];
}
SpscBytes inbox_of(WorkerChannel& channel) {
  return SpscBytes(channel.inbox, channel.inbox_bytes, channel_bytes, "multiproc::Pool (task)");
}
SpscBytes outbox_of(WorkerChannel& channel) {
  return SpscBytes(channel.outbox, channel.outbox_bytes, channel_bytes, "multiproc::Pool (result)");
}

std::uint64_t relaxed_load(const std::uint64_t& word) {
  return std::atomic_ref<const std::uint64_t>(word).load(std::memory_order_relaxed);
}

// Writes one record, sleeping (and ringing the manager, whose draining makes room) while the
// outbox is full. A worker whose parent has gone leaves instead of waiting for ever.
void send_to_manager(WorkerChannel& channel, Bell& manager, std::span<const std::byte> message, pid_t parent) {
  SpscBytes outbox = outbox_of(channel);
  const std::span<const std::byte> parts[] = {message};
  for (;;) {
    const std::uint32_t seen = bell_state(outbox.room_bell());
    if (outbox.try_write(parts)) {
      return;
    }
    ring(manager);
    (void)wait_for_ring(outbox.room_bell(), seen, Clock::now() + death_check_interval, false);
    if (::getppid() != parent) {
      ::_exit(1);
    }
  }
}

TaskOutcome failure(TaskOutcome::Kind kind, std::string message, std::string type = {}) {
  return TaskOutcome{kind, {}, std::move(type), std::move(message)};
}

std::string describe_exit(const std::optional<int>& code) {
  if (!code) return "ended";
  if (*code < 0) return "was killed by signal " + std::to_string(-*code);
  return "exited with code " + std::to_string(*code);
}

}  // namespace

std::exception_ptr failure_of(const TaskOutcome& outcome) {
  switch (outcome.kind) {
    case TaskOutcome::Kind::value: return nullptr;
    case TaskOutcome::Kind::remote_error:
      return std::make_exception_ptr(RemoteError(outcome.error_type, outcome.message));
    case TaskOutcome::Kind::worker_lost: return std::make_exception_ptr(WorkerLost(outcome.message));
    case TaskOutcome::Kind::broken_pool: return std::make_exception_ptr(BrokenPool(outcome.message));
    case TaskOutcome::Kind::cancelled: return std::make_exception_ptr(Cancelled(outcome.message));
  }
  return nullptr;
}

PoolCore::PoolCore(int processes, std::function<void()> initializer, int maxtasksperchild)
    : initializer_(std::move(initializer)), maxtasksperchild_(maxtasksperchild) {
  const int count = processes > 0 ? processes : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  slots_.resize(static_cast<std::size_t>(count));
  channels_ = Segment(Segment::Layout{ObjectKind::pool_channels, fingerprint_of<WorkerChannel>(), sizeof(ChannelBoard),
                                      alignof(ChannelBoard), slots_.size()},
                      [](Segment&) {});  // a fresh anonymous mapping is all zeros: empty rings, quiet bells
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    start_worker(i);
  }
  manager_ = std::thread([this] { manage(); });
}

// A destructor may not throw. terminate() throws only when a system call it relies on fails
// (joining a thread, killing or reaping a worker); nothing better than going on is left then.
PoolCore::~PoolCore() {
  try {
    terminate();
  } catch (...) {
  }
}

void PoolCore::start_worker(std::size_t slot) {
  Slot& s = slots_[slot];
  WorkerChannel& channel = channel_of(channels_, slot);  // the previous worker, if any, is reaped
  inbox_of(channel).reset();
  outbox_of(channel).reset();
  channel.taken = 0;
  channel.refill_at = 0;
  s.process = Process([this, slot] { run_worker(slot); }, "PoolWorker-" + std::to_string(slot + 1));
  s.process.start();
  s.running = true;
  s.ready = false;
  s.retiring = false;
  s.given = 0;
  s.sent = 0;
  s.task_micros = 0;
}

void PoolCore::run_worker(std::size_t slot) {
  const pid_t parent = ::getppid();
  WorkerChannel& channel = channel_of(channels_, slot);
  Bell& manager = board_of(channels_).manager;
  SpscBytes inbox = inbox_of(channel);
  std::vector<std::byte> encoded;
  const auto tell = [&](const ResultMessage& message) {
    ResultMessage::encode_bytes(message, encoded);
    send_to_manager(channel, manager, encoded, parent);
  };
  const auto announce = [&](const ResultMessage& message) {
    tell(message);
    ring(manager);
  };
  const auto worker = static_cast<std::uint32_t>(slot);
  if (initializer_) {
    try {
      initializer_();
    } catch (const std::exception& e) {
      announce(ResultMessage{0, worker, Outcome::init_failed, {}, current_exception_type(), e.what()});
      ::_exit(1);
    } catch (...) {
      announce(ResultMessage{0, worker, Outcome::init_failed, {}, current_exception_type(), ""});
      ::_exit(1);
    }
  }
  announce(ResultMessage{0, worker, Outcome::ready, {}, {}, {}});
  std::vector<std::byte> record;
  ResultMessage result;
  std::uint64_t taken = 0;
  std::uint64_t rang_for = 0;  // the refill mark this worker last rang for
  for (int done = 0; maxtasksperchild_ <= 0 || done < maxtasksperchild_; ++done) {
    for (;;) {
      const std::uint32_t seen = bell_state(inbox.data_bell());
      if (inbox.try_read(record)) {
        break;
      }
      (void)wait_for_ring(inbox.data_bell(), seen, Clock::now() + death_check_interval, true);
      if (::getppid() != parent) {
        ::_exit(1);  // the pool's process is gone: nobody will read what we do
      }
    }
    std::atomic_ref<std::uint64_t>(channel.taken).store(++taken, std::memory_order_release);
    const TaskMessage::Header task = TaskMessage::read_view(record);
    if (task.id == 0) {
      ::_exit(0);
    }
    result.id = task.id;
    result.worker = worker;
    result.outcome = Outcome::value;
    result.error_type.clear();
    result.error_message.clear();
    const auto started = Clock::now();
    try {
      // The address came from the parent, whose code this forked worker shares (see task.hpp).
      // NOLINTNEXTLINE(performance-no-int-to-ptr)
      reinterpret_cast<Invoker>(task.invoker)(task.function, std::span(record).subspan(sizeof task), result.payload);
    } catch (const std::exception& e) {
      result = ResultMessage{task.id, worker, Outcome::error, {}, current_exception_type(), e.what()};
    } catch (...) {
      result = ResultMessage{task.id, worker, Outcome::error, {}, current_exception_type(), ""};
    }
    const auto ran = Clock::now() - started;
    result.run_nanos = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(ran).count());
    const bool slow = ran >= slow_task;
    try {
      tell(result);
    } catch (const MessageTooLarge& e) {  // the result cannot travel: the task fails, the worker goes on
      tell(ResultMessage{task.id, worker, Outcome::error, {}, "multiproc::MessageTooLarge", e.what()});
    }
    const std::uint64_t refill_at = relaxed_load(channel.refill_at);
    const bool past_mark = taken >= refill_at && rang_for != refill_at;
    if (slow || past_mark || inbox.queued_bytes() == 0) {
      rang_for = refill_at;
      ring(manager);
    }
  }
  announce(ResultMessage{0, worker, Outcome::retiring, {}, {}, {}});
  ::_exit(0);
}

std::uint64_t PoolCore::submit(Call call, Done done) {
  std::vector<std::pair<Call, Done>> one;
  one.emplace_back(std::move(call), std::move(done));
  return submit_all(std::move(one));
}

std::uint64_t PoolCore::submit_all(std::vector<std::pair<Call, Done>>&& calls) {
  std::uint64_t first_id = 0;
  std::string refused;
  bool must_ring = false;
  {
    std::scoped_lock lock(mutex_);
    if (closed_ || broken_ || terminated_) {
      refused = broken_ ? broken_reason_ : terminated_ ? "the pool was terminated" : "the pool is closed";
    } else {
      // Only the call that makes the queue non-empty rings: with tasks already queued, the manager
      // is either about to take them or waiting for a worker to have room, which rings it anyway.
      must_ring = pending_.empty();
      first_id = next_id_;
      for (auto& [call, done] : calls) {
        pending_.push_back(Task{next_id_++, std::move(call), std::move(done)});
      }
    }
  }
  if (!refused.empty()) {
    for (auto& call : calls) {
      call.second(failure(TaskOutcome::Kind::broken_pool, "multiproc::Pool: " + refused));
    }
  } else if (must_ring) {
    wake_manager();
  }
  return first_id;
}

bool PoolCore::cancel(std::uint64_t id) {
  Task task;
  {
    std::scoped_lock lock(mutex_);
    const auto found = std::find_if(pending_.begin(), pending_.end(), [id](const Task& t) { return t.id == id; });
    if (found == pending_.end()) {
      return false;
    }
    task = std::move(*found);
    pending_.erase(found);
  }
  finish(task, failure(TaskOutcome::Kind::cancelled, "multiproc: the task was cancelled before it started"));
  return true;
}

void PoolCore::cancel_all_pending() {
  std::deque<Task> queued;
  {
    std::scoped_lock lock(mutex_);
    queued.swap(pending_);
  }
  for (Task& task : queued) {
    finish(task, failure(TaskOutcome::Kind::cancelled, "multiproc: the task was cancelled before it started"));
  }
}

void PoolCore::wake_manager() noexcept { ring(board_of(channels_).manager); }

void PoolCore::manage() {
  Bell& bell = board_of(channels_).manager;
  auto next_death_check = Clock::now() + death_check_interval;
  for (;;) {
    const std::uint32_t seen = bell_state(bell);
    bool pending_empty = false;
    {
      std::scoped_lock lock(mutex_);
      const bool idle = std::all_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.assigned.empty(); });
      if (terminated_ || ((closed_ || broken_) && pending_.empty() && idle)) {
        break;
      }
      pending_empty = pending_.empty();
    }
    const bool handled = handle_waiting_results();  // both run every pass: no short-circuit
    const bool assigned = assign_idle_workers();
    const bool progress = handled || assigned;
    const auto now = Clock::now();
    // A retiring worker is replaced as soon as it has gone, not at the next routine check.
    const bool someone_leaving = std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.running && s.retiring; });
    if (someone_leaving || now >= next_death_check) {
      replace_ended_workers();
      if (now >= next_death_check) {
        next_death_check = now + death_check_interval;
      }
    }
    if (progress) {
      continue;
    }
    std::size_t out = 0;
    for (const Slot& s : slots_) {
      out += s.assigned.size();
    }
    // A lone call (or the next one, soon) waits on us: answer from this CPU rather than after a
    // futex wake-up. A busy pool needs this CPU for its workers.
    const bool latency_matters = pending_empty && out <= slots_.size();
    const auto wake_by = out > 0 || someone_leaving ? std::min(next_death_check, now + result_poll_interval) : next_death_check;
    (void)wait_for_ring(bell, seen, wake_by, latency_matters);
  }
  if (!terminated_) {  // closed and finished, or broken: let the workers leave
    stop_workers();
  }
}

void PoolCore::stop_workers() {
  const TaskMessage::Header stop{0, 0, 0, 0};
  const std::span<const std::byte> parts[] = {std::as_bytes(std::span(&stop, 1))};
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].running) {
      SpscBytes inbox = inbox_of(channel_of(channels_, i));
      if (inbox.try_write(parts)) {  // a full inbox: the worker is killed below instead
        ring(inbox.data_bell());
      }
    }
  }
  for (Slot& s : slots_) {
    if (s.running && !s.process.join(5s)) {
      s.process.kill();
      s.process.join();
    }
    s.running = false;
  }
}

std::size_t PoolCore::inbox_depth(const Slot& slot) const {
  if (slot.task_micros <= 0) {
    return min_inbox_tasks;  // no pace known yet
  }
  const auto by_pace = static_cast<std::size_t>(inbox_work_micros / slot.task_micros);
  return std::clamp(by_pace, min_inbox_tasks, max_inbox_tasks);
}

bool PoolCore::assign_idle_workers() {
  // How many tasks each worker should be given now: the emptiest first, so that every worker gets
  // a task before any gets a second.
  std::vector<std::size_t> wants(slots_.size(), 0);
  std::size_t wanted = 0;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (!s.running || !s.ready || s.retiring) {
      continue;
    }
    const std::size_t depth = inbox_depth(s);
    std::size_t room = depth - std::min(depth, s.assigned.size());
    if (maxtasksperchild_ > 0) {
      room = std::min(room, static_cast<std::size_t>(std::max(0, maxtasksperchild_ - s.given)));
    }
    wants[i] = room;
    wanted += room;
  }
  if (wanted == 0) {
    return false;
  }
  std::deque<Task> batch;
  {
    std::scoped_lock lock(mutex_);  // one lock for the whole batch: submitters contend for it
    if (broken_) {
      return false;
    }
    const std::size_t take = std::min(wanted, pending_.size());
    batch.insert(batch.end(), std::make_move_iterator(pending_.begin()),
                 std::make_move_iterator(pending_.begin() + static_cast<std::ptrdiff_t>(take)));
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(take));
  }
  if (batch.empty()) {
    return false;
  }
  std::vector<bool> written(slots_.size(), false);
  std::deque<Task> left_over;  // inboxes full of big tasks: these wait for the next pass
  while (!batch.empty()) {
    // The worker with the fewest tasks that still wants one.
    std::size_t best = slots_.size();
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (wants[i] > 0 && (best == slots_.size() || slots_[i].assigned.size() < slots_[best].assigned.size())) {
        best = i;
      }
    }
    if (best == slots_.size()) {
      break;
    }
    Task task = std::move(batch.front());
    batch.pop_front();
    Slot& s = slots_[best];
    SpscBytes inbox = inbox_of(channel_of(channels_, best));
    // The arguments stay with the task, so it can run again on another worker if this one dies
    // before taking it.
    const TaskMessage::Header header{task.id, reinterpret_cast<std::uint64_t>(task.call.invoker), task.call.function,
                                     task.call.args.size()};
    const std::span<const std::byte> parts[] = {std::as_bytes(std::span(&header, 1)), task.call.args};
    try {
      if (!inbox.try_write(parts)) {
        wants[best] = 0;
        left_over.push_back(std::move(task));
        continue;
      }
    } catch (const MessageTooLarge& e) {
      finish(task, failure(TaskOutcome::Kind::remote_error, e.what(), "multiproc::MessageTooLarge"));
      continue;
    }
    s.assigned.push_back(std::move(task));
    ++s.given;
    ++s.sent;
    --wants[best];
    written[best] = true;
  }
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (written[i]) {
      WorkerChannel& channel = channel_of(channels_, i);
      // Ring me back half-way through what is queued now.
      std::atomic_ref<std::uint64_t>(channel.refill_at)
          .store(slots_[i].sent - slots_[i].assigned.size() / 2, std::memory_order_relaxed);
      ring(inbox_of(channel).data_bell());
    }
  }
  std::move(batch.begin(), batch.end(), std::back_inserter(left_over));
  if (!left_over.empty()) {
    std::scoped_lock lock(mutex_);
    pending_.insert(pending_.begin(), std::make_move_iterator(left_over.begin()), std::make_move_iterator(left_over.end()));
  }
  return std::find(written.begin(), written.end(), true) != written.end();
}

bool PoolCore::handle_waiting_results() {
  bool handled = false;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i].running) {
      continue;
    }
    SpscBytes outbox = outbox_of(channel_of(channels_, i));
    bool drained = false;
    while (outbox.try_read(result_record_)) {
      handle(i, ResultMessage::decode_bytes(result_record_));
      drained = true;
    }
    if (drained) {
      ring(outbox.room_bell());  // a worker may wait for room
      handled = true;
    }
  }
  return handled;
}

void PoolCore::handle(std::size_t slot, ResultMessage&& result) {
  Slot& s = slots_[slot];
  switch (result.outcome) {
    case Outcome::ready:
      s.ready = true;
      return;
    case Outcome::init_failed: {
      {
        std::scoped_lock lock(mutex_);
        broken_ = true;
        broken_reason_ = "the initializer raised " + result.error_type + ": " + result.error_message;
      }
      fail_everything("multiproc::Pool: " + broken_reason_);
      return;
    }
    case Outcome::retiring:
      s.retiring = true;  // leaving; replaced once it has ended
      return;
    case Outcome::value:
    case Outcome::error: {
      if (s.assigned.empty() || s.assigned.front().id != result.id) {
        return;  // a task already failed (its worker was judged dead): too late
      }
      Task task = std::move(s.assigned.front());
      s.assigned.pop_front();
      const double micros = static_cast<double>(result.run_nanos) / 1000.0;
      s.task_micros = s.task_micros <= 0 ? micros : 0.8 * s.task_micros + 0.2 * micros;
      finish(task, result.outcome == Outcome::value
                       ? TaskOutcome{TaskOutcome::Kind::value, std::move(result.payload), {}, {}}
                       : failure(TaskOutcome::Kind::remote_error, std::move(result.error_message),
                                 std::move(result.error_type)));
      return;
    }
  }
}

void PoolCore::replace_ended_workers() {
  const auto keep_going = [this] {
    std::scoped_lock lock(mutex_);
    return !terminated_ && !broken_ && !(closed_ && pending_.empty());
  };
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.running && !s.process.is_alive()) {
      // Reaped: everything it sent before it exited is in its outbox now; read it before judging
      // what it left unfinished.
      handle_waiting_results();
      s.running = false;
      // Messages it never took go back to the queue, in order; the one it took last, if its result
      // did not come, is the one it died with.
      const std::uint64_t taken = std::atomic_ref<std::uint64_t>(channel_of(channels_, i).taken).load(std::memory_order_acquire);
      std::uint64_t sequence = s.sent - s.assigned.size();
      std::deque<Task> requeue;
      for (Task& task : s.assigned) {
        if (++sequence > taken) {
          requeue.push_back(std::move(task));
        } else {
          finish(task, failure(TaskOutcome::Kind::worker_lost,
                               "multiproc::Pool: worker " + s.process.name() + " (pid " +
                                   std::to_string(s.process.pid()) + ") " + describe_exit(s.process.exitcode()) +
                                   " while running this task"));
        }
      }
      s.assigned.clear();
      std::scoped_lock lock(mutex_);
      pending_.insert(pending_.begin(), std::make_move_iterator(requeue.begin()), std::make_move_iterator(requeue.end()));
    }
    if (!s.running && keep_going()) {
      start_worker(i);
    }
  }
}

void PoolCore::finish(Task& task, TaskOutcome&& outcome) {
  try {
    task.done(std::move(outcome));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "multiproc::Pool: a result callback raised %s: %s\n", current_exception_type().c_str(), e.what());
  }
}

void PoolCore::fail_everything(const std::string& why) {
  std::deque<Task> queued;
  {
    std::scoped_lock lock(mutex_);
    queued.swap(pending_);
  }
  for (Task& task : queued) {
    finish(task, failure(TaskOutcome::Kind::broken_pool, why));
  }
  for (Slot& s : slots_) {
    for (Task& task : s.assigned) {
      finish(task, failure(TaskOutcome::Kind::broken_pool, why));
    }
    s.assigned.clear();
  }
}

void PoolCore::close() {
  {
    std::scoped_lock lock(mutex_);
    closed_ = true;
  }
  wake_manager();
}

void PoolCore::join() {
  {
    std::scoped_lock lock(mutex_);
    if (!closed_ && !terminated_ && !broken_) {
      throw std::logic_error("multiproc::Pool::join: call close() or terminate() first");
    }
  }
  if (manager_.joinable()) {
    manager_.join();
  }
}

void PoolCore::terminate() {
  {
    std::scoped_lock lock(mutex_);
    if (terminated_) {
      return;
    }
    terminated_ = true;
  }
  wake_manager();
  if (manager_.joinable()) {
    manager_.join();
  }
  for (Slot& s : slots_) {
    if (s.running) {
      s.process.kill();
      s.process.join();
      s.running = false;
    }
  }
  fail_everything("multiproc::Pool: the pool was terminated");
}

}  // namespace multiproc::detail

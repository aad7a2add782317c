// The pool's manager thread: keeps every worker's inbox topped up, delivers results, and replaces
// workers that die or retire. Also starting a worker (for the constructor, and for replacements).
#include <multiproc/detail/pool/pool_core.hpp>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <string>

#include <multiproc/error.hpp>

#include "os/demangle.hpp"
#include "pool/worker_channel.hpp"

namespace multiproc::detail {

namespace {

using namespace std::chrono_literals;

// While tasks are out, the manager also looks at the outboxes this often by itself: the longest a
// finished result can wait for delivery (a worker does not ring for every result).
constexpr auto result_poll_interval = 1ms;
// How much work (by the worker's recent pace) an inbox is filled with, and the bounds on how many
// tasks that is. Deep enough that a busy worker never waits for the manager; shallow enough that
// tasks do not pile up behind a slow one while another worker could take them.
constexpr double inbox_work_micros = 500;
constexpr std::size_t min_inbox_tasks = 1;
constexpr std::size_t max_inbox_tasks = 256;
// A worker's pace is a moving average of its task times, the latest weighing this much: enough to
// follow a change of task within a few tasks, little enough that one outlier does not empty or
// flood the inbox.
constexpr double pace_weight_of_latest = 0.2;
// How long a closed pool's workers have to leave after their stop message before they are killed.
constexpr auto stop_grace = 5s;

std::string describe_exit(const std::optional<int>& code) {
  if (!code) return "ended";
  if (*code < 0) return "was killed by signal " + std::to_string(-*code);
  return "exited with code " + std::to_string(*code);
}

}  // namespace

void PoolCore::start_worker(std::size_t index) {
  Worker& w = workers_[index];
  WorkerChannel& channel = channel_of(channels_, index);  // the previous worker, if any, is reaped
  inbox_of(channel).reset();
  outbox_of(channel).reset();
  channel.taken = 0;
  channel.refill_at = 0;
  w.process = Process([this, index] { run_worker(index); }, "PoolWorker-" + std::to_string(index + 1));
  w.process.start();
  w.running = true;
  w.ready = false;
  w.retiring = false;
  w.given = 0;
  w.sent = 0;
  w.task_micros = 0;
}

void PoolCore::manage() {
  Doorbell& bell = board_of(channels_).manager;
  auto next_death_check = Clock::now() + death_check_interval;
  for (;;) {
    const std::uint32_t seen = doorbell_state(bell);
    bool pending_empty = false;
    {
      std::scoped_lock lock(mutex_);
      const bool idle = std::all_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.assigned.empty(); });
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
    const bool someone_leaving = std::any_of(workers_.begin(), workers_.end(), [](const Worker& w) { return w.running && w.retiring; });
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
    for (const Worker& w : workers_) {
      out += w.assigned.size();
    }
    // A lone call (or the next one, soon) waits on us: answer from this CPU rather than after a
    // futex wake-up. A busy pool needs this CPU for its workers.
    const bool latency_matters = pending_empty && out <= workers_.size();
    const auto wake_by = out > 0 || someone_leaving ? std::min(next_death_check, now + result_poll_interval) : next_death_check;
    (void)wait_at_doorbell(bell, seen, wake_by, latency_matters ? Spin::first : Spin::never);
  }
  if (!terminated_) {  // closed and finished, or broken: let the workers leave
    stop_workers();
  }
}

void PoolCore::stop_workers() {
  const TaskHeader stop{stop_task_id, 0, 0, 0};
  const auto parts = stop.record_parts({});
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    if (workers_[i].running) {
      SpscRecordRing inbox = inbox_of(channel_of(channels_, i));
      if (inbox.try_write(parts)) {  // a full inbox: the worker is killed below instead
        ring_doorbell(inbox.data_doorbell());
      }
    }
  }
  for (Worker& w : workers_) {
    if (w.running && !w.process.join(stop_grace)) {
      w.process.kill();
      w.process.join();
    }
    w.running = false;
  }
}

std::size_t PoolCore::inbox_depth(const Worker& worker) const {
  if (worker.task_micros <= 0) {
    return min_inbox_tasks;  // no pace known yet
  }
  const auto by_pace = static_cast<std::size_t>(inbox_work_micros / worker.task_micros);
  return std::clamp(by_pace, min_inbox_tasks, max_inbox_tasks);
}

bool PoolCore::assign_idle_workers() {
  // How many tasks each worker should be given now: the emptiest first, so that every worker gets
  // a task before any gets a second.
  std::vector<std::size_t> wants(workers_.size(), 0);
  std::size_t wanted = 0;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    const Worker& w = workers_[i];
    if (!w.running || !w.ready || w.retiring) {
      continue;
    }
    const std::size_t depth = inbox_depth(w);
    std::size_t room = depth - std::min(depth, w.assigned.size());
    if (maxtasksperchild_ > 0) {
      room = std::min(room, static_cast<std::size_t>(std::max(0, maxtasksperchild_ - w.given)));
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
  std::vector<bool> written(workers_.size(), false);
  std::deque<Task> left_over;  // inboxes full of big tasks: these wait for the next pass
  while (!batch.empty()) {
    // The worker with the fewest tasks that still wants one.
    std::size_t best = workers_.size();
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      if (wants[i] > 0 && (best == workers_.size() || workers_[i].assigned.size() < workers_[best].assigned.size())) {
        best = i;
      }
    }
    if (best == workers_.size()) {
      break;
    }
    Task task = std::move(batch.front());
    batch.pop_front();
    Worker& w = workers_[best];
    SpscRecordRing inbox = inbox_of(channel_of(channels_, best));
    // The arguments stay with the task, so it can run again on another worker if this one dies
    // before taking it.
    const TaskHeader header{task.id, reinterpret_cast<std::uint64_t>(task.call.invoker), task.call.function,
                            task.call.args.size()};
    const auto parts = header.record_parts(task.call.args);
    try {
      if (!inbox.try_write(parts)) {
        wants[best] = 0;
        left_over.push_back(std::move(task));
        continue;
      }
    } catch (const MessageTooLarge& e) {
      finish(task, TaskOutcome::failed(TaskOutcome::Kind::remote_error, e.what(), "multiproc::MessageTooLarge"));
      continue;
    }
    w.assigned.push_back(std::move(task));
    ++w.given;
    ++w.sent;
    --wants[best];
    written[best] = true;
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    if (written[i]) {
      WorkerChannel& channel = channel_of(channels_, i);
      // Ring me back half-way through what is queued now.
      shared_atomic(channel.refill_at)
          .store(workers_[i].sent - workers_[i].assigned.size() / 2, std::memory_order_relaxed);
      ring_doorbell(inbox_of(channel).data_doorbell());
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
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    if (!workers_[i].running) {
      continue;
    }
    SpscRecordRing outbox = outbox_of(channel_of(channels_, i));
    bool drained = false;
    while (outbox.try_read(result_record_)) {
      handle(i, ResultMessage::decode_bytes(result_record_));
      drained = true;
    }
    if (drained) {
      ring_doorbell(outbox.room_doorbell());  // a worker may wait for room
      handled = true;
    }
  }
  return handled;
}

void PoolCore::handle(std::size_t index, ResultMessage&& result) {
  Worker& w = workers_[index];
  switch (result.outcome) {
    case Outcome::ready:
      w.ready = true;
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
      w.retiring = true;  // leaving; replaced once it has ended
      return;
    case Outcome::value:
    case Outcome::error: {
      if (w.assigned.empty() || w.assigned.front().id != result.id) {
        return;  // a task already failed (its worker was judged dead): too late
      }
      Task task = std::move(w.assigned.front());
      w.assigned.pop_front();
      const double micros = static_cast<double>(result.run_nanos) / 1000.0;
      w.task_micros = w.task_micros <= 0 ? micros : (1 - pace_weight_of_latest) * w.task_micros + pace_weight_of_latest * micros;
      finish(task, result.outcome == Outcome::value
                       ? TaskOutcome{TaskOutcome::Kind::value, std::move(result.payload), {}, {}}
                       : TaskOutcome::failed(TaskOutcome::Kind::remote_error, std::move(result.error_message),
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
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    Worker& w = workers_[i];
    if (w.running && !w.process.is_alive()) {
      // Reaped: everything it sent before it exited is in its outbox now; read it before judging
      // what it left unfinished.
      handle_waiting_results();
      w.running = false;
      // Messages it never took go back to the queue, in order; the one it took last, if its result
      // did not come, is the one it died with.
      const std::uint64_t taken = shared_atomic(channel_of(channels_, i).taken).load(std::memory_order_acquire);
      std::uint64_t sequence = w.sent - w.assigned.size();
      std::deque<Task> requeue;
      for (Task& task : w.assigned) {
        if (++sequence > taken) {
          requeue.push_back(std::move(task));
        } else {
          finish(task, TaskOutcome::failed(TaskOutcome::Kind::worker_lost,
                               "multiproc::Pool: worker " + w.process.name() + " (pid " +
                                   std::to_string(w.process.pid()) + ") " + describe_exit(w.process.exitcode()) +
                                   " while running this task"));
        }
      }
      w.assigned.clear();
      std::scoped_lock lock(mutex_);
      pending_.insert(pending_.begin(), std::make_move_iterator(requeue.begin()), std::make_move_iterator(requeue.end()));
    }
    if (!w.running && keep_going()) {
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
    finish(task, TaskOutcome::failed(TaskOutcome::Kind::broken_pool, why));
  }
  for (Worker& w : workers_) {
    for (Task& task : w.assigned) {
      finish(task, TaskOutcome::failed(TaskOutcome::Kind::broken_pool, why));
    }
    w.assigned.clear();
  }
}

}  // namespace multiproc::detail

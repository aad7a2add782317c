#include <multiproc/detail/pool_core.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

#include <multiproc/error.hpp>

#include "demangle.hpp"

namespace multiproc::detail {

namespace {

using namespace std::chrono_literals;

// How often the manager looks for workers that died, when nothing else wakes it. A task held by
// a dead worker fails with WorkerLost within about this long.
constexpr auto death_check_interval = 50ms;
// Room for the serialised arguments of one task (a map chunk included), and for results in flight.
constexpr std::size_t inbox_bytes = std::size_t{8} << 20;
constexpr std::size_t results_bytes = std::size_t{16} << 20;
constexpr std::size_t results_capacity = 4096;

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
    : initializer_(std::move(initializer)),
      maxtasksperchild_(maxtasksperchild),
      results_(results_capacity, results_bytes) {
  const int count = processes > 0 ? processes : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  slots_.resize(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].inbox = std::make_unique<Queue<TaskMessage>>(tasks_per_worker + 1, inbox_bytes);
  }
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
  s.process = Process([this, slot] { run_worker(slot); }, "PoolWorker-" + std::to_string(slot + 1));
  s.process.start();
  s.running = true;
  s.ready = false;
  s.retiring = false;
  s.given = 0;
}

void PoolCore::run_worker(std::size_t slot) {
  const auto worker = static_cast<std::uint32_t>(slot);
  if (initializer_) {
    try {
      initializer_();
    } catch (const std::exception& e) {
      results_.put(ResultMessage{0, worker, Outcome::init_failed, {}, current_exception_type(), e.what()});
      ::_exit(1);
    } catch (...) {
      results_.put(ResultMessage{0, worker, Outcome::init_failed, {}, current_exception_type(), ""});
      ::_exit(1);
    }
  }
  results_.put(ResultMessage{0, worker, Outcome::ready, {}, {}, {}});
  Queue<TaskMessage>& inbox = *slots_[slot].inbox;
  for (int done = 0; maxtasksperchild_ <= 0 || done < maxtasksperchild_; ++done) {
    TaskMessage task = inbox.get();
    if (task.id == 0) {
      ::_exit(0);
    }
    ResultMessage result{task.id, worker, Outcome::value, {}, {}, {}};
    try {
      // The address came from the parent, whose code this forked worker shares (see task.hpp).
      // NOLINTNEXTLINE(performance-no-int-to-ptr)
      reinterpret_cast<Invoker>(task.invoker)(task.function, task.args, result.payload);
    } catch (const std::exception& e) {
      result = ResultMessage{task.id, worker, Outcome::error, {}, current_exception_type(), e.what()};
    } catch (...) {
      result = ResultMessage{task.id, worker, Outcome::error, {}, current_exception_type(), ""};
    }
    try {
      results_.put(result);
    } catch (const MessageTooLarge& e) {  // the result cannot travel: the task fails, the worker goes on
      results_.put(ResultMessage{task.id, worker, Outcome::error, {}, "multiproc::MessageTooLarge", e.what()});
    }
  }
  results_.put(ResultMessage{0, worker, Outcome::retiring, {}, {}, {}});
  ::_exit(0);
}

std::uint64_t PoolCore::submit(Call call, Done done) {
  std::uint64_t id = 0;
  {
    std::unique_lock lock(mutex_);
    if (closed_ || broken_ || terminated_) {
      const std::string why = broken_ ? broken_reason_ : terminated_ ? "the pool was terminated" : "the pool is closed";
      lock.unlock();
      done(failure(TaskOutcome::Kind::broken_pool, "multiproc::Pool: " + why));
      return 0;
    }
    id = next_id_++;
    pending_.push_back(Task{id, std::move(call), std::move(done)});
  }
  wake_manager();
  return id;
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

void PoolCore::wake_manager() {
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel) && !results_.try_put(ResultMessage{})) {
    wake_pending_.store(false, std::memory_order_release);  // full: plenty for the manager to read already
  }
}

void PoolCore::manage() {
  for (;;) {
    {
      std::scoped_lock lock(mutex_);
      const bool idle = std::all_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.assigned.empty(); });
      if (terminated_ || ((closed_ || broken_) && pending_.empty() && idle)) {
        break;
      }
    }
    assign_idle_workers();
    rebalance();
    try {
      handle(results_.get(death_check_interval));
    } catch (const Empty&) {
    }
    handle_waiting_results();
    replace_ended_workers();
  }
  if (!terminated_) {  // closed and finished, or broken: let the workers leave
    for (Slot& s : slots_) {
      if (s.running) {
        try {
          s.inbox->put_nowait(TaskMessage{});
        } catch (const Error&) {
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
}

void PoolCore::assign_idle_workers() {
  // Round by round, so that every worker gets one task before any gets a second.
  for (std::size_t round = 1; round <= tasks_per_worker; ++round) {
    for (Slot& s : slots_) {
      const bool has_budget = maxtasksperchild_ <= 0 || s.given < maxtasksperchild_;
      if (!s.running || !s.ready || s.retiring || !has_budget || s.assigned.size() >= round) {
        continue;
      }
      Task task;
      {
        std::scoped_lock lock(mutex_);
        if (pending_.empty() || broken_) {
          return;
        }
        task = std::move(pending_.front());
        pending_.pop_front();
      }
      // The arguments are copied, not moved: the task keeps them so it can run again on another
      // worker if this one dies before taking it.
      try {
        if (!s.inbox->try_put(TaskMessage{task.id, reinterpret_cast<std::uint64_t>(task.call.invoker),
                                          task.call.function, task.call.args})) {
          std::scoped_lock lock(mutex_);  // cannot happen: the inbox has room for every task assigned
          pending_.push_front(std::move(task));
          return;
        }
        s.assigned.push_back(std::move(task));
        ++s.given;
      } catch (const MessageTooLarge& e) {
        finish(task, failure(TaskOutcome::Kind::remote_error, e.what(), "multiproc::MessageTooLarge"));
      }
    }
  }
}

void PoolCore::rebalance() {
  // A worker with nothing to do takes over a task waiting in a busy worker's inbox. Taking it out
  // of that inbox is the test: either the busy worker already started it, or it never will.
  for (Slot& idle : slots_) {
    if (!idle.running || !idle.ready || idle.retiring || !idle.assigned.empty() ||
        (maxtasksperchild_ > 0 && idle.given >= maxtasksperchild_)) {
      continue;
    }
    for (Slot& busy : slots_) {
      if (&busy == &idle || busy.assigned.size() < 2) {
        continue;
      }
      std::optional<TaskMessage> waiting = busy.inbox->try_get();
      if (!waiting) {
        continue;
      }
      const auto found = std::find_if(busy.assigned.begin(), busy.assigned.end(),
                                      [&](const Task& t) { return t.id == waiting->id; });
      if (found == busy.assigned.end()) {
        continue;  // cannot happen: an inbox holds only tasks assigned to its worker
      }
      Task task = std::move(*found);
      busy.assigned.erase(found);
      --busy.given;  // it never ran there
      if (!idle.inbox->try_put(*waiting)) {  // cannot happen: an idle worker's inbox is empty
        std::scoped_lock lock(mutex_);
        pending_.push_front(std::move(task));
        return;
      }
      idle.assigned.push_back(std::move(task));
      ++idle.given;
      break;
    }
  }
}

void PoolCore::handle_waiting_results() {
  while (auto result = results_.try_get()) {
    handle(std::move(*result));
  }
}

void PoolCore::handle(ResultMessage&& result) {
  switch (result.outcome) {
    case Outcome::wake:
      wake_pending_.store(false, std::memory_order_release);
      return;
    case Outcome::ready:
      if (result.worker < slots_.size()) {
        slots_[result.worker].ready = true;
      }
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
      if (result.worker < slots_.size()) {
        slots_[result.worker].retiring = true;  // leaving; replaced once it has ended
      }
      return;
    case Outcome::value:
    case Outcome::error: {
      if (result.worker >= slots_.size()) {
        return;
      }
      Slot& s = slots_[result.worker];
      if (s.assigned.empty() || s.assigned.front().id != result.id) {
        return;  // a task already failed (its worker was judged dead): too late
      }
      Task task = std::move(s.assigned.front());
      s.assigned.pop_front();
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
      // Reaped: everything it sent before it exited is in the queue now; read it before judging
      // what it left unfinished.
      handle_waiting_results();
      s.running = false;
      // What is still in its inbox never started: back to the queue, in order. The one task it
      // took (if any) is the one it died with.
      std::vector<std::uint64_t> never_started;
      while (auto waiting = s.inbox->try_get()) {
        never_started.push_back(waiting->id);
      }
      std::deque<Task> requeue;
      for (Task& task : s.assigned) {
        if (std::find(never_started.begin(), never_started.end(), task.id) != never_started.end()) {
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

// The pool, on its user's threads: making it, submitting and cancelling calls, closing, joining
// and terminating. The manager thread (manager.cpp) does the rest.
#include <multiproc/detail/pool/pool_core.hpp>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include <unistd.h>

#include <multiproc/detail/os/liveness.hpp>
#include <multiproc/detail/pool/result_state.hpp>
#include <multiproc/error.hpp>

#include "os/demangle.hpp"
#include "pool/worker_channel.hpp"

namespace multiproc::detail {

TaskOutcome TaskOutcome::failed(Kind kind, std::string message, std::string type) {
  return TaskOutcome{kind, {}, std::move(type), std::move(message)};
}

TaskRunner::~TaskRunner() = default;

std::uint64_t TaskRunner::submit(Call call, Done done) {
  std::vector<std::pair<Call, Done>> one;
  one.emplace_back(std::move(call), std::move(done));
  return submit_all(std::move(one));
}

void TaskRunner::require_runnable(const Call& /*call*/) {}  // a runner that can run any code

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

void report_callback_failure(const void* who, const std::exception_ptr& failure) noexcept {
  try {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "multiproc: a callback of the pool result at %p raised %s: %s\n", who,
                   current_exception_type().c_str(), e.what());
    } catch (...) {
      std::fprintf(stderr, "multiproc: a callback of the pool result at %p raised %s\n", who,
                   current_exception_type().c_str());
    }
  } catch (...) {  // demangling ran out of memory: nothing more to tell
  }
}

PoolCore::PoolCore(int processes, std::function<void()> initializer, int maxtasksperchild)
    : initializer_(std::move(initializer)), maxtasksperchild_(maxtasksperchild), owner_pid_(::getpid()) {
  if (processes < 0 || maxtasksperchild < 0) {
    throw ValueError("multiproc::Pool: " + std::to_string(processes) + " processes, maxtasksperchild " +
                     std::to_string(maxtasksperchild) + " (neither may be negative)");
  }
  const int count = processes > 0 ? processes : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  workers_.resize(static_cast<std::size_t>(count));
  // Pages on touch: each worker's two 8 MiB rings are mostly never written, and reserving them all
  // up front would take 16 MiB of memory per worker.
  channels_ = Segment(Segment::Layout{ObjectKind::pool_channels, fingerprint_of<WorkerChannel>(), sizeof(ChannelBoard),
                                      alignof(ChannelBoard), workers_.size(), Segment::Layout::Pages::on_touch},
                      [](Segment&) {});  // a fresh anonymous mapping is all zeros: empty rings, quiet doorbells
  try {
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      start_worker(i);
    }
    manager_ = std::thread([this] { manage(); });
  } catch (...) {
    // A fork refused (the process limit) or no thread: the workers already started would wait for
    // tasks as long as this process lives, holding their share of the limit. None may stay.
    for (Worker& w : workers_) {
      if (w.running) {
        w.process.kill();
        w.process.join();
        w.running = false;
      }
    }
    throw;
  }
}

// A destructor may not throw. terminate() throws only when a system call it relies on fails
// (joining a thread, killing or reaping a worker); nothing better than going on is left then.
PoolCore::~PoolCore() {
  if (static_cast<pid_t>(current_pid()) != owner_pid_) {
    // A forked copy of the owner's pool: its manager thread and its workers are the owner's.
    manager_.detach();
    return;
  }
  try {
    terminate();
  } catch (...) {
  }
}

// current_pid(): cached, and refreshed in a forked child by a fork handler; a getpid() system call
// on every submission would cost more than the rest of an apply_async.
void PoolCore::require_owner(std::string_view caller) const {
  if (static_cast<pid_t>(current_pid()) != owner_pid_) {
    throw ValueError(std::string(caller) + ": this pool belongs to process " + std::to_string(owner_pid_) +
                     " (only the process that made a pool can use it; process " + std::to_string(::getpid()) +
                     " is a forked copy)");
  }
}

void PoolCore::require_accepting(std::string_view caller) {
  require_owner(caller);
  std::scoped_lock lock(mutex_);
  if (broken_) {
    throw BrokenPool(std::string(caller) + ": the pool is broken: " + broken_reason_);
  }
  if (terminated_ || closed_) {
    throw ValueError(std::string(caller) + (terminated_ ? ": the pool was terminated" : ": the pool is closed"));
  }
}

bool PoolCore::is_pending(std::uint64_t id) {
  std::scoped_lock lock(mutex_);
  return std::any_of(pending_.begin(), pending_.end(), [id](const Task& t) { return t.id == id; });
}

std::uint64_t PoolCore::submit_all(std::vector<std::pair<Call, Done>>&& calls) {
  require_owner("multiproc::Pool::submit");
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
      call.second(TaskOutcome::failed(TaskOutcome::Kind::broken_pool, "multiproc::Pool: " + refused));
    }
  } else if (must_ring) {
    wake_manager();
  }
  return first_id;
}

bool PoolCore::cancel(std::uint64_t id) {
  require_owner("multiproc::Future::cancel");
  std::optional<Task> task;
  {
    std::scoped_lock lock(mutex_);
    task = withdraw(pending_, id);
  }
  if (!task) {
    return false;
  }
  finish(*task, TaskOutcome::failed(TaskOutcome::Kind::cancelled, "multiproc: the task was cancelled before it started"));
  return true;
}

void PoolCore::cancel_all_pending() {
  require_owner("multiproc::ProcessPoolExecutor::shutdown");
  std::deque<Task> queued;
  {
    std::scoped_lock lock(mutex_);
    queued.swap(pending_);
  }
  for (Task& task : queued) {
    finish(task, TaskOutcome::failed(TaskOutcome::Kind::cancelled, "multiproc: the task was cancelled before it started"));
  }
}

void PoolCore::wake_manager() noexcept { ring_doorbell(board_of(channels_).manager); }

void PoolCore::close() {
  require_owner("multiproc::Pool::close");
  {
    std::scoped_lock lock(mutex_);
    closed_ = true;
  }
  wake_manager();
}

void PoolCore::join() {
  require_owner("multiproc::Pool::join");
  {
    std::scoped_lock lock(mutex_);
    if (!closed_ && !terminated_ && !broken_) {
      throw ValueError("multiproc::Pool::join: call close() or terminate() first (the pool is still running)");
    }
  }
  if (manager_.joinable()) {
    manager_.join();
  }
}

void PoolCore::terminate() {
  require_owner("multiproc::Pool::terminate");
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
  for (Worker& w : workers_) {
    if (w.running) {
      w.process.kill();
      w.process.join();
      w.running = false;
    }
  }
  fail_everything("multiproc::Pool: the pool was terminated");
}

}  // namespace multiproc::detail

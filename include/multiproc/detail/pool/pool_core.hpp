#pragma once
// Internal: the untyped engine under Pool and ProcessPoolExecutor. Forked workers, each with a
// channel of its own (an inbox of tasks and an outbox of results, two lock-free single-producer
// rings); a manager thread in the pool's process that keeps every inbox topped up, delivers
// outcomes, and replaces workers that die or retire.
// The code is split by the thread it runs on: lib/pool/client.cpp (the user's threads: submit,
// cancel, close, join, terminate), lib/pool/manager.cpp (the manager thread), lib/pool/worker.cpp
// (inside each worker process), all over the channels of lib/pool/worker_channel.hpp.
//
// Per-task cost is what the design is about (the goal: 20x less than Python's Pool.map with
// chunksize 1; README "Pool and ProcessPoolExecutor" has the figures). Nobody is woken per task: the manager fills an inbox with as many tasks as the
// worker's recent pace says take ~half a millisecond, and a worker rings the manager only when it
// crosses the half-way mark of that batch, runs dry, finished a slow task, or has news (ready,
// retiring); while tasks are out the manager also looks by itself every millisecond. So a busy pool
// costs one wake-up per few dozen tasks, and a lone task still gets its result at once.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <multiproc/detail/pool/task.hpp>
#include <multiproc/detail/pool/task_runner.hpp>
#include <multiproc/export.hpp>
#include <multiproc/process.hpp>
#include <multiproc/segment.hpp>

namespace multiproc::detail {

class MULTIPROC_API PoolCore final : public TaskRunner {
 public:
  // `processes` 0: one per CPU. `maxtasksperchild` 0: workers never retire. Negative: ValueError.
  // If a worker cannot be started (fork refused), those already started are killed and reaped
  // before the error is thrown. Every call below from any other process (a forked child holding a
  // copy of the pool) throws ValueError at once.
  PoolCore(int processes, std::function<void()> initializer, int maxtasksperchild);
  ~PoolCore() override;  // terminate()

  // As TaskRunner's. A call is refused (broken_pool) after close() or terminate(), or once the
  // pool is broken (an initializer failed). require_accepting throws ValueError when the pool is
  // closed or terminated (Python's "Pool not running"), BrokenPool when it is broken.
  std::uint64_t submit_all(std::vector<std::pair<Call, Done>>&& calls) override;
  void require_accepting(std::string_view caller) override;
  bool is_pending(std::uint64_t id) override;
  bool cancel(std::uint64_t id) override;
  void cancel_all_pending() override;
  void close() override;
  void join() override;
  void terminate() override;  // kills the workers
  [[nodiscard]] int processes() const noexcept override { return static_cast<int>(workers_.size()); }
  // Two chunks per worker: one running, one waiting in its inbox.
  [[nodiscard]] std::size_t stream_window() const noexcept override { return workers_.size() * 2; }

 private:
  struct Task {
    std::uint64_t id;
    Call call;
    Done done;
  };
  // One worker process, as the manager sees it (its index in workers_ is its channel's).
  struct Worker {
    Process process;
    // Handed to this worker and not yet finished, in inbox order: the front one is running (or
    // about to), the rest wait in the inbox.
    std::deque<Task> assigned;
    std::uint64_t sent = 0;   // messages written to this worker's inbox since it started
    double task_micros = 0;   // recent time per task (moving average), for the inbox depth
    bool running = false;
    bool ready = false;     // its initializer succeeded: it may be given tasks
    bool retiring = false;  // said it leaves (maxtasksperchild): gets no more tasks
    int given = 0;          // tasks handed to this worker process, for maxtasksperchild
  };

  void require_owner(std::string_view caller) const;
  void start_worker(std::size_t index);
  [[noreturn]] void run_worker(std::size_t index);  // in the worker process
  void manage();
  bool assign_idle_workers();
  bool handle_waiting_results();
  void handle(std::size_t index, ResultMessage&& result);
  void replace_ended_workers();
  void stop_workers();
  void fail_everything(const std::string& why);
  void wake_manager() noexcept;
  void finish(Task& task, TaskOutcome&& outcome);
  std::size_t inbox_depth(const Worker& worker) const;

  std::function<void()> initializer_;
  int maxtasksperchild_;
  // The process that made the pool: every worker's parent. A worker whose getppid() differs has
  // lost it (read before any fork, since a worker started just as the pool's process died would
  // already see its new parent).
  pid_t owner_pid_;
  Segment channels_;  // ChannelBoard prefix, one WorkerChannel per worker (lib/pool/worker_channel.hpp)
  std::vector<std::byte> result_record_;  // the manager's buffer for outbox records, reused
  std::vector<Worker> workers_;

  std::mutex mutex_;  // guards the fields below, between user threads and the manager
  std::deque<Task> pending_;
  std::uint64_t next_id_ = 1;
  bool closed_ = false;
  bool broken_ = false;
  bool terminated_ = false;
  std::string broken_reason_;

  std::thread manager_;
};

}  // namespace multiproc::detail

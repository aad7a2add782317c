#pragma once
// Internal: the untyped engine under Pool and ProcessPoolExecutor. Forked workers, each with an
// inbox of its own; one results queue; a manager thread in the pool's process that hands tasks to
// idle workers, delivers outcomes, and replaces workers that die or retire.
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <multiproc/detail/task.hpp>
#include <multiproc/export.hpp>
#include <multiproc/process.hpp>
#include <multiproc/queue.hpp>

namespace multiproc::detail {

// How a task ended, as the typed layer sees it.
struct TaskOutcome {
  enum class Kind { value, remote_error, worker_lost, broken_pool, cancelled } kind;
  std::vector<std::byte> payload;  // the encoded result, for `value`
  std::string error_type;          // for `remote_error`
  std::string message;             // for every failure
};

// The exception a failed outcome stands for.
MULTIPROC_API std::exception_ptr failure_of(const TaskOutcome& outcome);

class MULTIPROC_API PoolCore {
 public:
  // Called once per task, on the manager thread (or on the submitting thread when the pool is
  // already broken or closed).
  using Done = std::function<void(TaskOutcome&&)>;

  // `processes` 0: one per CPU. `maxtasksperchild` 0: workers never retire.
  PoolCore(int processes, std::function<void()> initializer, int maxtasksperchild);
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;
  ~PoolCore();  // terminate()

  // Queues a call; `done` receives its outcome. After close() or terminate(), or once the pool is
  // broken, `done` gets broken_pool at once. Returns the task's id (0 if refused).
  std::uint64_t submit(Call call, Done done);
  // Withdraws a task that no worker has been given yet; its `done` gets `cancelled`. False if
  // too late (running, finished, or unknown).
  bool cancel(std::uint64_t id);
  // Withdraws every task that no worker has been given yet.
  void cancel_all_pending();
  // No more submissions; workers leave once the queued tasks are finished.
  void close();
  // Waits until the manager and every worker have finished (after close or terminate).
  void join();
  // Kills the workers now; queued and running tasks fail with broken_pool.
  void terminate();
  [[nodiscard]] int processes() const noexcept { return static_cast<int>(slots_.size()); }

 private:
  struct Task {
    std::uint64_t id;
    Call call;
    Done done;
  };
  struct Slot {
    std::unique_ptr<Queue<TaskMessage>> inbox;
    Process process;
    // Handed to this worker and not yet finished, oldest first: the front one is running (or about
    // to), the next waits in the inbox so the worker never idles between tasks.
    std::deque<Task> assigned;
    bool running = false;
    bool ready = false;     // its initializer succeeded: it may be given tasks
    bool retiring = false;  // said it leaves (maxtasksperchild): gets no more tasks
    int given = 0;          // tasks handed to this worker process, for maxtasksperchild
  };
  static constexpr std::size_t tasks_per_worker = 2;

  void start_worker(std::size_t slot);
  [[noreturn]] void run_worker(std::size_t slot);  // in the worker process
  void manage();
  void assign_idle_workers();
  void rebalance();
  void handle(ResultMessage&& result);
  void handle_waiting_results();
  void replace_ended_workers();
  void fail_everything(const std::string& why);
  void wake_manager();
  void finish(Task& task, TaskOutcome&& outcome);

  std::function<void()> initializer_;
  int maxtasksperchild_;
  Queue<ResultMessage> results_;
  std::vector<Slot> slots_;

  std::mutex mutex_;  // guards the fields below, between user threads and the manager
  std::deque<Task> pending_;
  std::uint64_t next_id_ = 1;
  bool closed_ = false;
  bool broken_ = false;
  bool terminated_ = false;
  std::string broken_reason_;

  // True while a wake-up message is on its way to the manager, so submissions send at most one.
  // acq_rel/release: only the message's count depends on it; the tasks themselves are published
  // under mutex_, which the manager takes before it looks at them.
  std::atomic<bool> wake_pending_{false};
  std::thread manager_;
};

}  // namespace multiproc::detail

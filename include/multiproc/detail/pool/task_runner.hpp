#pragma once
// Internal: what the pools' typed front end (BasicPool and BasicExecutor) asks of the engine that
// runs their tasks: take encoded calls, report each one's outcome once, withdraw queued ones,
// close, join, terminate. Two engines implement it: detail::PoolCore (forked workers on this
// machine) and the cluster's client (MPI ranks, in libmultiproc-mpi). Everything typed (encoding
// arguments, decoding results, chunking maps, streams, futures) is written once, over this.
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <multiproc/detail/pool/task.hpp>
#include <multiproc/export.hpp>

namespace multiproc::detail {

// How a task ended, as the typed layer sees it.
struct TaskOutcome {
  enum class Kind { value, remote_error, worker_lost, broken_pool, cancelled } kind;
  std::vector<std::byte> payload;  // the encoded result, for `value`
  std::string error_type;          // for `remote_error`
  std::string message;             // for every failure

  MULTIPROC_API static TaskOutcome failed(Kind kind, std::string message, std::string type = {});
};

// The exception a failed outcome stands for.
MULTIPROC_API std::exception_ptr failure_of(const TaskOutcome& outcome);

class MULTIPROC_API TaskRunner {
 public:
  // Called once per task, on the runner's own thread (or on the submitting thread when the runner
  // refuses the call: closed, terminated, broken).
  using Done = std::function<void(TaskOutcome&&)>;

  TaskRunner() = default;
  TaskRunner(const TaskRunner&) = delete;
  TaskRunner& operator=(const TaskRunner&) = delete;
  virtual ~TaskRunner();

  // Queues calls, in order, under one lock (a map's chunks); each `done` receives its call's
  // outcome (broken_pool at once if the runner takes no more calls). Returns the first call's id
  // (the others follow it), or 0 if refused. What it throws, it throws having taken no call (and
  // run no `done`).
  virtual std::uint64_t submit_all(std::vector<std::pair<Call, Done>>&& calls) = 0;
  // The same for one call.
  std::uint64_t submit(Call call, Done done);
  // Throws at once if no call would be taken now; `caller` starts the message.
  virtual void require_accepting(std::string_view caller) = 0;
  // Throws if `call`'s code could never run (a cluster's ranks did not all load it). For a lazy
  // stream, which submits its first chunk only when it is read.
  virtual void require_runnable(const Call& call);
  // Whether the call is queued and not yet handed to a worker.
  virtual bool is_pending(std::uint64_t id) = 0;
  // Withdraws a call not yet handed to a worker (its `done` gets `cancelled`); false if too late.
  virtual bool cancel(std::uint64_t id) = 0;
  virtual void cancel_all_pending() = 0;
  // No more calls; the workers leave once the queued ones are done.
  virtual void close() = 0;
  // Waits until every worker has left (after close or terminate).
  virtual void join() = 0;
  // Stops now: queued and running calls fail with broken_pool.
  virtual void terminate() = 0;
  // Worker processes.
  [[nodiscard]] virtual int processes() const noexcept = 0;
  // How many chunks a lazy stream (imap) keeps submitted ahead of its reader.
  [[nodiscard]] virtual std::size_t stream_window() const noexcept = 0;
};

// Takes the task `id` (anything with an `id` member) out of a runner's queue; nothing if it is
// not there (handed to a worker already, finished, or unknown).
template <class Task>
std::optional<Task> withdraw(std::deque<Task>& queue, std::uint64_t id) {
  const auto found = std::find_if(queue.begin(), queue.end(), [id](const Task& t) { return t.id == id; });
  if (found == queue.end()) {
    return std::nullopt;
  }
  std::optional<Task> task(std::move(*found));
  queue.erase(found);
  return task;
}

}  // namespace multiproc::detail

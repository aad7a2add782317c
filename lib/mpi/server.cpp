// libmultiproc-mpi, on a serving rank: a local pool that runs the client's batches of tasks and
// sends back batches of results.
#include "mpi/cluster_parts.hpp"

#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <multiproc/error.hpp>
#include <multiproc/mpi_world.hpp>

#include "mpi/loaded_code.hpp"
#include "mpi/mailbox.hpp"

namespace multiproc::mpi::detail {

namespace {

using namespace std::chrono_literals;

// A serving rank: runs the client's tasks on a local pool until the client says stop.
class Server {
 public:
  Server(MPI_Comm comm, int local_workers, int maxtasksperchild)
      : where_("rank " + std::to_string(rank_in(comm)) + " (host " + host_name() + ")"),
        mailbox_(comm),
        pool_(local_workers, {}, maxtasksperchild) {
    mailbox_.send(client_rank, hello_tag,
                  Hello{static_cast<std::uint32_t>(local_workers), host_name(), code_.fingerprints()}.encode());
  }

  void serve() {
    const PreciseSleeps precise;
    Message message;
    auto last_busy = Clock::now();
    bool stopping = false;
    for (;;) {
      bool busy = false;
      while (!stopping && mailbox_.receive(client_rank, message)) {
        busy = true;
        if (message.tag == tasks_tag) {
          start_tasks(message.bytes);
        } else if (message.tag == stop_tag) {
          stopping = true;
          if (WireReader(message.bytes).take<std::uint32_t>() != 0) {
            pool_.terminate();  // its tasks fail with broken_pool, delivered to the batch
          } else {
            pool_.close();
          }
        } else {
          throw DecodeError("a message with unknown tag " + std::to_string(message.tag) + " from the client");
        }
      }
      busy = send_due_results(stopping) || busy;
      (void)mailbox_.sending();  // lets go of the sends that completed
      std::unique_lock lock(results_.mutex);
      if (stopping && results_.held == 0) {
        break;
      }
      const auto now = Clock::now();
      if (busy) {
        last_busy = now;
        continue;
      }
      // Eager only while it holds nothing: then the client's next task is what it waits for; while
      // tasks run, their results wake it (`ready`), and the client tops it up before it runs dry.
      Clock::duration pause = idle_pause(now - last_busy, results_.held == 0);
      if (results_.count > 0) {
        pause = std::min<Clock::duration>(pause, results_.oldest + result_delay - now);
      }
      pause_idle(lock, results_.ready, pause);
    }
    // The last word: nothing follows it, so the client may let the communicator go.
    mailbox_.send(client_rank, bye_tag, {});
    for (auto idle_since = Clock::now(); mailbox_.sending();) {
      nap(Clock::now() - idle_since);
    }
    pool_.join();
  }

 private:
  // Results the local pool's manager thread has finished, waiting to go to the client in one batch.
  struct Results {
    std::mutex mutex;
    std::condition_variable ready;  // notified when a batch is due
    std::vector<std::byte> batch;
    std::size_t count = 0;  // results in `batch`
    std::size_t held = 0;   // tasks received and not yet sent back (running, queued, or in `batch`)
    Clock::time_point oldest;

    [[nodiscard]] bool due(Clock::time_point now) const {
      return count > 0 && (2 * count >= held || now - oldest >= result_delay || batch.size() >= batch_bytes);
    }
  };

  void start_tasks(std::span<const std::byte> batch) {
    std::vector<std::pair<Call, Done>> calls;
    std::vector<std::pair<std::uint64_t, TaskOutcome>> refused;
    for_each_task(batch, [&](const TaskHeader& task, std::span<const std::byte> args) {
      const auto invoker = code_.address_of(task.invoker);
      const auto function = code_.address_of(task.function);
      if (!invoker || !function) {
        refused.emplace_back(task.id, TaskOutcome{TaskOutcome::Kind::remote_error, {}, "multiproc::mpi::UnsharedFunction",
                                                  "multiproc::mpi: " + where_ + " has no code where the task's function lies"});
        return;
      }
      // The address is this rank's own code: found in an executable segment of the object the
      // client named, by its build-id (see loaded_code.hpp).
      // NOLINTNEXTLINE(performance-no-int-to-ptr)
      calls.emplace_back(Call{reinterpret_cast<multiproc::detail::Invoker>(*invoker), *function, {args.begin(), args.end()}},
                         [this, id = task.id](TaskOutcome&& outcome) { deliver(id, std::move(outcome)); });
    });
    {
      std::scoped_lock lock(results_.mutex);
      results_.held += calls.size() + refused.size();
    }
    for (auto& [id, outcome] : refused) {
      deliver(id, std::move(outcome));
    }
    if (!calls.empty()) {
      pool_.submit_all(std::move(calls));
    }
  }

  // On the local pool's manager thread (or this one, for refusals and a terminated pool).
  void deliver(std::uint64_t id, TaskOutcome&& outcome) {
    if (outcome.kind == TaskOutcome::Kind::worker_lost || outcome.kind == TaskOutcome::Kind::broken_pool) {
      outcome.message = "multiproc::mpi: on " + where_ + ": " + outcome.message;
    }
    std::scoped_lock lock(results_.mutex);
    if (results_.count == 0) {
      results_.oldest = Clock::now();
    }
    append_result(results_.batch, id, outcome);
    ++results_.count;
    if (results_.due(Clock::now())) {
      results_.ready.notify_one();
    }
  }

  bool send_due_results(bool stopping) {
    std::vector<std::byte> batch;
    {
      std::scoped_lock lock(results_.mutex);
      if (!results_.due(Clock::now()) && !(stopping && results_.count > 0)) {
        return false;
      }
      batch.swap(results_.batch);
      results_.held -= results_.count;
      results_.count = 0;
    }
    mailbox_.send(client_rank, results_tag, std::move(batch));
    return true;
  }

  std::string where_;
  LoadedCode code_ = LoadedCode::of_this_process();
  Mailbox mailbox_;
  Results results_;  // declared before the pool: its manager thread delivers here until it is gone
  PoolCore pool_;
};

}  // namespace

void serve(MPI_Comm comm, int local_workers, int maxtasksperchild) {
  Server(comm, local_workers, maxtasksperchild).serve();
}

}  // namespace multiproc::mpi::detail

#pragma once
// Internal to libmultiproc-mpi: the client's side (rank 0): its queue of tasks, and the dispatcher
// thread that keeps every serving rank's queue topped up and delivers results. Split by the thread
// each part runs on: client.cpp (the user's threads), dispatcher.cpp (the dispatcher thread).
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


#include "mpi/cluster_parts.hpp"
#include "mpi/loaded_code.hpp"
#include "mpi/mailbox.hpp"

namespace multiproc::mpi::detail {

// The client's side: rank 0's queue of tasks and the dispatcher thread that serves it.
class Client final : public multiproc::detail::TaskRunner {
 public:
  Client(MPI_Comm comm, const std::vector<Hello>& hellos);
  // A destructor may not throw: terminate() throws only if the dispatcher cannot be joined.
  ~Client() override;
  [[nodiscard]] int processes() const noexcept override { return processes_; }
  // Enough chunks that a serving rank still has work while its next batch travels.
  [[nodiscard]] std::size_t stream_window() const noexcept override {
    return static_cast<std::size_t>(processes_) * tasks_in_flight_per_worker;
  }

  // As TaskRunner's (see detail/mpi/cluster_core.hpp for what differs from a local pool).
  std::uint64_t submit_all(std::vector<std::pair<Call, Done>>&& calls) override;
  void require_accepting(std::string_view caller) override;
  void require_runnable(const Call& call) override;
  bool is_pending(std::uint64_t id) override;
  bool cancel(std::uint64_t id) override;
  void cancel_all_pending() override;
  void close() override;
  void join() override;
  void terminate() override;

 private:
  struct Task {
    std::uint64_t id = 0;
    CodeName invoker{};
    CodeName function{};
    std::vector<std::byte> args;
    Done done;
  };
  struct Server {
    int rank = 0;
    std::string host;
    std::size_t workers = 1;
    std::unordered_set<std::uint64_t> objects;  // fingerprints of what it loaded
    std::unordered_map<std::uint64_t, Done> outstanding;  // sent, result not back yet
    double seconds_per_task = 0;  // per worker, by the pace of its results; 0: not known yet
    Clock::time_point last_heard;  // its last results, or when it was last given work while idle
    bool said_bye = false;
  };

  static TaskOutcome cancelled();

  // How the task's invoker and function are named on every rank; UnsharedFunction if some rank
  // did not load them.
  std::pair<CodeName, CodeName> names_of(const Call& call);
  // How `address` (code of this process) is named on every rank. Called with names_mutex_ held.
  CodeName name_of(std::uintptr_t address);

  // Tasks a rank should hold: its workers times as many as cover `work_ahead` at its pace.
  static std::size_t target_of(const Server& server);
  void dispatch();
  [[nodiscard]] bool nothing_outstanding() const { return outstanding() == 0; }
  [[nodiscard]] std::size_t outstanding() const;
  void take(const Message& message);

  // Sends queued tasks to the ranks that are down to half their target, a worker's worth to each
  // in turn so that every worker gets a task before any gets a second; one message per rank. The
  // least loaded rank comes first, and of equally loaded ones the one heard from last: a lone
  // call goes to the rank that is awake, not to one that has begun to sleep.
  bool top_up();
  void fail_unfinished(const std::string& why);

  MPI_Comm comm_;
  Mailbox mailbox_;             // the dispatcher's, once started
  std::vector<Server> servers_;  // by rank - 1; the dispatcher's, but for the immutable objects
  int processes_ = 0;
  std::mutex names_mutex_;
  std::unordered_map<std::uintptr_t, CodeName> names_;
  std::mutex mutex_;  // guards the fields below, between user threads and the dispatcher
  std::condition_variable wake_;
  std::deque<Task> pending_;
  std::uint64_t next_id_ = 1;
  bool closed_ = false;
  bool terminated_ = false;
  std::thread dispatcher_;
};


}  // namespace multiproc::mpi::detail

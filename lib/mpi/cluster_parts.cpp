// Internal to libmultiproc-mpi: the helpers of cluster_parts.hpp.
#include "mpi/cluster_parts.hpp"

#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace multiproc::mpi::detail {

TaskOutcome broken_pool(std::string message) {
  return TaskOutcome{TaskOutcome::Kind::broken_pool, {}, {}, std::move(message)};
}

// Runs one outcome's callback (the typed layer's); a callback that throws is reported, not fatal.
void finish(Done& done, TaskOutcome&& outcome) {
  try {
    done(std::move(outcome));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "multiproc::mpi::Pool: a result callback raised: %s\n", e.what());
  }
}

// A rank that cannot go on takes the job down with a message, rather than leave the others
// waiting for messages that will never come.
[[noreturn]] void abort_job(const std::string& why) {
  std::fprintf(stderr, "multiproc::mpi: %s; ending the MPI job\n", why.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();  // MPI_Abort does not return
}

std::string host_name() {
  char name[MPI_MAX_PROCESSOR_NAME];
  int length = 0;
  MPI_Get_processor_name(name, &length);
  return {name, static_cast<std::size_t>(std::clamp(length, 0, MPI_MAX_PROCESSOR_NAME))};
}

int rank_in(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}

// A serving rank's default share of its machine: the CPUs it may run on (its affinity, which the
// launcher may have narrowed), divided among the serving ranks on that machine. Collective.
int default_local_workers(MPI_Comm comm, bool serving) {
  MPI_Comm machine = MPI_COMM_NULL;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &machine);
  const int mine = serving ? 1 : 0;
  int serving_here = 0;
  MPI_Allreduce(&mine, &serving_here, 1, MPI_INT, MPI_SUM, machine);
  MPI_Comm_free(&machine);
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  const int usable = ::sched_getaffinity(0, sizeof cpus, &cpus) == 0
                         ? CPU_COUNT(&cpus)
                         : static_cast<int>(std::thread::hardware_concurrency());
  return std::max(1, usable / std::max(1, serving_here));
}

// Sleeps for `pause` (or, if it is not positive, yields), or until `wake` is notified. Called with
// `lock` held.
void pause_idle(std::unique_lock<std::mutex>& lock, std::condition_variable& wake, Clock::duration pause) {
  if (pause <= Clock::duration::zero()) {
    lock.unlock();
    std::this_thread::yield();
    lock.lock();
  } else {
    (void)wake.wait_for(lock, pause);
  }
}

// The same with nothing to wake for, eager (see idle_pause).
void nap(Clock::duration idle_for) {
  const Clock::duration pause = idle_pause(idle_for, true);
  if (pause <= Clock::duration::zero()) {
    std::this_thread::yield();
  } else {
    std::this_thread::sleep_for(pause);
  }
}

}  // namespace multiproc::mpi::detail

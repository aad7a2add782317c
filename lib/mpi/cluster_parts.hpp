#pragma once
// Internal to libmultiproc-mpi: what the client (rank 0, client.cpp) and the serving ranks
// (server.cpp) share: the wire's tuning, and small helpers over MPI.
#include <mpi.h>

#include <chrono>
#include <climits>
#include <condition_variable>
#include <mutex>
#include <string>

#include <multiproc/detail/mpi/cluster_core.hpp>

#include "mpi/mailbox.hpp"
#include "mpi/wire.hpp"

namespace multiproc::mpi::detail {

using multiproc::detail::Call;
using multiproc::detail::PoolCore;
using Done = multiproc::detail::TaskRunner::Done;

constexpr int client_rank = 0;
// How many chunks per worker imap keeps submitted: enough that a serving rank still has work while
// its next batch of tiny tasks is on the way.
constexpr std::size_t tasks_in_flight_per_worker = 64;

// How much work the client keeps queued at each serving rank, per local worker, judged by the pace
// the rank's results come back at: many batch round trips' worth (a round trip between two ranks
// on one machine takes tens of microseconds), and little enough that the last tasks of a map do
// not wait long behind a slow rank.
constexpr std::chrono::duration<double> work_ahead = std::chrono::milliseconds(2);
constexpr std::size_t first_depth = 2;    // tasks per worker while the pace is unknown
constexpr std::size_t max_depth = 1024;   // tasks per worker, however tiny
// A batch of tasks, or of results, stops growing past this many bytes (it always holds one).
constexpr std::size_t batch_bytes = std::size_t{4} << 20;
// The most a task's arguments may take: one MPI message carries at most INT_MAX bytes.
constexpr std::size_t max_task_bytes = static_cast<std::size_t>(INT_MAX) - sizeof(TaskHeader);
// A serving rank sends its finished results once they are half of what it holds, or once the
// oldest has waited this long: few messages for many tiny tasks, little delay for slow ones.
constexpr auto result_delay = std::chrono::microseconds(200);

TaskOutcome broken_pool(std::string message);
// Runs one outcome's callback (the typed layer's); a callback that throws is reported, not fatal.
void finish(Done& done, TaskOutcome&& outcome);
// A rank that cannot go on takes the job down with a message, rather than leave the others
// waiting for messages that will never come.
[[noreturn]] void abort_job(const std::string& why);
std::string host_name();
int rank_in(MPI_Comm comm);
// A serving rank's default share of its machine: the CPUs it may run on (its affinity, which the
// launcher may have narrowed), divided among the serving ranks on that machine. Collective.
int default_local_workers(MPI_Comm comm, bool serving);
// Sleeps for `pause` (or, if it is not positive, yields), or until `wake` is notified. Called with
// `lock` held.
void pause_idle(std::unique_lock<std::mutex>& lock, std::condition_variable& wake, Clock::duration pause);
// The same with nothing to wake for, eager (see idle_pause).
void nap(Clock::duration idle_for);

// A serving rank: runs the client's tasks on a local pool until the client says stop (collective
// with the client's start; returns when the pool is closed).
void serve(MPI_Comm comm, int local_workers, int maxtasksperchild);

}  // namespace multiproc::mpi::detail

#pragma once
// Internal: the untyped engine under multiproc::mpi::Pool and Executor, the cluster's twin of
// detail::PoolCore (same calls, same outcomes), so that the typed layer in <multiproc/mpi.hpp> is
// built like the local one.
//
// Rank 0 is the client. Its dispatcher thread is the only one that talks MPI while the pool is
// open: it names each task's functions portably (see lib/mpi/loaded_code.hpp), packs the tasks of
// a rank into one message per batch, keeps every serving rank about two milliseconds of work ahead
// (by the pace its results come back at), and delivers outcomes. Every other rank serves inside
// the constructor: it forks a local multiproc::Pool over its share of the machine's CPUs, feeds it
// the tasks it receives, and sends results back in batches, until the client says stop.
//
// No MPI type appears here, so programs that use the cluster pools need MPI only to link.
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include <multiproc/detail/pool/pool_core.hpp>
#include <multiproc/detail/pool/task.hpp>
#include <multiproc/export.hpp>

namespace multiproc::mpi {

class World;

namespace detail {

class MULTIPROC_API ClusterCore {
 public:
  using Done = multiproc::detail::PoolCore::Done;
  // How many chunks per worker imap keeps submitted: enough that a serving rank still has work
  // while its next batch of tiny tasks is on the way.
  static constexpr int tasks_in_flight_per_worker = 64;

  // Collective over every rank of `world`. On rank 0, returns once every serving rank has said
  // hello. On the others, serves until the client closes or terminates the pool, then returns.
  // `local_workers` 0: this rank's share of the CPUs it may run on.
  ClusterCore(const World& world, int local_workers, int maxtasksperchild);
  ClusterCore(const ClusterCore&) = delete;
  ClusterCore& operator=(const ClusterCore&) = delete;
  ~ClusterCore();  // the client terminates the pool if it is still open

  [[nodiscard]] bool is_client() const noexcept { return client_ != nullptr; }
  // Worker processes over all serving ranks (0 on a serving rank).
  [[nodiscard]] int processes() const noexcept;

  // As PoolCore's, on the client only (ValueError on a serving rank). submit and submit_all
  // throw UnsharedFunction, and queue nothing, if a function lies in an object that some serving
  // rank has not loaded.
  std::uint64_t submit(multiproc::detail::Call call, Done done);
  // Throws UnsharedFunction if `call` names code that some serving rank has not loaded.
  void require_shared(const multiproc::detail::Call& call);
  std::uint64_t submit_all(std::vector<std::pair<multiproc::detail::Call, Done>>&& calls);
  bool cancel(std::uint64_t id);
  void cancel_all_pending();
  void close();
  void join();
  void terminate();

 private:
  class Client;
  Client& client() const;
  std::unique_ptr<Client> client_;
};

}  // namespace detail
}  // namespace multiproc::mpi

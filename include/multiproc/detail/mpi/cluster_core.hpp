#pragma once
// Internal: the engine under multiproc::mpi::Pool and Executor, the cluster's TaskRunner (the
// local pools run on detail::PoolCore, another TaskRunner), so that both are the same typed front
// end, BasicPool and BasicExecutor.
//
// Rank 0 is the client. Its dispatcher thread is the only one that talks MPI while the pool is
// open: it names each task's functions portably (see lib/mpi/loaded_code.hpp), packs the tasks of
// a rank into one message per batch, keeps every serving rank about two milliseconds of work ahead
// (by the pace its results come back at), and delivers outcomes. Every other rank serves inside
// start_cluster_pool: it forks a local multiproc::Pool over its share of the machine's CPUs, feeds
// it the tasks it receives, and sends results back in batches, until the client says stop.
//
// The client's runner takes calls on a closed or terminated pool and fails them with BrokenPool
// (its require_accepting never throws); submit and submit_all throw UnsharedFunction, and queue
// nothing, if a function lies in an object that some serving rank has not loaded.
//
// No MPI type appears here, so programs that use the cluster pools need MPI only to link.
#include <memory>

#include <multiproc/detail/pool/task_runner.hpp>
#include <multiproc/export.hpp>

namespace multiproc::mpi {

class World;

namespace detail {

// Collective over every rank of `world`. On rank 0, returns the client's runner once every serving
// rank has said hello. On the others, serves until the client closes or terminates the pool, then
// returns nullptr. `local_workers` 0: this rank's share of the CPUs it may run on. Negative counts:
// ValueError.
MULTIPROC_API std::shared_ptr<multiproc::detail::TaskRunner> start_cluster_pool(const World& world, int local_workers,
                                                                                 int maxtasksperchild);

}  // namespace detail
}  // namespace multiproc::mpi

#pragma once
// Cluster pools: the same Pool and Executor across many machines, on MPI (libmultiproc-mpi,
// pkg-config multiproc-mpi). Python's mpi4py.futures.MPIPoolExecutor, with multiproc's calls.
//
//   int square(int x) { return x * x; }
//   int main(int argc, char** argv) {
//     multiproc::mpi::World world{argc, argv};   // MPI_Init ... MPI_Finalize
//     multiproc::mpi::Pool pool{world};          // rank 0 is the client; every other rank serves
//     if (!pool.is_client()) return 0;           // ...inside the constructor, until the client closes
//     std::vector<int> squares = pool.map(square, inputs);
//   }
//   $ mpirun -n 4 ./program                      # or srun, or mpirun --hostfile hosts
//
// Every rank runs the same program, so the pools are made in the same order on every rank (each
// constructor is collective). The calls are the local pools' (mpi::Pool is a BasicPool, mpi::Executor
// a BasicExecutor), and so are the results: AsyncResult, ResultStream, and the same Future
// (as_completed and wait work on it). Streams and futures outlive their pool safely, as locally:
// a stream read after its pool was destroyed fails with BrokenPool, and Executor::map submits every
// call before it returns. One difference: a call on a closed or terminated cluster pool fails with
// BrokenPool (at get()), where a local pool throws ValueError at once.
//
// Hybrid: a serving rank forks a local multiproc::Pool over its share of its machine's CPUs (all of
// them with one rank per machine), and takes tasks in batches, one MPI message per batch, so N
// machines of C cores run N x C tasks at once. A task that crashes kills only a local worker: it
// fails with WorkerLost, and the pool goes on.
//
// Tasks are function pointers or capture-less lambdas, as locally. A rank names a function by its
// offset within the program or library it lies in, and that object by its ELF build-id, so ranks
// find the same function wherever it was loaded; a function in an object that some serving rank did
// not load (another program, another build) is refused with UnsharedFunction. Arguments and results
// go through the codec. An exception in a task comes back as RemoteError.
//
// A rank that dies: no MPI in Debian 12 lets the others carry on. Open MPI 4.1 has no ULFM; MPICH
// 4.0.2 (ch4:ucx) asserts in MPI_Waitany when asked to tolerate faults (MPIR_CVAR_ENABLE_FT), and
// with `mpiexec -disable-auto-cleanup` its process manager itself fails ("assert (!closed)") and
// rank 0 never learns of the loss (both tried, killing a rank mid-task). So the job must end, and
// the library is built on Open MPI, whose mpirun ends it about a second after the loss with a
// message naming the rank ("mpirun noticed that process rank 2 ... exited on signal 9"), where
// MPICH's names only a pid; Debian's mpi4py is built on Open MPI too, so the benchmark runs both
// under one launcher. Nothing waits for ever: a rank that fails on its own (a corrupt message,
// fork failing) calls MPI_Abort with a message naming itself.
#include <multiproc/detail/mpi/cluster_core.hpp>
#include <multiproc/executor.hpp>
#include <multiproc/mpi_world.hpp>
#include <multiproc/pool.hpp>

namespace multiproc::mpi {

struct PoolOptions {
  // Worker processes in each serving rank's local pool. 0: the rank's share of the CPUs it may
  // run on (its CPU affinity, divided among the serving ranks on its machine), at least 1.
  int local_workers = 0;
  // > 0: a local worker leaves after that many tasks (chunks) and a fresh one takes its place.
  int maxtasksperchild = 0;
};

// The calls of multiproc::Pool (BasicPool's) on a cluster. imap keeps enough chunks in flight to
// keep every serving rank busy. Destroying the pool on rank 0 terminates it, as locally.
class Pool : public multiproc::BasicPool {
 public:
  // Collective: every rank of `world` makes it. On rank 0 it returns ready for tasks; on the others
  // it serves tasks until the client closes or terminates the pool, then returns.
  explicit Pool(World& world, PoolOptions options = {})
      : BasicPool(detail::start_cluster_pool(world, options.local_workers, options.maxtasksperchild)) {}

  [[nodiscard]] bool is_client() const noexcept { return takes_calls(); }
};

// Python's concurrent.futures interface on a cluster pool (mpi4py.futures.MPIPoolExecutor): the
// calls of ProcessPoolExecutor (BasicExecutor's). On rank 0, destroying it is shutdown(wait = true).
class Executor : public multiproc::BasicExecutor {
 public:
  // Collective, as Pool's: serving ranks serve inside it until the client shuts it down.
  explicit Executor(World& world, PoolOptions options = {})
      : BasicExecutor(detail::start_cluster_pool(world, options.local_workers, options.maxtasksperchild)) {}

  [[nodiscard]] bool is_client() const noexcept { return takes_calls(); }
};

}  // namespace multiproc::mpi

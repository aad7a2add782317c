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
// constructor is collective). The results are the local pool's types: AsyncResult, ResultStream,
// and the same Future (as_completed and wait work on it).
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
#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <multiproc/codec.hpp>
#include <multiproc/detail/mpi/cluster_core.hpp>
#include <multiproc/detail/pool/result_handles.hpp>
#include <multiproc/detail/pool/task.hpp>
#include <multiproc/error.hpp>
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

class Executor;

class Pool {
 public:
  // Collective: every rank of `world` makes it. On rank 0 it returns ready for tasks; on the others
  // it serves tasks until the client closes or terminates the pool, then returns.
  explicit Pool(World& world, PoolOptions options = {})
      : core_(std::make_unique<detail::ClusterCore>(world, options.local_workers, options.maxtasksperchild)) {}

  [[nodiscard]] bool is_client() const noexcept { return core_->is_client(); }
  // Worker processes over all serving ranks.
  [[nodiscard]] int processes() const noexcept { return core_->processes(); }

  template <multiproc::detail::task_function F, class... Args>
    requires std::invocable<multiproc::detail::function_pointer_t<F>, std::decay_t<Args>...>
  auto apply_async(F f, Args&&... args) {
    using R = std::invoke_result_t<multiproc::detail::function_pointer_t<F>, std::decay_t<Args>...>;
    return multiproc::detail::ResultHandles::async_result(
        start<R>(multiproc::detail::make_call(f, std::forward<Args>(args)...)).first);
  }
  template <multiproc::detail::task_function F, class... Args>
    requires std::invocable<multiproc::detail::function_pointer_t<F>, std::decay_t<Args>...>
  auto apply(F f, Args&&... args) {
    return apply_async(f, std::forward<Args>(args)...).get();
  }

  // f applied to every input, in input order. chunksize 0: about len / (4 x processes), as Python.
  template <multiproc::detail::task_function F, std::ranges::input_range Inputs>
  auto map(F f, Inputs&& inputs, std::size_t chunksize = 0) {
    return map_async(f, std::forward<Inputs>(inputs), chunksize).get();
  }
  template <multiproc::detail::task_function F, std::ranges::input_range Inputs>
  auto map_async(F f, Inputs&& inputs, std::size_t chunksize = 0) {
    return map_chunks<false>(f, std::forward<Inputs>(inputs), chunksize);
  }
  // g applied to the elements of each tuple.
  template <multiproc::detail::task_function G, std::ranges::input_range Inputs>
  auto starmap(G g, Inputs&& inputs, std::size_t chunksize = 0) {
    return starmap_async(g, std::forward<Inputs>(inputs), chunksize).get();
  }
  template <multiproc::detail::task_function G, std::ranges::input_range Inputs>
  auto starmap_async(G g, Inputs&& inputs, std::size_t chunksize = 0) {
    return map_chunks<true>(g, std::forward<Inputs>(inputs), chunksize);
  }

  // Results in input order, each as soon as it and all before it are done; the inputs (taken by
  // value) are read lazily, enough chunks ahead to keep every serving rank busy.
  template <multiproc::detail::task_function F, std::ranges::input_range Inputs>
  auto imap(F f, Inputs inputs, std::size_t chunksize = 1) {
    return stream(f, std::move(inputs), chunksize, true);
  }
  // Results in the order they finish.
  template <multiproc::detail::task_function F, std::ranges::input_range Inputs>
  auto imap_unordered(F f, Inputs inputs, std::size_t chunksize = 1) {
    return stream(f, std::move(inputs), chunksize, false);
  }

  // No more tasks; the serving ranks leave once the queued ones are done.
  void close() { core_->close(); }
  // Waits until every serving rank has left (after close() or terminate()).
  void join() { core_->join(); }
  // Stops now: unfinished tasks fail with BrokenPool; serving ranks kill their local workers.
  // Destroying the pool on rank 0 does this, as destroying a local Pool does.
  void terminate() { core_->terminate(); }

 private:
  friend class Executor;
  using Call = multiproc::detail::Call;
  using TaskOutcome = multiproc::detail::TaskOutcome;
  template <class R>
  using State = multiproc::detail::ResultState<R>;

  // Submits a call whose result is an encoded R; returns its state and task id.
  template <class R>
  std::pair<std::shared_ptr<State<R>>, std::uint64_t> start(Call&& call) {
    auto state = std::make_shared<State<R>>();
    const std::uint64_t id = core_->submit(std::move(call), [state](TaskOutcome&& outcome) {
      std::exception_ptr failure = multiproc::detail::failure_of(outcome);
      multiproc::detail::Stored<R> value{};
      if (!failure) {
        try {
          if constexpr (!std::is_void_v<R>) {
            value = decode<R>(outcome.payload);
          }
        } catch (...) {
          failure = std::current_exception();
        }
      }
      state->complete(std::move(value), failure);
    });
    return {std::move(state), id};
  }

  // The outcomes of one map's chunks, decoded into one vector (in input order) when the last one
  // arrives; the first failure in input order fails the map.
  template <class R>
  struct MapChunks {
    std::mutex mutex;
    std::vector<TaskOutcome> outcomes;
    std::size_t left = 0;
    std::shared_ptr<State<std::vector<R>>> state;

    void chunk_done(std::size_t chunk, TaskOutcome&& outcome) {
      {
        std::scoped_lock lock(mutex);
        outcomes[chunk] = std::move(outcome);
        if (--left != 0) {
          return;
        }
      }
      std::vector<R> values;
      std::exception_ptr failure;
      try {
        for (const TaskOutcome& chunk_outcome : outcomes) {
          failure = multiproc::detail::failure_of(chunk_outcome);
          if (failure) {
            break;
          }
          for (R& value : decode<std::vector<R>>(chunk_outcome.payload)) {
            values.push_back(std::move(value));
          }
        }
      } catch (...) {
        failure = std::current_exception();
      }
      state->complete(failure ? std::vector<R>{} : std::move(values), failure);
    }
  };

  template <bool Unpack, class F, class Inputs>
  auto map_chunks(F f, Inputs&& inputs, std::size_t chunksize) {
    using Input = std::ranges::range_value_t<Inputs>;
    using R = multiproc::detail::chunk_result_t<F, Input, Unpack>;
    std::vector<Input> all;  // filled by a loop: C++20 ranges (iota of long long) lack C++17 iterators
    if constexpr (std::ranges::sized_range<Inputs>) {
      all.reserve(static_cast<std::size_t>(std::ranges::size(inputs)));
    }
    for (auto&& input : inputs) {
      all.push_back(std::forward<decltype(input)>(input));
    }
    const std::size_t size = chunksize > 0 ? chunksize : default_chunksize(all.size());
    const std::size_t count = (all.size() + size - 1) / size;
    auto gather = std::make_shared<MapChunks<R>>();
    gather->outcomes.resize(count);
    gather->left = count;
    gather->state = std::make_shared<State<std::vector<R>>>();
    if (count == 0) {
      gather->state->complete({}, nullptr);
      return multiproc::detail::ResultHandles::async_result(gather->state);
    }
    std::vector<std::pair<Call, detail::ClusterCore::Done>> calls;
    calls.reserve(count);
    std::vector<Input> chunk;
    for (std::size_t c = 0; c < count; ++c) {
      const auto first = all.begin() + static_cast<std::ptrdiff_t>(c * size);
      chunk.assign(std::make_move_iterator(first),
                   std::make_move_iterator(first + static_cast<std::ptrdiff_t>(std::min(size, all.size() - c * size))));
      calls.emplace_back(multiproc::detail::make_chunk_call<F, Input, Unpack>(f, chunk),
                         [gather, c](TaskOutcome&& outcome) { gather->chunk_done(c, std::move(outcome)); });
    }
    core_->submit_all(std::move(calls));
    return multiproc::detail::ResultHandles::async_result(gather->state);
  }

  template <class F, class Inputs>
  auto stream(F f, Inputs inputs, std::size_t chunksize, bool ordered) {
    using Input = std::ranges::range_value_t<Inputs>;
    using R = multiproc::detail::chunk_result_t<F, Input, false>;
    core_->require_shared(multiproc::detail::make_chunk_call<F, Input, false>(f, {}));  // refuse now, not at begin()
    struct Source {
      Inputs inputs;
      std::ranges::iterator_t<Inputs> next;
      explicit Source(Inputs&& in) : inputs(std::move(in)), next(std::ranges::begin(inputs)) {}
    };
    auto source = std::make_shared<Source>(std::move(inputs));
    const std::size_t size = std::max<std::size_t>(chunksize, 1);
    auto next_chunk = [source, f, size]() -> std::optional<Call> {
      std::vector<Input> chunk;
      while (chunk.size() < size && source->next != std::ranges::end(source->inputs)) {
        chunk.push_back(*source->next);
        ++source->next;
      }
      if (chunk.empty()) {
        return std::nullopt;
      }
      return multiproc::detail::make_chunk_call<F, Input, false>(f, chunk);
    };
    auto submit = [core = core_.get()](Call&& call, detail::ClusterCore::Done&& done) {
      core->submit(std::move(call), std::move(done));
    };
    return multiproc::detail::ResultHandles::stream<R>(submit, std::move(next_chunk), ordered, stream_window());
  }

  // Python's default chunksize for map: ceil(len / (4 x workers)).
  [[nodiscard]] std::size_t default_chunksize(std::size_t length) const {
    const std::size_t per = static_cast<std::size_t>(std::max(1, processes())) * 4;
    return std::max<std::size_t>(1, (length + per - 1) / per);
  }
  // Chunks imap keeps in flight: enough for a serving rank to have work while its next batch
  // travels (the dispatcher sends a rank up to this many at once when its tasks are tiny).
  [[nodiscard]] std::size_t stream_window() const {
    return static_cast<std::size_t>(std::max(1, processes()) * detail::ClusterCore::tasks_in_flight_per_worker);
  }

  std::unique_ptr<detail::ClusterCore> core_;
};

// Python's concurrent.futures interface on a cluster pool (mpi4py.futures.MPIPoolExecutor).
class Executor {
 public:
  // Collective, as Pool's: serving ranks serve inside it until the client shuts it down.
  explicit Executor(World& world, PoolOptions options = {}) : pool_(world, options) {}
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;
  // On rank 0: shutdown(wait = true), as leaving Python's `with` block. (A destructor may not
  // throw; shutdown throws only if a thread cannot be joined, and then the pool's own destructor
  // still terminates it.)
  ~Executor() {
    if (is_client()) {
      try {
        shutdown(true);
      } catch (...) {
      }
    }
  }

  [[nodiscard]] bool is_client() const noexcept { return pool_.is_client(); }

  template <multiproc::detail::task_function F, class... Args>
    requires std::invocable<multiproc::detail::function_pointer_t<F>, std::decay_t<Args>...>
  auto submit(F f, Args&&... args) {
    using R = std::invoke_result_t<multiproc::detail::function_pointer_t<F>, std::decay_t<Args>...>;
    auto started = pool_.template start<R>(multiproc::detail::make_call(f, std::forward<Args>(args)...));
    return multiproc::detail::ResultHandles::future<R>(
        std::move(started.first), [core = pool_.core_.get(), id = started.second] { return id != 0 && core->cancel(id); });
  }
  // Results in input order (Python's Executor.map), read lazily.
  template <multiproc::detail::task_function F, std::ranges::input_range Inputs>
  auto map(F f, Inputs inputs, std::size_t chunksize = 1) {
    return pool_.imap(f, std::move(inputs), chunksize);
  }
  // No more submissions. wait: block until running and queued calls are done. cancel_futures:
  // calls not yet sent to a serving rank are cancelled.
  void shutdown(bool wait = true, bool cancel_futures = false) {
    if (cancel_futures) {
      pool_.core_->cancel_all_pending();
    }
    pool_.close();
    if (wait) {
      pool_.join();
    }
  }

 private:
  Pool pool_;
};

}  // namespace multiproc::mpi

#pragma once
// Pool: a pool of worker processes, as Python's multiprocessing.Pool.
//
//   int square(int x) { return x * x; }
//   multiproc::Pool pool{4};
//   std::vector<int> squares = pool.map(square, std::vector<int>{1, 2, 3});
//   for (int s : pool.imap_unordered(square, std::views::iota(0, 1000000))) use(s);  // streams lazily
//   multiproc::AsyncResult<int> r = pool.apply_async(square, 7);  r.get();         // 49
//
// Tasks are function pointers or capture-less lambdas: workers are forked from this process, so
// the function's address is valid there; arguments and results go through the codec. (The
// initializer may capture: it runs in each new worker.) What goes wrong is reported, never waited
// out:
//   * an exception in a task: get() throws RemoteError with its type and message;
//   * a worker that dies (kill, abort, segfault): its task fails with WorkerLost within a tenth of
//     a second, and a new worker takes its place;
//   * an initializer that throws: the pool is broken; pending and later calls fail with BrokenPool.
// Destroying the pool terminates it (as leaving Python's `with Pool()` does): running and queued
// tasks fail with BrokenPool. One task's arguments, and one result, may take up to 8 MiB encoded.
// A pool belongs to the process that made it: a forked child that calls it gets ValueError.
//
// The calls are BasicPool's, which multiproc::mpi::Pool (<multiproc/mpi.hpp>) offers too: code
// written against BasicPool& runs on either.
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/pool/chunk_reader.hpp>
#include <multiproc/detail/pool/pool_calls.hpp>
#include <multiproc/detail/pool/pool_core.hpp>
#include <multiproc/detail/pool/result_state.hpp>
#include <multiproc/detail/pool/result_stream.hpp>
#include <multiproc/detail/pool/task.hpp>
#include <multiproc/detail/pool/task_runner.hpp>
#include <multiproc/error.hpp>

namespace multiproc {

class BasicPool;
class BasicExecutor;

// The result of an asynchronous pool call, as Python's AsyncResult. Copies share one result.
template <class R>
class AsyncResult {
 public:
  // Waits for the result; rethrows the task's failure (RemoteError, WorkerLost, BrokenPool).
  R get() {
    wait();
    return state_->take();
  }
  // As get(); throws Timeout if the result is not ready within `timeout`.
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) {
    if (!wait(timeout)) {
      throw Timeout("multiproc::AsyncResult::get: no result within the timeout");
    }
    return state_->take();
  }
  void wait() const { state_->wait(); }
  template <class Rep, class Period>
  [[nodiscard]] bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return state_->wait_until(detail::deadline_after(timeout));
  }
  [[nodiscard]] bool ready() const { return state_->done(); }
  // Whether the call succeeded; ValueError if it is not ready (as Python).
  [[nodiscard]] bool successful() const {
    if (!state_->done()) {
      throw ValueError("multiproc::AsyncResult::successful: the result is not ready");
    }
    return !state_->error();
  }

 private:
  friend class BasicPool;
  explicit AsyncResult(std::shared_ptr<detail::ResultState<R>> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::ResultState<R>> state_;
};

// The results of imap / imap_unordered (and of an executor's map): an input range, read once. The
// inputs are consumed lazily, a few chunks ahead of what has been read, so memory stays bounded
// however long the input is (an executor's map reads them all at once, as Python's does). An input
// range that throws at item k: the results of the items before it come first, then its exception.
// A stream read after its pool was destroyed fails with BrokenPool.
template <class R>
class ResultStream {
 public:
  class iterator {
   public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    R operator*() const { return chunks_->front(); }
    iterator& operator++() {
      chunks_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return chunks_->empty(); }

   private:
    friend class ResultStream;
    explicit iterator(detail::ChunkStream<R>* chunks) : chunks_(chunks) {}
    detail::ChunkStream<R>* chunks_ = nullptr;
  };

  // Throws the failure of the first chunk that failed (in yield order) when it is reached.
  iterator begin() {
    chunks_.fill();
    return iterator(&chunks_);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  friend class BasicPool;
  friend class BasicExecutor;
  explicit ResultStream(detail::ChunkStream<R> chunks) : chunks_(std::move(chunks)) {}
  detail::ChunkStream<R> chunks_;
};

// What every pool offers, whatever runs its tasks: Pool (worker processes on this machine) and
// mpi::Pool (MPI ranks, <multiproc/mpi.hpp>).
//
// Every call that submits throws at once if the pool takes no more work: a local Pool throws
// ValueError after close() or terminate() (Python's "Pool not running") or in a forked child of
// the pool's process, BrokenPool once it is broken. Where the pool serves rather than submits (a
// serving rank of a cluster pool, or a moved-from pool) every call throws ValueError.
class BasicPool {
 public:
  BasicPool(const BasicPool&) = delete;
  BasicPool& operator=(const BasicPool&) = delete;

  // Worker processes (0 where this pool only serves).
  [[nodiscard]] int processes() const noexcept { return runner_ ? runner_->processes() : 0; }

  template <detail::task_function F, class... Args>
    requires std::invocable<detail::function_pointer_t<F>, std::decay_t<Args>...>
  auto apply_async(F f, Args&&... args) {
    using R = std::invoke_result_t<detail::function_pointer_t<F>, std::decay_t<Args>...>;
    return AsyncResult<R>(
        detail::start_call<R>(runner(), "multiproc::Pool::apply_async", detail::make_call(f, std::forward<Args>(args)...))
            .first);
  }
  // Python's apply_async(func, args, callback=..., error_callback=...): once the call is done,
  // callback(result) or error_callback(const multiproc::Error&) runs on the pool's result thread,
  // before get() and wait() return. What a callback throws is reported on stderr.
  template <detail::task_function F, class... Args, class Callback, class ErrorCallback>
    requires std::invocable<detail::function_pointer_t<F>, Args...>
  auto apply_async(F f, std::tuple<Args...> args, Callback callback, ErrorCallback error_callback) {
    using R = std::invoke_result_t<detail::function_pointer_t<F>, Args...>;
    auto call = std::apply([&](auto&&... a) { return detail::make_call(f, std::forward<decltype(a)>(a)...); },
                           std::move(args));
    return AsyncResult<R>(detail::start_call<R>(runner(), "multiproc::Pool::apply_async", std::move(call),
                                                detail::callback_hook<R>(std::move(callback), std::move(error_callback)))
                              .first);
  }
  template <detail::task_function F, class... Args>
    requires std::invocable<detail::function_pointer_t<F>, std::decay_t<Args>...>
  auto apply(F f, Args&&... args) {
    return apply_async(f, std::forward<Args>(args)...).get();
  }

  // f applied to every input, in input order. chunksize 0: about len / (4 x processes), as Python.
  template <detail::task_function F, std::ranges::input_range Inputs>
  auto map(F f, Inputs&& inputs, std::size_t chunksize = 0) {
    return map_async(f, std::forward<Inputs>(inputs), chunksize).get();
  }
  // g applied to the elements of each tuple: starmap(g, {{1, 2}, {3, 4}}) is {g(1, 2), g(3, 4)}.
  template <detail::task_function G, std::ranges::input_range Inputs>
  auto starmap(G g, Inputs&& inputs, std::size_t chunksize = 0) {
    return starmap_async(g, std::forward<Inputs>(inputs), chunksize).get();
  }
  // The same, without waiting. With Python's callback and error_callback (both or neither):
  // callback(const std::vector<R>&) gets every result, or error_callback(const multiproc::Error&)
  // the first failure, before get() returns.
  template <detail::task_function F, std::ranges::input_range Inputs, class... Callbacks>
    requires(sizeof...(Callbacks) == 0 || sizeof...(Callbacks) == 2)
  auto map_async(F f, Inputs&& inputs, std::size_t chunksize = 0, Callbacks... callbacks) {
    return start_map<false>("multiproc::Pool::map_async", f, std::forward<Inputs>(inputs), chunksize, std::move(callbacks)...);
  }
  template <detail::task_function G, std::ranges::input_range Inputs, class... Callbacks>
    requires(sizeof...(Callbacks) == 0 || sizeof...(Callbacks) == 2)
  auto starmap_async(G g, Inputs&& inputs, std::size_t chunksize = 0, Callbacks... callbacks) {
    return start_map<true>("multiproc::Pool::starmap_async", g, std::forward<Inputs>(inputs), chunksize, std::move(callbacks)...);
  }

  // Results in input order, each as soon as it and all before it are done. The range (taken by
  // value, or moved from) is read lazily.
  template <detail::task_function F, std::ranges::input_range Inputs>
  auto imap(F f, Inputs inputs, std::size_t chunksize = 1) {
    return stream("multiproc::Pool::imap", f, std::move(inputs), chunksize, true);
  }
  // Results in the order they finish.
  template <detail::task_function F, std::ranges::input_range Inputs>
  auto imap_unordered(F f, Inputs inputs, std::size_t chunksize = 1) {
    return stream("multiproc::Pool::imap_unordered", f, std::move(inputs), chunksize, false);
  }

  // No more tasks may be submitted; workers leave once the queued ones are done.
  void close() { runner().close(); }
  // Waits for the workers to leave (after close() or terminate()).
  void join() { runner().join(); }
  // Stops the workers now; unfinished tasks fail with BrokenPool.
  void terminate() { runner().terminate(); }

 protected:
  // Shares `runner` only with weak references (streams, futures): destroying the pool ends it.
  // A null runner: this process serves the pool rather than submitting to it.
  explicit BasicPool(std::shared_ptr<detail::TaskRunner> runner) noexcept : runner_(std::move(runner)) {}
  BasicPool(BasicPool&&) noexcept = default;
  BasicPool& operator=(BasicPool&&) noexcept = default;
  // terminate(), as leaving Python's `with Pool()`. (A destructor may not throw: terminate() throws
  // only when a system call fails, and then the runner's own destructor tries again.)
  ~BasicPool() {
    if (runner_) {
      try {
        runner_->terminate();
      } catch (...) {
      }
    }
  }
  [[nodiscard]] bool takes_calls() const noexcept { return runner_ != nullptr; }

 private:
  friend class BasicExecutor;

  detail::TaskRunner& runner() const {
    if (!runner_) {
      throw ValueError("multiproc: this pool takes no calls here (a serving rank of a cluster pool, or a moved-from pool)");
    }
    return *runner_;
  }

  template <bool Unpack, class F, class Inputs, class... Callbacks>
  auto start_map(std::string_view caller, F f, Inputs&& inputs, std::size_t chunksize, Callbacks... callbacks) {
    using R = detail::chunk_result_t<F, std::ranges::range_value_t<Inputs>, Unpack>;
    detail::Hook<std::vector<R>> hook;
    if constexpr (sizeof...(Callbacks) > 0) {
      hook = detail::callback_hook<std::vector<R>>(std::move(callbacks)...);
    }
    return AsyncResult<std::vector<R>>(
        detail::start_map<Unpack>(runner(), caller, f, std::forward<Inputs>(inputs), chunksize, std::move(hook)));
  }

  template <class F, class Inputs>
  auto stream(std::string_view caller, F f, Inputs inputs, std::size_t chunksize, bool ordered) {
    using Input = std::ranges::range_value_t<Inputs>;
    using R = detail::chunk_result_t<F, Input, false>;
    detail::TaskRunner& to = runner();
    to.require_accepting(caller);
    to.require_runnable(detail::make_chunk_call<F, Input, false>(f, {}));  // refuse now, not at begin()
    return ResultStream<R>(detail::ChunkStream<R>(detail::submit_while_alive(runner_),
                                                  detail::read_chunks(f, chunksize, std::move(inputs)), ordered,
                                                  to.stream_window()));
  }

  std::shared_ptr<detail::TaskRunner> runner_;
};

class MULTIPROC_API Pool : public BasicPool {
 public:
  // One worker per CPU.
  Pool() : Pool(std::nullopt) {}
  // `processes`: how many workers (nullopt: one per CPU; below 1: ValueError, as Python).
  // `initializer` runs once in every new worker. `maxtasksperchild`: a worker leaves after that many
  // tasks (chunks) and a fresh one takes its place (nullopt: never; below 1: ValueError).
  explicit Pool(std::optional<int> processes, std::function<void()> initializer = {},
                std::optional<int> maxtasksperchild = std::nullopt)
      : BasicPool(start_workers(processes, std::move(initializer), maxtasksperchild)) {}

 private:
  friend class ProcessPoolExecutor;
  // The workers, counts checked as Python checks them (None or >= 1).
  static std::shared_ptr<detail::TaskRunner> start_workers(std::optional<int> processes, std::function<void()> initializer,
                                                           std::optional<int> maxtasksperchild) {
    const auto positive_or_zero = [](std::optional<int> count, const char* what) {
      if (count && *count < 1) {
        throw ValueError(std::string("multiproc::Pool: ") + what + " must be at least 1 (or unset), not " +
                         std::to_string(*count));
      }
      return count.value_or(0);
    };
    return std::make_shared<detail::PoolCore>(positive_or_zero(processes, "processes"), std::move(initializer),
                                              positive_or_zero(maxtasksperchild, "maxtasksperchild"));
  }
};

}  // namespace multiproc

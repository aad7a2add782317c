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
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/pool/chunk_reader.hpp>
#include <multiproc/detail/pool/map_gather.hpp>
#include <multiproc/detail/pool/pool_core.hpp>
#include <multiproc/detail/pool/result_state.hpp>
#include <multiproc/detail/pool/result_stream.hpp>
#include <multiproc/detail/pool/task.hpp>
#include <multiproc/error.hpp>

namespace multiproc {

class Pool;
class ProcessPoolExecutor;

namespace detail {
// Hands out AsyncResult, ResultStream and Future to pools outside these headers (multiproc::mpi),
// so that every pool gives its users the same types (detail/pool/result_handles.hpp).
struct ResultHandles;
}  // namespace detail

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
  friend class Pool;
  friend struct detail::ResultHandles;
  explicit AsyncResult(std::shared_ptr<detail::ResultState<R>> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::ResultState<R>> state_;
};

// The results of imap / imap_unordered (and of ProcessPoolExecutor::map): an input range, read
// once. The inputs are consumed lazily, a few chunks ahead of what has been read, so memory stays
// bounded however long the input is (the executor's map reads them all at once, as Python's does).
// An input range that throws at item k: the results of the items before it come first, then its
// exception. A stream read after its pool was destroyed fails with BrokenPool.
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
  friend class Pool;
  friend class ProcessPoolExecutor;
  friend struct detail::ResultHandles;
  explicit ResultStream(detail::ChunkStream<R> chunks) : chunks_(std::move(chunks)) {}
  detail::ChunkStream<R> chunks_;
};

class MULTIPROC_API Pool {
 public:
  // One worker per CPU.
  Pool() : Pool(std::nullopt) {}
  // `processes`: how many workers (nullopt: one per CPU; below 1: ValueError, as Python).
  // `initializer` runs once in every new worker. `maxtasksperchild`: a worker leaves after that many
  // tasks (chunks) and a fresh one takes its place (nullopt: never; below 1: ValueError).
  explicit Pool(std::optional<int> processes, std::function<void()> initializer = {},
                std::optional<int> maxtasksperchild = std::nullopt)
      : core_(std::make_shared<detail::PoolCore>(positive_or_zero(processes, "processes"), std::move(initializer),
                                                 positive_or_zero(maxtasksperchild, "maxtasksperchild"))) {}
  Pool(Pool&&) noexcept = default;
  Pool& operator=(Pool&&) noexcept = default;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  // terminate(), as leaving Python's `with Pool()`. (A destructor may not throw: terminate() throws
  // only when a system call fails, and then the core's own destructor tries again.)
  ~Pool() {
    if (core_) {
      try {
        core_->terminate();
      } catch (...) {
      }
    }
  }

  [[nodiscard]] int processes() const noexcept { return core_->processes(); }

  // Every call below throws at once if the pool takes no more work: ValueError after close() or
  // terminate() (Python's "Pool not running") or in a forked child of the pool's process,
  // BrokenPool once it is broken.
  template <detail::task_function F, class... Args>
    requires std::invocable<detail::function_pointer_t<F>, std::decay_t<Args>...>
  auto apply_async(F f, Args&&... args) {
    using R = std::invoke_result_t<detail::function_pointer_t<F>, std::decay_t<Args>...>;
    return AsyncResult<R>(start<R>("multiproc::Pool::apply_async", detail::make_call(f, std::forward<Args>(args)...)).first);
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
    return AsyncResult<R>(start<R>("multiproc::Pool::apply_async", std::move(call),
                                   callback_hook<R>(std::move(callback), std::move(error_callback)))
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
  template <detail::task_function F, std::ranges::input_range Inputs>
  auto map_async(F f, Inputs&& inputs, std::size_t chunksize = 0) {
    return map_chunks<false>(f, std::forward<Inputs>(inputs), chunksize);
  }
  // With Python's callback and error_callback: callback(const std::vector<R>&) gets every result,
  // or error_callback(const multiproc::Error&) the first failure, before get() returns.
  template <detail::task_function F, std::ranges::input_range Inputs, class Callback, class ErrorCallback>
  auto map_async(F f, Inputs&& inputs, std::size_t chunksize, Callback callback, ErrorCallback error_callback) {
    return map_chunks<false>(f, std::forward<Inputs>(inputs), chunksize, std::move(callback), std::move(error_callback));
  }
  // g applied to the elements of each tuple: starmap(g, {{1, 2}, {3, 4}}) is {g(1, 2), g(3, 4)}.
  template <detail::task_function G, std::ranges::input_range Inputs>
  auto starmap(G g, Inputs&& inputs, std::size_t chunksize = 0) {
    return starmap_async(g, std::forward<Inputs>(inputs), chunksize).get();
  }
  template <detail::task_function G, std::ranges::input_range Inputs>
  auto starmap_async(G g, Inputs&& inputs, std::size_t chunksize = 0) {
    return map_chunks<true>(g, std::forward<Inputs>(inputs), chunksize);
  }
  template <detail::task_function G, std::ranges::input_range Inputs, class Callback, class ErrorCallback>
  auto starmap_async(G g, Inputs&& inputs, std::size_t chunksize, Callback callback, ErrorCallback error_callback) {
    return map_chunks<true>(g, std::forward<Inputs>(inputs), chunksize, std::move(callback), std::move(error_callback));
  }

  // Results in input order, each as soon as it and all before it are done. The range (taken by
  // value, or moved from) is read lazily.
  template <detail::task_function F, std::ranges::input_range Inputs>
  auto imap(F f, Inputs inputs, std::size_t chunksize = 1) {
    return stream(f, std::move(inputs), chunksize, true);
  }
  // Results in the order they finish.
  template <detail::task_function F, std::ranges::input_range Inputs>
  auto imap_unordered(F f, Inputs inputs, std::size_t chunksize = 1) {
    return stream(f, std::move(inputs), chunksize, false);
  }

  // No more tasks may be submitted; workers leave once the queued ones are done.
  void close() { core_->close(); }
  // Waits for the workers to leave (after close() or terminate()).
  void join() { core_->join(); }
  // Stops the workers now; unfinished tasks fail with BrokenPool.
  void terminate() { core_->terminate(); }

 private:
  friend class ProcessPoolExecutor;
  template <class R>
  using Hook = typename detail::ResultState<R>::Hook;

  // A count that Python accepts (None or >= 1) as PoolCore takes it (0 for None).
  static int positive_or_zero(std::optional<int> count, const char* what) {
    if (count && *count < 1) {
      throw ValueError(std::string("multiproc::Pool: ") + what + " must be at least 1 (or unset), not " +
                       std::to_string(*count));
    }
    return count.value_or(0);
  }

  // callback(value) or error_callback(error), as a hook that runs before the result is published.
  template <class R, class Callback, class ErrorCallback>
  static Hook<R> callback_hook(Callback callback, ErrorCallback error_callback) {
    return [callback = std::move(callback), error_callback = std::move(error_callback)](
               const detail::Stored<R>& value, const std::exception_ptr& error) mutable {
      if (!error) {
        if constexpr (std::is_void_v<R>) {
          callback();
        } else {
          callback(value);
        }
        return;
      }
      try {
        std::rethrow_exception(error);
      } catch (const Error& e) {
        error_callback(e);
      }
    };
  }

  // Submits a call whose result is an encoded R; returns its state and task id.
  template <class R>
  std::pair<std::shared_ptr<detail::ResultState<R>>, std::uint64_t> start(std::string_view caller, detail::Call call,
                                                                          Hook<R> hook = {}) {
    core_->require_accepting(caller);
    auto state = std::make_shared<detail::ResultState<R>>();
    state->set_hook(std::move(hook));
    const std::uint64_t id = core_->submit(std::move(call), [state](detail::TaskOutcome&& outcome) {
      std::exception_ptr failure = detail::failure_of(outcome);
      detail::Stored<R> value{};
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

  // Python's default chunksize for map: ceil(len / (4 x workers)).
  std::size_t default_chunksize(std::size_t length) const {
    const std::size_t per = static_cast<std::size_t>(processes()) * 4;
    return std::max<std::size_t>(1, (length + per - 1) / per);
  }

  template <bool Unpack, class F, class Inputs, class... Callbacks>
  auto map_chunks(F f, Inputs&& inputs, std::size_t chunksize, Callbacks... callbacks) {
    using Input = std::ranges::range_value_t<Inputs>;
    using R = detail::chunk_result_t<F, Input, Unpack>;
    core_->require_accepting(Unpack ? "multiproc::Pool::starmap_async" : "multiproc::Pool::map_async");
    std::vector<Input> all(std::ranges::begin(inputs), std::ranges::end(inputs));
    const std::size_t size = chunksize > 0 ? chunksize : default_chunksize(all.size());
    const std::size_t count = (all.size() + size - 1) / size;
    auto state = std::make_shared<detail::ResultState<std::vector<R>>>();
    if constexpr (sizeof...(Callbacks) > 0) {
      state->set_hook(callback_hook<std::vector<R>>(std::move(callbacks)...));
    }
    if (count == 0) {
      state->complete({}, nullptr);
      return AsyncResult<std::vector<R>>(state);
    }
    auto gather = std::make_shared<detail::MapGather<R>>();
    gather->values.resize(all.size());
    gather->chunk_size = size;
    gather->left = count;
    gather->state = state;
    gather->self = gather;
    std::vector<std::pair<detail::Call, detail::PoolCore::Done>> calls;
    calls.reserve(count);
    std::vector<Input> chunk;
    for (std::size_t c = 0; c < count; ++c) {
      const auto first = all.begin() + static_cast<std::ptrdiff_t>(c * size);
      chunk.assign(std::make_move_iterator(first),
                   std::make_move_iterator(first + static_cast<std::ptrdiff_t>(std::min(size, all.size() - c * size))));
      calls.emplace_back(detail::make_chunk_call<F, Input, Unpack>(f, chunk),
                         [g = gather.get(), c](detail::TaskOutcome&& outcome) { g->chunk_done(c, std::move(outcome)); });
    }
    core_->submit_all(std::move(calls));
    return AsyncResult<std::vector<R>>(state);
  }

  // Hands chunks to the pool while it exists: a stream outlives the pool it came from only to fail
  // cleanly (its unread chunks fail with BrokenPool).
  detail::SubmitChunk submit_while_alive() const {
    return [core = std::weak_ptr<detail::PoolCore>(core_)](detail::Call&& call, detail::PoolCore::Done&& done) {
      if (const auto alive = core.lock()) {
        alive->submit(std::move(call), std::move(done));
      } else {
        done(detail::TaskOutcome::failed(detail::TaskOutcome::Kind::broken_pool,
                                         "multiproc::Pool: the pool was destroyed before this part of the map was read"));
      }
    };
  }

  template <class F, class Inputs>
  auto stream(F f, Inputs inputs, std::size_t chunksize, bool ordered) {
    using R = detail::chunk_result_t<F, std::ranges::range_value_t<Inputs>, false>;
    core_->require_accepting(ordered ? "multiproc::Pool::imap" : "multiproc::Pool::imap_unordered");
    return ResultStream<R>(detail::ChunkStream<R>(submit_while_alive(), detail::read_chunks(f, chunksize, std::move(inputs)),
                                                  ordered, static_cast<std::size_t>(processes()) * 2));
  }

  // Shared only with weak references (streams, futures): destroying the pool ends it.
  std::shared_ptr<detail::PoolCore> core_;
};

}  // namespace multiproc

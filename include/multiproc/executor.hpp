#pragma once
// ProcessPoolExecutor, Future, as_completed, wait: Python's concurrent.futures on a Pool.
//
//   multiproc::ProcessPoolExecutor ex{4};
//   multiproc::Future<int> f = ex.submit(square, 7);
//   f.add_done_callback([](multiproc::Future<int>& done) { ... });
//   for (auto& done : multiproc::as_completed(futures)) use(done.result());
//   auto [finished, pending] = multiproc::wait(futures, multiproc::ReturnWhen::first_completed);
//
// Failures as in Pool: RemoteError, WorkerLost, BrokenPool; a cancelled future gives Cancelled.
// Destroying the executor is shutdown(wait = true), as leaving Python's `with` block.
//
// The calls are BasicExecutor's, which multiproc::mpi::Executor (<multiproc/mpi.hpp>) offers too,
// with the same Future.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/pool/chunk_reader.hpp>
#include <multiproc/detail/pool/pool_calls.hpp>
#include <multiproc/detail/pool/result_stream.hpp>
#include <multiproc/detail/pool/task_runner.hpp>
#include <multiproc/error.hpp>
#include <multiproc/pool.hpp>

namespace multiproc {

namespace detail {
// What as_completed and wait need of a Future beyond its public face: which call it stands for.
struct FutureAccess;
}  // namespace detail

// The result of an executor's call (Python's concurrent.futures.Future). Copies share one result;
// two futures compare equal when they stand for the same call. A Future made by hand (Future<R>{})
// is completed by set_result or set_exception, as in Python's tests and home-made executors.
template <class R>
class Future {
 public:
  Future() : state_(std::make_shared<detail::ResultState<R>>()) {}

  // The call's result; rethrows its failure. Throws Timeout if not done within `timeout`.
  R result() {
    state_->wait();
    return state_->take();
  }
  template <class Rep, class Period>
  R result(std::chrono::duration<Rep, Period> timeout) {
    require_done_within(detail::deadline_after(timeout));
    return state_->take();
  }
  // The failure, or nullptr if the call succeeded. Waits like result().
  std::exception_ptr exception() {
    state_->wait();
    return state_->error();
  }
  template <class Rep, class Period>
  std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) {
    require_done_within(detail::deadline_after(timeout));
    return state_->error();
  }
  [[nodiscard]] bool done() const { return state_->done(); }
  // Handed to a worker (so it can no longer be cancelled) and not done yet. As in Python, where a
  // call counts as running once it is on its way to a worker (for a cluster pool: sent to a rank).
  // A hand-made future is never reported running.
  [[nodiscard]] bool running() const {
    if (id_ == 0 || state_->done()) {
      return false;
    }
    const auto runner = runner_.lock();
    return runner != nullptr && !runner->is_pending(id_);
  }
  // Cancels the call if no worker has started it; true if it is cancelled (now or before).
  bool cancel() {
    if (cancelled()) {
      return true;
    }
    if (!by_hand_) {
      const auto runner = runner_.lock();
      return id_ != 0 && runner != nullptr && runner->cancel(id_);
    }
    // Made by hand: cancelled unless it already has its result.
    return state_->complete({}, std::make_exception_ptr(Cancelled("multiproc::Future: cancelled")));
  }
  [[nodiscard]] bool cancelled() const {
    if (!state_->done() || !state_->error()) {
      return false;
    }
    try {
      std::rethrow_exception(state_->error());
    } catch (const Cancelled&) {
      return true;
    } catch (...) {
      return false;
    }
  }
  // Runs `callback(*this)` once the call is done: at once if it is, else on the pool's thread. Each
  // callback runs whatever the others do; what one throws is reported on stderr, never passed on.
  void add_done_callback(std::function<void(Future&)> callback) {
    state_->on_done([copy = *this, callback = std::move(callback)]() mutable { callback(copy); });
  }

  // Completes a hand-made future (ValueError if it is done already, Python's InvalidStateError).
  template <class T = R>
    requires(!std::is_void_v<T>)
  void set_result(T value) {
    settle(std::move(value), nullptr);
  }
  void set_result()
    requires std::is_void_v<R>
  {
    settle({}, nullptr);
  }
  void set_exception(std::exception_ptr error) {
    if (!error) {
      throw ValueError("multiproc::Future::set_exception: no exception given");
    }
    settle({}, std::move(error));
  }

  bool operator==(const Future& other) const noexcept { return state_ == other.state_; }

 private:
  friend class BasicExecutor;
  friend struct detail::FutureAccess;
  Future(std::shared_ptr<detail::ResultState<R>> state, std::weak_ptr<detail::TaskRunner> runner, std::uint64_t id)
      : state_(std::move(state)), runner_(std::move(runner)), id_(id), by_hand_(false) {}

  void require_done_within(detail::Deadline deadline) const {
    if (!state_->wait_until(deadline)) {
      throw Timeout("multiproc::Future: not done within the timeout");
    }
  }
  void settle(detail::Stored<R>&& value, std::exception_ptr error) {
    if (!by_hand_) {
      throw ValueError("multiproc::Future: only a future made by hand can be given its result");
    }
    if (!state_->complete(std::move(value), std::move(error))) {
      throw ValueError("multiproc::Future: the future is already done");
    }
  }

  std::shared_ptr<detail::ResultState<R>> state_;
  std::weak_ptr<detail::TaskRunner> runner_;  // weak: a future may outlive its executor
  std::uint64_t id_ = 0;                      // 0: refused by its pool, or made by hand
  bool by_hand_ = true;
};

namespace detail {
struct FutureAccess {
  // The futures without repeats (the same call given twice counts once, as Python's sets do).
  template <class R>
  static std::vector<Future<R>> distinct(std::vector<Future<R>> futures) {
    std::unordered_set<const void*> seen;
    std::erase_if(futures, [&](const Future<R>& f) { return !seen.insert(f.state_.get()).second; });
    return futures;
  }
};
}  // namespace detail

// Options of ProcessPoolExecutor::map beyond the function and the ranges (Python's keywords).
struct MapOptions {
  std::size_t chunksize = 1;
  // Counted from the map() call: reading a result not ready by then throws Timeout.
  std::chrono::steady_clock::duration timeout = std::chrono::steady_clock::duration::max();
};

// What every executor offers, whatever runs its calls: ProcessPoolExecutor (worker processes on
// this machine) and mpi::Executor (MPI ranks, <multiproc/mpi.hpp>).
class BasicExecutor {
 public:
  BasicExecutor(const BasicExecutor&) = delete;
  BasicExecutor& operator=(const BasicExecutor&) = delete;

  // ValueError at once after shutdown (Python's RuntimeError) or in a forked child of the
  // executor's process; BrokenPool once the executor is broken.
  template <detail::task_function F, class... Args>
    requires std::invocable<detail::function_pointer_t<F>, std::decay_t<Args>...>
  auto submit(F f, Args&&... args) {
    using R = std::invoke_result_t<detail::function_pointer_t<F>, std::decay_t<Args>...>;
    auto [state, id] = detail::start_call<R>(pool_.runner(), "multiproc::ProcessPoolExecutor::submit",
                                             detail::make_call(f, std::forward<Args>(args)...));
    return Future<R>(std::move(state), pool_.runner_, id);
  }
  // Results in input order (Python's Executor.map): f(a, b, ...) with one item of each range, to
  // the end of the shortest. Every call is submitted before map returns, as in Python, so calls
  // that shutdown(wait = false) follows still run; memory holds all the encoded inputs (and each
  // result until it is read): for an input too long for that, use Pool::imap, which reads lazily.
  // An input range that throws at item k: the k results come first, then its exception.
  template <detail::task_function F, std::ranges::input_range... Ranges>
    requires(sizeof...(Ranges) >= 1)
  auto map(F f, Ranges&&... ranges) {
    return map(f, MapOptions{}, std::forward<Ranges>(ranges)...);
  }
  template <detail::task_function F, std::ranges::input_range Inputs>
  auto map(F f, Inputs&& inputs, std::size_t chunksize) {
    return map(f, MapOptions{chunksize}, std::forward<Inputs>(inputs));
  }
  template <detail::task_function F, std::ranges::input_range... Ranges>
    requires(sizeof...(Ranges) >= 1)
  auto map(F f, MapOptions options, Ranges&&... ranges) {
    using Source = detail::InputSource<Ranges...>;
    using R = detail::chunk_result_t<F, typename Source::Input, Source::unpack>;
    pool_.runner().require_accepting("multiproc::ProcessPoolExecutor::map");
    detail::ChunkStream<R> chunks(detail::submit_while_alive(pool_.runner_),
                                  detail::read_chunks(f, options.chunksize, std::forward<Ranges>(ranges)...), true,
                                  std::numeric_limits<std::size_t>::max(), detail::deadline_after(options.timeout));
    chunks.submit_ahead();
    return ResultStream<R>(std::move(chunks));
  }
  // No more submissions. wait: block until running and queued calls are done.
  // cancel_futures: queued calls that no worker has started are cancelled.
  void shutdown(bool wait = true, bool cancel_futures = false) {
    if (cancel_futures) {
      pool_.runner().cancel_all_pending();
    }
    pool_.close();
    if (wait) {
      pool_.join();
    }
  }

 protected:
  explicit BasicExecutor(std::shared_ptr<detail::TaskRunner> runner) noexcept : pool_(std::move(runner)) {}
  // shutdown(wait = true), as leaving Python's `with` block. (A destructor may not throw: shutdown
  // throws only when a system call fails, and then the pool's destructor still terminates it.)
  ~BasicExecutor() {
    if (takes_calls()) {
      try {
        shutdown(true);
      } catch (...) {
      }
    }
  }
  [[nodiscard]] bool takes_calls() const noexcept { return pool_.takes_calls(); }

 private:
  BasicPool pool_;  // a member, not a base: an executor offers its own calls, not the pool's
};

class MULTIPROC_API ProcessPoolExecutor : public BasicExecutor {
 public:
  // `max_workers`: nullopt, one per CPU; below 1, ValueError (as Python). `max_tasks_per_child`: a
  // worker leaves after that many calls and a fresh one takes its place (nullopt: never).
  explicit ProcessPoolExecutor(std::optional<int> max_workers = std::nullopt, std::function<void()> initializer = {},
                               std::optional<int> max_tasks_per_child = std::nullopt)
      : BasicExecutor(Pool::start_workers(max_workers, std::move(initializer), max_tasks_per_child)) {}
};

enum class ReturnWhen { first_completed, first_exception, all_completed };

template <class R>
struct WaitResult {
  std::vector<Future<R>> done;
  std::vector<Future<R>> not_done;
};

// Waits until `when` holds for `futures`, or `timeout` passes; splits them into done and not done,
// each future once however often it was given.
template <class R, class Rep = std::chrono::hours::rep, class Period = std::chrono::hours::period>
WaitResult<R> wait(std::vector<Future<R>> futures, ReturnWhen when = ReturnWhen::all_completed,
                   std::chrono::duration<Rep, Period> timeout = std::chrono::hours::max()) {
  struct Watch {
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t finished = 0;
    bool failed = false;
  };
  futures = detail::FutureAccess::distinct(std::move(futures));
  auto watch = std::make_shared<Watch>();
  for (auto& f : futures) {
    f.add_done_callback([watch](Future<R>& done) {
      {
        std::scoped_lock lock(watch->mutex);
        ++watch->finished;
        // A cancelled future is done, not failed (Python's wait counts only raised exceptions).
        watch->failed = watch->failed || (done.exception() != nullptr && !done.cancelled());
      }
      watch->changed.notify_all();
    });
  }
  {
    std::unique_lock lock(watch->mutex);
    watch->changed.wait_until(lock, detail::deadline_after(timeout), [&] {
      switch (when) {
        case ReturnWhen::first_completed: return watch->finished > 0 || futures.empty();
        case ReturnWhen::first_exception: return watch->failed || watch->finished == futures.size();
        case ReturnWhen::all_completed: return watch->finished == futures.size();
      }
      return true;
    });
  }
  WaitResult<R> result;
  for (auto& f : futures) {
    (f.done() ? result.done : result.not_done).push_back(f);
  }
  return result;
}

// The futures in the order they finish, as an input range, each once however often it was given. Iterating past the last one that
// finished within `timeout` (counted from this call) throws Timeout.
template <class R>
class AsCompleted {
 public:
  class iterator {
   public:
    using value_type = Future<R>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    Future<R>& operator*() const { return *current_; }
    iterator& operator++() {
      current_ = owner_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return !current_; }

   private:
    friend class AsCompleted;
    iterator(AsCompleted* owner, std::optional<Future<R>> first) : owner_(owner), current_(std::move(first)) {}
    AsCompleted* owner_ = nullptr;
    mutable std::optional<Future<R>> current_;
  };

  iterator begin() { return iterator(this, next()); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  template <class T, class Rep, class Period>
  friend AsCompleted<T> as_completed(std::vector<Future<T>> futures, std::chrono::duration<Rep, Period> timeout);

  struct Arrivals {
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<Future<R>> finished;
  };

  AsCompleted(std::vector<Future<R>> futures, detail::Deadline deadline)
      : left_(futures.size()), deadline_(deadline), arrivals_(std::make_shared<Arrivals>()) {
    for (auto& f : futures) {
      f.add_done_callback([arrivals = arrivals_](Future<R>& done) {
        {
          std::scoped_lock lock(arrivals->mutex);
          arrivals->finished.push_back(done);
        }
        arrivals->changed.notify_all();
      });
    }
  }

  std::optional<Future<R>> next() {
    if (left_ == 0) {
      return std::nullopt;
    }
    std::unique_lock lock(arrivals_->mutex);
    if (!arrivals_->changed.wait_until(lock, deadline_, [&] { return !arrivals_->finished.empty(); })) {
      throw Timeout("multiproc::as_completed: " + std::to_string(left_) + " futures unfinished at the timeout");
    }
    Future<R> f = std::move(arrivals_->finished.front());
    arrivals_->finished.pop_front();
    --left_;
    return f;
  }

  std::size_t left_;
  detail::Deadline deadline_;
  std::shared_ptr<Arrivals> arrivals_;
};

template <class R, class Rep = std::chrono::hours::rep, class Period = std::chrono::hours::period>
AsCompleted<R> as_completed(std::vector<Future<R>> futures,
                            std::chrono::duration<Rep, Period> timeout = std::chrono::hours::max()) {
  return AsCompleted<R>(detail::FutureAccess::distinct(std::move(futures)), detail::deadline_after(timeout));
}

}  // namespace multiproc

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
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/error.hpp>
#include <multiproc/pool.hpp>

namespace multiproc {

class ProcessPoolExecutor;

template <class R>
class Future {
 public:
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
  // Cancels the call if no worker has started it; true if it is cancelled (now or before).
  bool cancel() {
    return cancelled() || (core_ != nullptr && id_ != 0 && core_->cancel(id_)) || (cancel_elsewhere_ && cancel_elsewhere_());
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
  // Runs `callback(*this)` once the call is done: at once if it is, else on the pool's thread.
  void add_done_callback(std::function<void(Future&)> callback) {
    state_->on_done([copy = *this, callback = std::move(callback)]() mutable { callback(copy); });
  }

 private:
  friend class ProcessPoolExecutor;
  friend struct detail::ResultHandles;
  Future(std::shared_ptr<detail::ResultState<R>> state, detail::PoolCore* core, std::uint64_t id)
      : state_(std::move(state)), core_(core), id_(id) {}
  // A future of a pool outside this header (multiproc::mpi): `cancel` withdraws its call there.
  Future(std::shared_ptr<detail::ResultState<R>> state, std::function<bool()> cancel)
      : state_(std::move(state)), cancel_elsewhere_(std::move(cancel)) {}

  void require_done_within(detail::Deadline deadline) const {
    if (!state_->wait_until(deadline)) {
      throw Timeout("multiproc::Future: not done within the timeout");
    }
  }

  std::shared_ptr<detail::ResultState<R>> state_;
  detail::PoolCore* core_ = nullptr;
  std::uint64_t id_ = 0;  // 0: the pool refused it
  std::function<bool()> cancel_elsewhere_;
};

class MULTIPROC_API ProcessPoolExecutor {
 public:
  // `max_workers` 0: one per CPU.
  explicit ProcessPoolExecutor(int max_workers = 0, std::function<void()> initializer = {})
      : pool_(max_workers, std::move(initializer)) {}
  ProcessPoolExecutor(const ProcessPoolExecutor&) = delete;
  ProcessPoolExecutor& operator=(const ProcessPoolExecutor&) = delete;
  ~ProcessPoolExecutor() { shutdown(true); }

  template <detail::task_function F, class... Args>
    requires std::invocable<detail::function_pointer_t<F>, std::decay_t<Args>...>
  auto submit(F f, Args&&... args) {
    using R = std::invoke_result_t<detail::function_pointer_t<F>, std::decay_t<Args>...>;
    auto [state, id] = pool_.template start<R>(detail::make_call(f, std::forward<Args>(args)...));
    return Future<R>(std::move(state), pool_.core_.get(), id);
  }
  // Results in input order (Python's Executor.map), read lazily.
  template <detail::task_function F, std::ranges::input_range Inputs>
  auto map(F f, Inputs inputs, std::size_t chunksize = 1) {
    return pool_.imap(f, std::move(inputs), chunksize);
  }
  // No more submissions. wait: block until running and queued calls are done.
  // cancel_futures: queued calls that no worker has started are cancelled.
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

enum class ReturnWhen { first_completed, first_exception, all_completed };

template <class R>
struct WaitResult {
  std::vector<Future<R>> done;
  std::vector<Future<R>> not_done;
};

// Waits until `when` holds for `futures`, or `timeout` passes; splits them into done and not done.
template <class R, class Rep = std::chrono::hours::rep, class Period = std::chrono::hours::period>
WaitResult<R> wait(std::vector<Future<R>> futures, ReturnWhen when = ReturnWhen::all_completed,
                   std::chrono::duration<Rep, Period> timeout = std::chrono::hours::max()) {
  struct Watch {
    std::mutex mutex;
    std::condition_variable changed;
    std::size_t finished = 0;
    bool failed = false;
  };
  auto watch = std::make_shared<Watch>();
  for (auto& f : futures) {
    f.add_done_callback([watch](Future<R>& done) {
      {
        std::scoped_lock lock(watch->mutex);
        ++watch->finished;
        watch->failed = watch->failed || done.exception() != nullptr;
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

// The futures in the order they finish, as an input range. Iterating past the last one that
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
  return AsCompleted<R>(std::move(futures), detail::deadline_after(timeout));
}

}  // namespace multiproc

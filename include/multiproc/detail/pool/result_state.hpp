#pragma once
// Internal: the outcome of one pool call, shared by the handles to it (AsyncResult, Future) and by
// the pool's thread that completes it. Process-local.
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <multiproc/codec.hpp>
#include <multiproc/export.hpp>
#include <multiproc/segment.hpp>

namespace multiproc::detail {

template <class R>
using Stored = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

// Reports on stderr `failure`, which a user's callback raised: "... the pool result at <who>
// raised <type>: <message>". A callback's failure is nobody's result, so it is told, not
// thrown (Python logs "exception calling callback for <Future ...>" the same way).
MULTIPROC_API void report_callback_failure(const void* who, const std::exception_ptr& failure) noexcept;

template <class R>
class ResultState {
 public:
  // Runs before the result is published: wait() and get() return only after it ran (Python's
  // AsyncResult runs callback/error_callback before it sets its event). Set once, before the call
  // is submitted. What it throws is reported, never propagated.
  using Hook = std::function<void(const Stored<R>& value, const std::exception_ptr& error)>;
  void set_hook(Hook hook) { hook_ = std::move(hook); }

  // Once, from the pool's thread (or the submitting thread when the pool refuses the call, or the
  // user's for a Future made by hand). False if it was already complete (cancelled first).
  bool complete(Stored<R>&& value, std::exception_ptr error) {
    {
      std::scoped_lock lock(mutex_);
      if (done_ || completing_) {
        return false;
      }
      completing_ = true;  // the hook runs unlocked: it may look at this state (ready() says false)
    }
    if (hook_) {
      try {
        hook_(value, error);
      } catch (...) {
        report_callback_failure(this, std::current_exception());
      }
    }
    std::vector<std::function<void()>> callbacks;
    {
      std::scoped_lock lock(mutex_);
      value_ = std::move(value);
      error_ = std::move(error);
      done_ = true;
      callbacks.swap(callbacks_);
    }
    ready_.notify_all();
    for (auto& callback : callbacks) {
      run_guarded(callback);
    }
    return true;
  }
  // Runs `callback` once the call is done: at once if it is, else on the thread that completes it.
  // Each callback runs whatever the others do: what one throws is reported on stderr.
  void on_done(std::function<void()> callback) {
    {
      std::scoped_lock lock(mutex_);
      if (!done_) {
        callbacks_.push_back(std::move(callback));
        return;
      }
    }
    run_guarded(callback);
  }
  void wait() const {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return done_; });
  }
  bool wait_until(std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock lock(mutex_);
    return ready_.wait_until(lock, deadline, [&] { return done_; });
  }
  [[nodiscard]] bool done() const {
    std::scoped_lock lock(mutex_);
    return done_;
  }
  [[nodiscard]] std::exception_ptr error() const {
    std::scoped_lock lock(mutex_);
    return error_;
  }
  // The value, or the failure rethrown. Call once done.
  R take() const {
    std::scoped_lock lock(mutex_);
    if (error_) {
      std::rethrow_exception(error_);
    }
    if constexpr (std::is_copy_constructible_v<R>) {
      return value_;
    } else if constexpr (!std::is_void_v<R>) {
      static_assert(travels_by_name<R>, "a task's result is copied to each reader");
      return R(open, value_.name());  // a shared object: each reader gets a handle of its own
    }
  }

 private:
  void run_guarded(std::function<void()>& callback) const noexcept {
    try {
      callback();
    } catch (...) {
      report_callback_failure(this, std::current_exception());
    }
  }

  mutable std::mutex mutex_;
  mutable std::condition_variable ready_;
  bool completing_ = false;
  bool done_ = false;
  Stored<R> value_{};
  std::exception_ptr error_;
  Hook hook_;
  std::vector<std::function<void()>> callbacks_;
};

}  // namespace multiproc::detail

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

namespace multiproc::detail {

template <class R>
using Stored = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

template <class R>
class ResultState {
 public:
  // Once, from the pool's thread (or the submitting thread when the pool refuses the call).
  void complete(Stored<R>&& value, std::exception_ptr error) {
    std::vector<std::function<void()>> callbacks;
    {
      std::scoped_lock lock(mutex_);
      if (done_) {
        return;  // cancelled first
      }
      value_ = std::move(value);
      error_ = std::move(error);
      done_ = true;
      callbacks.swap(callbacks_);
    }
    ready_.notify_all();
    for (auto& callback : callbacks) {
      callback();
    }
  }
  // Runs `callback` once the call is done: at once if it is, else on the thread that completes it.
  void on_done(std::function<void()> callback) {
    {
      std::scoped_lock lock(mutex_);
      if (!done_) {
        callbacks_.push_back(std::move(callback));
        return;
      }
    }
    callback();
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
    if constexpr (!std::is_void_v<R>) {
      return value_;
    }
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable ready_;
  bool done_ = false;
  Stored<R> value_{};
  std::exception_ptr error_;
  std::vector<std::function<void()>> callbacks_;
};

}  // namespace multiproc::detail

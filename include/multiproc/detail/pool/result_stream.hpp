#pragma once
// Internal: the engine under ResultStream (imap, imap_unordered, Executor::map). It submits chunks
// a window ahead of what has been read, keeps the outcomes that arrive (on the pool's thread) until
// their turn, and unpacks them one chunk at a time.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <multiproc/codec.hpp>
#include <multiproc/detail/os/deadline.hpp>
#include <multiproc/detail/pool/task_runner.hpp>
#include <multiproc/detail/pool/task.hpp>
#include <multiproc/error.hpp>

namespace multiproc::detail {

// Encodes the next chunk of inputs, or returns nothing at the end of the input.
using NextChunk = std::function<std::optional<Call>()>;
// Hands a chunk to the pool, or fails it if the pool is gone.
using SubmitChunk = std::function<void(Call&&, TaskRunner::Done&&)>;

template <class R>
class ChunkStream {
 public:
  // At most `ahead` chunks submitted and not yet read; reading a result not there by `deadline`
  // throws Timeout.
  ChunkStream(SubmitChunk submit, NextChunk next, bool ordered, std::size_t ahead, Deadline deadline = Deadline::max())
      : submit_(std::move(submit)),
        next_(std::move(next)),
        ordered_(ordered),
        ahead_(ahead),
        deadline_(deadline),
        arrivals_(std::make_shared<Arrivals>()) {}

  // Submits chunks until `ahead` are out or the input ends. What reading the input throws is kept
  // for when the chunks read before it have been yielded.
  void submit_ahead() {
    while (!input_done_ && submitted_ - yielded_ < ahead_) {
      std::optional<Call> call;
      try {
        call = next_();
      } catch (...) {
        input_failure_ = std::current_exception();
      }
      if (!call) {
        input_done_ = true;
        next_ = nullptr;  // lets go of the input range
        break;
      }
      submit_(std::move(*call), [arrivals = arrivals_, chunk = submitted_](TaskOutcome&& outcome) {
        {
          std::scoped_lock lock(arrivals->mutex);
          arrivals->finished.emplace(chunk, std::move(outcome));
          arrivals->finish_order.push_back(chunk);
        }
        arrivals->changed.notify_all();
      });
      ++submitted_;
    }
  }

  // Makes front() the next result unless the stream has ended (then empty() is true). Throws the
  // failure of the first chunk that failed (in yield order) when it is reached.
  void fill() {
    while (buffer_.empty()) {
      submit_ahead();
      if (yielded_ == submitted_) {
        if (input_failure_) {  // everything before it yielded: now the input's own failure
          std::rethrow_exception(std::exchange(input_failure_, nullptr));
        }
        return;  // everything read: the stream ends
      }
      TaskOutcome outcome = next_outcome();
      ++yielded_;
      if (std::exception_ptr failure = failure_of(outcome)) {
        std::rethrow_exception(failure);
      }
      for (auto&& value : decode<std::vector<R>>(outcome.payload)) {  // auto: vector<bool> yields proxies
        buffer_.push_back(std::move(value));
      }
    }
  }
  [[nodiscard]] bool empty() const noexcept { return buffer_.empty(); }
  [[nodiscard]] const R& front() const { return buffer_.front(); }
  // Drops front() and fills again.
  void advance() {
    buffer_.pop_front();
    fill();
  }

 private:
  struct Arrivals {
    std::mutex mutex;
    std::condition_variable changed;
    std::map<std::size_t, TaskOutcome> finished;  // by chunk number
    std::deque<std::size_t> finish_order;
  };

  TaskOutcome next_outcome() {
    std::unique_lock lock(arrivals_->mutex);
    std::size_t chunk = 0;
    const auto arrived = [&] {
      if (ordered_) {
        chunk = yielded_;
        return arrivals_->finished.contains(chunk);
      }
      if (arrivals_->finish_order.empty()) {
        return false;
      }
      chunk = arrivals_->finish_order.front();
      return true;
    };
    if (!arrivals_->changed.wait_until(lock, deadline_, arrived)) {
      throw Timeout("multiproc: the next result of a map did not arrive within its timeout");
    }
    std::erase(arrivals_->finish_order, chunk);
    auto node = arrivals_->finished.extract(chunk);
    return std::move(node.mapped());
  }

  SubmitChunk submit_;
  NextChunk next_;
  bool ordered_;
  std::size_t ahead_;
  Deadline deadline_;
  std::shared_ptr<Arrivals> arrivals_;  // shared with the callbacks of the chunks in flight
  std::size_t submitted_ = 0;
  std::size_t yielded_ = 0;
  bool input_done_ = false;
  std::exception_ptr input_failure_;
  std::deque<R> buffer_;
};

}  // namespace multiproc::detail

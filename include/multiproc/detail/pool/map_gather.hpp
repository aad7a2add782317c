#pragma once
// Internal: how Pool::map gathers the results of its chunks.
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <multiproc/codec.hpp>
#include <multiproc/detail/pool/task_runner.hpp>
#include <multiproc/detail/pool/result_state.hpp>

namespace multiproc::detail {

// Where the chunks of one map() land: each chunk's results in place, by input position; the whole
// map completes when the last chunk does. It keeps itself alive (`self`) until then, so that each
// chunk's callback holds only a pointer and an index (small enough for std::function to store
// without allocating).
template <class R>
struct MapGather {
  std::mutex mutex;
  std::vector<std::optional<R>> values;  // by input position
  std::size_t chunk_size = 0;
  std::size_t left = 0;
  std::exception_ptr failure;
  std::shared_ptr<ResultState<std::vector<R>>> state;
  std::shared_ptr<MapGather> self;

  void chunk_done(std::size_t chunk, TaskOutcome&& outcome) {
    std::exception_ptr chunk_failure = failure_of(outcome);
    std::vector<R> chunk_values;
    if (!chunk_failure) {
      try {
        chunk_values = decode<std::vector<R>>(outcome.payload);
      } catch (...) {
        chunk_failure = std::current_exception();
      }
    }
    std::shared_ptr<MapGather> keep;  // declared first: outlives the lock on our own mutex
    std::scoped_lock lock(mutex);
    const std::size_t first = chunk * chunk_size;
    for (std::size_t k = 0; k < chunk_values.size() && first + k < values.size(); ++k) {
      values[first + k] = std::move(chunk_values[k]);
    }
    if (chunk_failure && !failure) {
      failure = chunk_failure;
    }
    if (--left == 0) {
      keep = std::move(self);
      std::vector<R> flat;
      if (!failure) {
        flat.reserve(values.size());
        for (auto& value : values) {
          flat.push_back(std::move(*value));
        }
      }
      state->complete(std::move(flat), failure);
    }
  }
};

}  // namespace multiproc::detail

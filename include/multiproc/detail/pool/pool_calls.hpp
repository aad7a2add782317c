#pragma once
// Internal: the typed calls of BasicPool and BasicExecutor, over any TaskRunner: one call whose
// result is decoded into a ResultState, a map split into chunks and gathered back in input order,
// a stream's way to submit while its pool lives, and Python's callback/error_callback.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <memory>
#include <ranges>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <multiproc/codec.hpp>
#include <multiproc/detail/pool/map_gather.hpp>
#include <multiproc/detail/pool/result_state.hpp>
#include <multiproc/detail/pool/result_stream.hpp>
#include <multiproc/detail/pool/task.hpp>
#include <multiproc/detail/pool/task_runner.hpp>
#include <multiproc/error.hpp>

namespace multiproc::detail {

template <class R>
using Hook = typename ResultState<R>::Hook;

// callback(value) or error_callback(error), as a hook that runs before the result is published.
template <class R, class Callback, class ErrorCallback>
Hook<R> callback_hook(Callback callback, ErrorCallback error_callback) {
  return [callback = std::move(callback), error_callback = std::move(error_callback)](
             const Stored<R>& value, const std::exception_ptr& error) mutable {
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
std::pair<std::shared_ptr<ResultState<R>>, std::uint64_t> start_call(TaskRunner& runner, std::string_view caller,
                                                                      Call call, Hook<R> hook = {}) {
  runner.require_accepting(caller);
  auto state = std::make_shared<ResultState<R>>();
  state->set_hook(std::move(hook));
  const std::uint64_t id = runner.submit(std::move(call), [state](TaskOutcome&& outcome) {
    std::exception_ptr failure = failure_of(outcome);
    Stored<R> value{};
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
inline std::size_t default_chunksize(std::size_t length, int processes) {
  const std::size_t per = static_cast<std::size_t>(std::max(1, processes)) * 4;
  return std::max<std::size_t>(1, (length + per - 1) / per);
}

// map (Unpack false) or starmap (true): every input read now, sent in chunks of `chunksize` (0:
// Python's default), the results gathered in input order into the returned state.
template <bool Unpack, class F, class Inputs, class R = chunk_result_t<F, std::ranges::range_value_t<Inputs>, Unpack>>
std::shared_ptr<ResultState<std::vector<R>>> start_map(TaskRunner& runner, std::string_view caller, F f,
                                                       Inputs&& inputs, std::size_t chunksize,
                                                       Hook<std::vector<R>> hook = {}) {
  using Input = std::ranges::range_value_t<Inputs>;
  runner.require_accepting(caller);
  std::vector<Input> all;  // filled by a loop: C++20 ranges (iota of long long) lack C++17 iterators
  if constexpr (std::ranges::sized_range<Inputs>) {
    all.reserve(static_cast<std::size_t>(std::ranges::size(inputs)));
  }
  for (auto&& input : inputs) {
    all.push_back(chunk_input(std::forward<decltype(input)>(input)));
  }
  const std::size_t size = chunksize > 0 ? chunksize : default_chunksize(all.size(), runner.processes());
  const std::size_t count = (all.size() + size - 1) / size;
  auto state = std::make_shared<ResultState<std::vector<R>>>();
  state->set_hook(std::move(hook));
  if (count == 0) {
    state->complete({}, nullptr);
    return state;
  }
  auto gather = std::make_shared<MapGather<R>>();
  gather->values.resize(all.size());
  gather->chunk_size = size;
  gather->left = count;
  gather->state = state;
  gather->self = gather;
  std::vector<std::pair<Call, TaskRunner::Done>> calls;
  calls.reserve(count);
  std::vector<Input> chunk;
  for (std::size_t c = 0; c < count; ++c) {
    const auto first = all.begin() + static_cast<std::ptrdiff_t>(c * size);
    chunk.assign(std::make_move_iterator(first),
                 std::make_move_iterator(first + static_cast<std::ptrdiff_t>(std::min(size, all.size() - c * size))));
    calls.emplace_back(make_chunk_call<F, Input, Unpack>(f, chunk),
                       [g = gather.get(), c](TaskOutcome&& outcome) { g->chunk_done(c, std::move(outcome)); });
  }
  try {
    runner.submit_all(std::move(calls));
  } catch (...) {
    gather->self.reset();  // no chunk was taken, so none will complete it
    throw;
  }
  return state;
}

// Hands a stream's chunks to its runner while the runner exists: a stream outlives its pool only
// to fail cleanly (its unsubmitted chunks fail with BrokenPool).
inline SubmitChunk submit_while_alive(std::weak_ptr<TaskRunner> runner) {
  return [runner = std::move(runner)](Call&& call, TaskRunner::Done&& done) {
    if (const auto alive = runner.lock()) {
      alive->submit(std::move(call), std::move(done));
    } else {
      done(TaskOutcome::failed(TaskOutcome::Kind::broken_pool,
                               "multiproc: the pool was destroyed before this part of the map was read"));
    }
  };
}

}  // namespace multiproc::detail

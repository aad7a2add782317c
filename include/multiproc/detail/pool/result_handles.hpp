#pragma once
// Internal: lets a pool that lives outside pool.hpp and executor.hpp (multiproc::mpi) hand its users
// the very types the local pools do: AsyncResult, ResultStream and Future, built on a ResultState
// it completes and a submit (or cancel) function of its own. So as_completed, wait, and code
// written against these types work the same whichever pool made them.
#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

#include <multiproc/executor.hpp>
#include <multiproc/pool.hpp>

namespace multiproc::detail {

struct ResultHandles {
  template <class R>
  static AsyncResult<R> async_result(std::shared_ptr<ResultState<R>> state) {
    return AsyncResult<R>(std::move(state));
  }
  // Results of chunks that `next` encodes and `submit` runs, at most `ahead` chunks in flight.
  template <class R>
  static ResultStream<R> stream(SubmitChunk submit, NextChunk next,
                                bool ordered, std::size_t ahead) {
    return ResultStream<R>(ChunkStream<R>(std::move(submit), std::move(next), ordered, ahead));
  }
  template <class R>
  static Future<R> future(std::shared_ptr<ResultState<R>> state, std::function<bool()> cancel) {
    return Future<R>(std::move(state), std::move(cancel));
  }
};

}  // namespace multiproc::detail

#pragma once
// Internal: reading the inputs of imap and Executor::map chunk by chunk, one range or several in
// step (Python's map(fn, *iterables): the shortest range ends it, each call gets one item of each).
#include <algorithm>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <multiproc/detail/pool/task.hpp>

namespace multiproc::detail {

// The ranges (owned, or referred to when given as lvalues) and where reading them has got to. Never moved once made (the iterators point
// into the ranges): it lives behind a shared_ptr.
template <std::ranges::input_range... Ranges>
  requires(sizeof...(Ranges) >= 1)
class InputSource {
 public:
  // One range: its values. Several: a tuple of one value of each, unpacked into the call.
  static constexpr bool unpack = sizeof...(Ranges) > 1;
  using Input = std::conditional_t<unpack, std::tuple<std::ranges::range_value_t<Ranges>...>,
                                   std::ranges::range_value_t<std::tuple_element_t<0, std::tuple<Ranges...>>>>;

  explicit InputSource(Ranges&&... ranges)
      : ranges_(std::forward<Ranges>(ranges)...),
        next_(std::apply([](auto&... range) { return std::tuple{std::ranges::begin(range)...}; }, ranges_)) {}
  InputSource(const InputSource&) = delete;
  InputSource& operator=(const InputSource&) = delete;

  [[nodiscard]] bool at_end() {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return ((std::get<I>(next_) == std::ranges::end(std::get<I>(ranges_))) || ...);
    }(std::index_sequence_for<Ranges...>{});
  }
  Input take() {
    Input input = std::apply([](auto&... it) { return Input(chunk_input(*it)...); }, next_);
    std::apply([](auto&... it) { (++it, ...); }, next_);
    return input;
  }

 private:
  std::tuple<Ranges...> ranges_;
  std::tuple<std::ranges::iterator_t<Ranges>...> next_;
};

// A ResultStream's NextChunk: the next chunk of up to `size` inputs, encoded as a call of `f`, or
// nothing at the end. If reading the input throws part-way through a chunk, the part read goes
// out first and the exception comes at the next call.
template <class F, class Source>
class ChunkReader {
 public:
  ChunkReader(F f, std::shared_ptr<Source> source, std::size_t size) : f_(f), source_(std::move(source)), size_(size) {}

  std::optional<Call> operator()() {
    if (failure_) {
      std::rethrow_exception(failure_);
    }
    std::vector<typename Source::Input> chunk;
    try {
      while (chunk.size() < size_ && !source_->at_end()) {
        chunk.push_back(source_->take());
      }
    } catch (...) {
      if (chunk.empty()) {
        throw;
      }
      failure_ = std::current_exception();
    }
    if (chunk.empty()) {
      return std::nullopt;
    }
    return make_chunk_call<F, typename Source::Input, Source::unpack>(f_, chunk);
  }

 private:
  F f_;
  std::shared_ptr<Source> source_;
  std::size_t size_;
  std::exception_ptr failure_;
};

template <class F, class... Ranges>
ChunkReader<F, InputSource<Ranges...>> read_chunks(F f, std::size_t chunksize, Ranges&&... ranges) {
  return ChunkReader<F, InputSource<Ranges...>>(
      f, std::make_shared<InputSource<Ranges...>>(std::forward<Ranges>(ranges)...), std::max<std::size_t>(chunksize, 1));
}

}  // namespace multiproc::detail

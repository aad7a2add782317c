#pragma once
// Internal: how a pool call travels to a worker and its outcome back. A task names a function by
// two addresses, valid in every worker because workers are forked from the pool's process: the
// user's function and an invoker instantiated for its signature, which decodes the arguments,
// calls it, and encodes the result.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <multiproc/codec.hpp>

namespace multiproc::detail {

// Decodes `args`, calls the function at `function`, and replaces `result` with the encoded outcome.
using Invoker = void (*)(std::uintptr_t function, std::span<const std::byte> args, std::vector<std::byte>& result);

struct TaskMessage {
  std::uint64_t id = 0;  // 0: the worker is to leave
  std::uint64_t invoker = 0;
  std::uint64_t function = 0;
  std::vector<std::byte> args;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, invoker, function, args);
  }
};

enum class Outcome : std::uint8_t {
  ready,        // the worker's initializer (if any) succeeded: it takes tasks from now on
  value,        // `payload` is the encoded result
  error,        // the task threw: `error_type` and `error_message`
  init_failed,  // the initializer threw in this worker: the pool is broken
  retiring,     // the worker reached maxtasksperchild and leaves
  wake,         // no worker sent it: the pool's own threads wake its manager
};

struct ResultMessage {
  std::uint64_t id = 0;
  std::uint32_t worker = 0;
  Outcome outcome = Outcome::wake;
  std::vector<std::byte> payload;
  std::string error_type;
  std::string error_message;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, worker, outcome, payload, error_type, error_message);
  }
};

// A function pointer, from a function pointer or a capture-less lambda.
template <class F>
concept task_function = requires(F f) {
  { +f };
} && std::is_pointer_v<decltype(+std::declval<F>())> && std::is_function_v<std::remove_pointer_t<decltype(+std::declval<F>())>>;

template <class F>
using function_pointer_t = decltype(+std::declval<F>());

// The invoker for calling F with the arguments Args... (decoded as a std::tuple<Args...>).
template <class Fn, class... Args>
void invoke_encoded(std::uintptr_t function, std::span<const std::byte> args, std::vector<std::byte>& result) {
  auto fn = reinterpret_cast<Fn>(function);
  auto decoded = decode<std::tuple<std::decay_t<Args>...>>(args);
  using R = decltype(std::apply(fn, std::move(decoded)));
  if constexpr (std::is_void_v<R>) {
    std::apply(fn, std::move(decoded));
    result.clear();
  } else {
    encode(std::apply(fn, std::move(decoded)), result);
  }
}

// What a map (Unpack false) or starmap (Unpack true) of F over Input yields per input.
template <class F, class Input, bool Unpack>
struct chunk_result {
  using type = std::invoke_result_t<function_pointer_t<F>, Input>;
};
template <class F, class Input>
struct chunk_result<F, Input, true> {
  using type = decltype(std::apply(std::declval<function_pointer_t<F>>(), std::declval<Input>()));
};
template <class F, class Input, bool Unpack>
using chunk_result_t = typename chunk_result<F, Input, Unpack>::type;

// The invoker for a chunk of map(): arguments are a std::vector of inputs (each applied as one
// argument, or unpacked from a tuple for starmap); the result is a std::vector of outputs.
template <class Fn, class Input, bool Unpack>
void invoke_chunk(std::uintptr_t function, std::span<const std::byte> args, std::vector<std::byte>& result) {
  auto fn = reinterpret_cast<Fn>(function);
  auto inputs = decode<std::vector<Input>>(args);
  auto call = [&](Input& input) {
    if constexpr (Unpack) {
      return std::apply(fn, std::move(input));
    } else {
      return fn(std::move(input));
    }
  };
  std::vector<decltype(call(inputs.front()))> outputs;
  outputs.reserve(inputs.size());
  for (Input& input : inputs) {
    outputs.push_back(call(input));
  }
  encode(outputs, result);
}

// An encoded call, ready to go to a worker.
struct Call {
  Invoker invoker;
  std::uintptr_t function;
  std::vector<std::byte> args;
};

template <class F, class... Args>
Call make_call(F f, Args&&... args) {
  using Fn = function_pointer_t<F>;
  Call call{&invoke_encoded<Fn, Args...>, reinterpret_cast<std::uintptr_t>(+f), {}};
  encode(std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...), call.args);
  return call;
}

template <class F, class Input, bool Unpack>
Call make_chunk_call(F f, const std::vector<Input>& inputs) {
  using Fn = function_pointer_t<F>;
  Call call{&invoke_chunk<Fn, Input, Unpack>, reinterpret_cast<std::uintptr_t>(+f), {}};
  encode(inputs, call.args);
  return call;
}

}  // namespace multiproc::detail

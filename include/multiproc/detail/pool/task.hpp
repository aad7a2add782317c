#pragma once
// Internal: how a pool call travels to a worker and its outcome back. A task names a function by
// two addresses, valid in every worker because workers are forked from the pool's process: the
// user's function and an invoker instantiated for its signature, which decodes the arguments,
// calls it, and encodes the result.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <multiproc/codec.hpp>
#include <multiproc/error.hpp>
#include <multiproc/export.hpp>
#include <multiproc/segment.hpp>

namespace multiproc::detail {

// Decodes `args`, calls the function at `function`, and replaces `result` with the encoded outcome.
using Invoker = void (*)(std::uintptr_t function, std::span<const std::byte> args, std::vector<std::byte>& result);

// Appends the bytes of a trivially copyable header, then `tail`; and the reverse, checking sizes.
template <class Header>
void write_flat(std::vector<std::byte>& out, const Header& header, std::span<const std::byte> tail) {
  out.resize(sizeof(Header) + tail.size());
  std::memcpy(out.data(), &header, sizeof(Header));
  if (!tail.empty()) {
    std::memcpy(out.data() + sizeof(Header), tail.data(), tail.size());
  }
}
// `tail_size(header)`: how many bytes must follow the header.
template <class Header, class TailSize>
Header read_header(std::span<const std::byte> in, TailSize tail_size) {
  Header header;
  if (in.size() < sizeof(Header)) {
    throw DecodeError("multiproc::Pool: a message shorter than its header");
  }
  std::memcpy(&header, in.data(), sizeof(Header));
  if (in.size() - sizeof(Header) != tail_size(header)) {
    throw DecodeError("multiproc::Pool: a message whose size does not match its header");
  }
  return header;
}

// The envelopes travel in a flat format of their own (a header, then the bytes): they go through
// the pool's channels for every task, where cereal's generality is pure cost.

// A task, as the manager writes it into a worker's inbox: this header, then `args_size` bytes of
// encoded arguments (the record's second part, copied straight from the Call).
struct TaskHeader {
  std::uint64_t id;        // stop_task_id: the worker is to leave
  std::uint64_t invoker;   // an Invoker's address in the pool's process, valid in its forked workers
  std::uint64_t function;  // the user's function, likewise
  std::uint64_t args_size;

  // The parts of the inbox record for this header and `args`.
  [[nodiscard]] std::array<std::span<const std::byte>, 2> record_parts(std::span<const std::byte> args) const noexcept {
    return {std::as_bytes(std::span(this, 1)), args};
  }
  // The header of a record read from an inbox, checked against the record's size; its arguments
  // are the bytes after it (a worker reads them in place).
  static TaskHeader read(std::span<const std::byte> record) {
    return read_header<TaskHeader>(record, [](const TaskHeader& header) { return header.args_size; });
  }
};
static_assert(sizeof(TaskHeader) == 32 && std::is_trivially_copyable_v<TaskHeader>);
// The id of the message that tells a worker to leave; real tasks count from 1.
inline constexpr std::uint64_t stop_task_id = 0;

enum class Outcome : std::uint8_t {
  ready,        // the worker's initializer (if any) succeeded: it takes tasks from now on
  value,        // `payload` is the encoded result
  error,        // the task threw: `error_type` and `error_message`
  init_failed,  // the initializer threw in this worker: the pool is broken
  retiring,     // the worker reached maxtasksperchild and leaves
};

struct ResultMessage {
  std::uint64_t id = 0;
  std::uint32_t worker = 0;
  Outcome outcome = Outcome::value;
  std::vector<std::byte> payload;
  std::string error_type;
  std::string error_message;
  std::uint64_t run_nanos = 0;  // how long the task ran: the manager sizes inboxes by it

  struct Header {
    std::uint64_t id;
    std::uint32_t worker;
    std::uint32_t outcome;
    std::uint64_t payload_size, type_size, message_size, run_nanos;
  };
  static void encode_bytes(const ResultMessage& m, std::vector<std::byte>& out) {
    const Header h{m.id,
                   m.worker,
                   static_cast<std::uint32_t>(m.outcome),
                   m.payload.size(),
                   m.error_type.size(),
                   m.error_message.size(),
                   m.run_nanos};
    write_flat(out, h, m.payload);
    const auto text = [&](const std::string& s) {
      const auto* bytes = reinterpret_cast<const std::byte*>(s.data());
      out.insert(out.end(), bytes, bytes + s.size());
    };
    text(m.error_type);
    text(m.error_message);
  }
  static ResultMessage decode_bytes(std::span<const std::byte> in) {
    const auto h = read_header<Header>(in, [](const Header& header) {
      return header.payload_size + header.type_size + header.message_size;  // each bounded by in.size()
    });
    if (h.payload_size > in.size() || h.type_size > in.size() || h.message_size > in.size() ||
        h.outcome > static_cast<std::uint32_t>(Outcome::retiring)) {
      throw DecodeError("multiproc::Pool: a corrupt result message");
    }
    auto rest = in.subspan(sizeof(Header));
    const auto take = [&](std::size_t n) {
      const auto part = rest.first(n);
      rest = rest.subspan(n);
      return part;
    };
    const auto payload = take(h.payload_size);
    const auto type = take(h.type_size);
    const auto message = take(h.message_size);
    return ResultMessage{h.id, h.worker, static_cast<Outcome>(h.outcome),
                         std::vector<std::byte>(payload.begin(), payload.end()),
                         std::string(reinterpret_cast<const char*>(type.data()), type.size()),
                         std::string(reinterpret_cast<const char*>(message.data()), message.size()),
                         h.run_nanos};
  }
};

// A function pointer, from a function pointer or a capture-less lambda.
template <class F>
concept task_function = requires(F f) {
  { +f };
} && std::is_pointer_v<decltype(+std::declval<F>())> && std::is_function_v<std::remove_pointer_t<decltype(+std::declval<F>())>>;

template <class F>
using function_pointer_t = decltype(+std::declval<F>());

// "std::vector<int>" for typeid(std::vector<int>): for messages.
MULTIPROC_API std::string type_name(const std::type_info& type);

// Encodes a task's result; a result that cannot be encoded fails its task with an error that
// names its type (Python's MaybeEncodingError), not with whatever the codec met inside it.
template <class T>
void encode_result(const T& value, std::vector<std::byte>& out) {
  try {
    encode(value, out);
  } catch (const std::exception& e) {
    throw ValueError("multiproc::Pool: the task's result, a " + type_name(typeid(T)) + ", cannot be encoded: " + e.what());
  }
}

// The invoker for calling F with the arguments Args... (decoded as a std::tuple<Args...>).
template <class Fn, class... Args>
void invoke_encoded(std::uintptr_t function, std::span<const std::byte> args, std::vector<std::byte>& result) {
  using Arguments = std::tuple<std::decay_t<Args>...>;
  using R = decltype(std::apply(std::declval<Fn>(), std::declval<Arguments>()));
  auto fn = reinterpret_cast<Fn>(function);
  auto decoded = decode<Arguments>(args);
  if constexpr (std::is_void_v<R>) {
    std::apply(fn, std::move(decoded));
    result.clear();
  } else {
    encode_result(std::apply(fn, std::move(decoded)), result);
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
  encode_result(outputs, result);
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
  // Encoded from references: no copy of the arguments (a shared object, which cannot be copied,
  // travels by its name; see codec.hpp). The bytes are those of a std::tuple<std::decay_t<Args>...>.
  static_assert(bitwise_message<std::tuple<const std::decay_t<Args>&...>> == bitwise_message<std::tuple<std::decay_t<Args>...>>,
                "the references must encode as the values decode");
  encode(std::tuple<const std::decay_t<Args>&...>(args...), call.args);
  return call;
}

// An input as a chunk holds it: a copy, or for a shared object (which cannot be copied) a handle
// of its own onto the same object, opened by name (see codec.hpp: it travels by that name).
template <class V>
decltype(auto) chunk_input(V&& value) {
  using T = std::remove_cvref_t<V>;
  if constexpr (travels_by_name<T> && std::is_lvalue_reference_v<V>) {
    return T(open, value.name_to_travel());
  } else {
    return std::forward<V>(value);
  }
}

template <class F, class Input, bool Unpack>
Call make_chunk_call(F f, const std::vector<Input>& inputs) {
  using Fn = function_pointer_t<F>;
  Call call{&invoke_chunk<Fn, Input, Unpack>, reinterpret_cast<std::uintptr_t>(+f), {}};
  encode(inputs, call.args);
  return call;
}

}  // namespace multiproc::detail

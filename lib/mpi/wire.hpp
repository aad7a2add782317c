#pragma once
// Internal: the messages between the client (rank 0) and the serving ranks of a cluster pool.
//
//   server -> client  hello    once: its local worker count, host name, and the fingerprints of
//                              the objects it loaded (what the client may name in tasks)
//   client -> server  tasks    a batch of tasks, one record each (many per message)
//   server -> client  results  a batch of outcomes, one record each (many per message)
//   client -> server  stop     no more tasks; `terminate`: drop what is running
//   server -> client  bye      the server's last message: it sends nothing after it
//
// Records are fixed-layout headers followed by their bytes. What arrives is never trusted: every
// size is checked against the bytes that are left, and a bad message is a DecodeError.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <multiproc/detail/pool/pool_core.hpp>
#include <multiproc/error.hpp>

#include "mpi/loaded_code.hpp"

namespace multiproc::mpi::detail {

using multiproc::detail::TaskOutcome;

enum Tag : int { hello_tag = 1, tasks_tag = 2, results_tag = 3, stop_tag = 4, bye_tag = 5 };

constexpr std::uint32_t hello_magic = 0x6d706d31;  // "mpm1": also the protocol's version

// Reads a message front to back; every read is checked against what is left.
class WireReader {
 public:
  explicit WireReader(std::span<const std::byte> message) : rest_(message) {}
  template <class T>
  T take() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, bytes(sizeof(T)).data(), sizeof(T));
    return value;
  }
  std::span<const std::byte> bytes(std::uint64_t count) {
    if (count > rest_.size()) {
      throw DecodeError("multiproc::mpi: a message from another rank is truncated or corrupt (wanted " +
                        std::to_string(count) + " bytes, " + std::to_string(rest_.size()) + " left)");
    }
    const auto part = rest_.first(count);
    rest_ = rest_.subspan(count);
    return part;
  }
  [[nodiscard]] bool done() const noexcept { return rest_.empty(); }

 private:
  std::span<const std::byte> rest_;
};

template <class T>
void append_value(std::vector<std::byte>& out, const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  const auto* bytes = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}
inline void append_bytes(std::vector<std::byte>& out, std::span<const std::byte> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}
inline std::span<const std::byte> bytes_of(const std::string& text) { return std::as_bytes(std::span(text)); }
inline std::string text_of(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

struct Hello {
  std::uint32_t local_workers = 0;
  std::string host;
  std::vector<std::uint64_t> objects;  // fingerprints

  struct Header {
    std::uint32_t magic, local_workers, host_size, object_count;
  };
  [[nodiscard]] std::vector<std::byte> encode() const {
    std::vector<std::byte> out;
    append_value(out, Header{hello_magic, local_workers, static_cast<std::uint32_t>(host.size()),
                             static_cast<std::uint32_t>(objects.size())});
    for (const std::uint64_t object : objects) {
      append_value(out, object);
    }
    append_bytes(out, bytes_of(host));
    return out;
  }
  static Hello decode(std::span<const std::byte> message) {
    WireReader in(message);
    const auto header = in.take<Header>();
    if (header.magic != hello_magic) {
      throw DecodeError("multiproc::mpi: a serving rank speaks another protocol (is it running another build?)");
    }
    Hello hello{header.local_workers, {}, {}};
    for (std::uint32_t i = 0; i < header.object_count; ++i) {
      hello.objects.push_back(in.take<std::uint64_t>());
    }
    hello.host = text_of(in.bytes(header.host_size));
    return hello;
  }
};

struct TaskHeader {
  std::uint64_t id;
  CodeName invoker;
  CodeName function;
  std::uint64_t args_size;
};

inline void append_task(std::vector<std::byte>& batch, const TaskHeader& header, std::span<const std::byte> args) {
  append_value(batch, header);
  append_bytes(batch, args);
}

// Calls `each(header, args)` for every task of a batch, in order.
template <class Each>
void for_each_task(std::span<const std::byte> batch, Each each) {
  WireReader in(batch);
  while (!in.done()) {
    const auto header = in.take<TaskHeader>();
    each(header, in.bytes(header.args_size));
  }
}

struct ResultHeader {
  std::uint64_t id;
  std::uint32_t kind;  // TaskOutcome::Kind
  std::uint32_t reserved;
  std::uint64_t payload_size, type_size, message_size;
};

inline void append_result(std::vector<std::byte>& batch, std::uint64_t id, const TaskOutcome& outcome) {
  append_value(batch, ResultHeader{id, static_cast<std::uint32_t>(outcome.kind), 0, outcome.payload.size(),
                                   outcome.error_type.size(), outcome.message.size()});
  append_bytes(batch, outcome.payload);
  append_bytes(batch, bytes_of(outcome.error_type));
  append_bytes(batch, bytes_of(outcome.message));
}

// Calls `each(id, outcome)` for every result of a batch, in order.
template <class Each>
void for_each_result(std::span<const std::byte> batch, Each each) {
  WireReader in(batch);
  while (!in.done()) {
    const auto header = in.take<ResultHeader>();
    if (header.kind > static_cast<std::uint32_t>(TaskOutcome::Kind::cancelled)) {
      throw DecodeError("multiproc::mpi: a result of unknown kind " + std::to_string(header.kind));
    }
    const auto payload = in.bytes(header.payload_size);
    TaskOutcome outcome{static_cast<TaskOutcome::Kind>(header.kind), {payload.begin(), payload.end()}, {}, {}};
    outcome.error_type = text_of(in.bytes(header.type_size));
    outcome.message = text_of(in.bytes(header.message_size));
    each(header.id, std::move(outcome));
  }
}

}  // namespace multiproc::mpi::detail

#pragma once
// Codec: how Queue and Pipe turn a message into bytes and back.
//
// A trivially copyable T is copied as its bytes (the other process must use the same type; its
// pointers, if any, mean nothing there). Any other T goes through cereal (libcereal-dev): strings,
// standard containers, and user types with a `serialize` member as cereal defines it:
//
//   struct Order { std::string symbol; std::vector<int> sizes;
//                  template <class Archive> void serialize(Archive& ar) { ar(symbol, sizes); } };
//
// The bytes are those of cereal's BinaryOutputArchive, written straight into a byte vector.
// Decoding never trusts its input: every length is checked against the bytes that remain, so a
// corrupt or hostile message gives DecodeError, never a huge allocation or a read out of bounds.
// (One consequence: a container of empty, zero-byte elements cannot claim more elements than
// there are bytes left.)
//
// A named shared object (Queue, Event, Lock, RLock, Semaphore, Condition, Barrier, Value, Array,
// SharedDict, SharedList, the rings) travels by its name: the receiver opens it, so both sides
// then use the same object (Python sends such objects by pickling or through a manager). That
// holds for a message, a task's argument, map input or result, and inside a tuple or vector. An
// anonymous object cannot travel (ValueError at the send: only children forked after it share it),
// nor one whose meaning lives in its process (a Value guarded by a Lock passed in, a Barrier with
// an action). Other containers of shared objects (a map of Locks) are not supported.
#include <concepts>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <cereal/cereal.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/set.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/unordered_map.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>

#include <multiproc/error.hpp>
#include <multiproc/object_tags.hpp>

namespace multiproc {

// A shared object that travels by name: `name_to_travel()` gives its name (or throws ValueError
// saying why it cannot travel) and `T(open, name)` opens it.
template <class T>
concept travels_by_name = requires(const T& object) {
  { object.name_to_travel() } -> std::convertible_to<std::string>;
} && std::constructible_from<T, open_t, std::string_view>;

namespace detail {

class CodecWriter : public cereal::OutputArchive<CodecWriter, cereal::AllowEmptyClassElision> {
 public:
  explicit CodecWriter(std::vector<std::byte>& out) : OutputArchive(this), out_(out) {}
  void write_bytes(const void* data, std::size_t size) {
    // resize + memcpy rather than insert: g++ 12 warns (wrongly) about insert's memmove at -O2.
    // Nothing to copy is skipped: an empty container's data() may be null, and memcpy with a null
    // pointer is undefined even for zero bytes.
    if (size == 0) {
      return;
    }
    const std::size_t at = out_.size();
    out_.resize(at + size);
    std::memcpy(out_.data() + at, data, size);
  }

 private:
  std::vector<std::byte>& out_;
};

class CodecReader : public cereal::InputArchive<CodecReader, cereal::AllowEmptyClassElision> {
 public:
  explicit CodecReader(std::span<const std::byte> in) : InputArchive(this), rest_(in) {}
  void read_bytes(void* data, std::size_t size) {
    if (size > rest_.size()) {
      throw DecodeError("multiproc codec: message truncated (wanted " + std::to_string(size) + " more bytes, " +
                        std::to_string(rest_.size()) + " left)");
    }
    if (size != 0) {  // see write_bytes: no memcpy with a possibly null pointer
      std::memcpy(data, rest_.data(), size);
      rest_ = rest_.subspan(size);
    }
  }
  [[nodiscard]] std::size_t bytes_left() const noexcept { return rest_.size(); }

 private:
  std::span<const std::byte> rest_;
};

// The primitives cereal asks an archive for, in the binary archive's format.
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_SAVE_FUNCTION_NAME(CodecWriter& ar, const T& t) {
  ar.write_bytes(&t, sizeof t);
}
template <class T>
std::enable_if_t<std::is_arithmetic_v<T>> CEREAL_LOAD_FUNCTION_NAME(CodecReader& ar, T& t) {
  ar.read_bytes(&t, sizeof t);
}
template <class Archive, class T>
CEREAL_ARCHIVE_RESTRICT(CodecReader, CodecWriter)
CEREAL_SERIALIZE_FUNCTION_NAME(Archive& ar, cereal::NameValuePair<T>& t) {
  ar(t.value);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(CodecWriter& ar, const cereal::SizeTag<T>& t) {
  ar(t.size);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(CodecReader& ar, cereal::SizeTag<T>& t) {
  ar(t.size);
  // Every element takes at least one byte, so a count above the bytes left is a lie: refuse it
  // before cereal sizes a container by it.
  if (static_cast<std::size_t>(t.size) > ar.bytes_left()) {
    throw DecodeError("multiproc codec: a length of " + std::to_string(t.size) + " exceeds the " +
                      std::to_string(ar.bytes_left()) + " bytes left in the message");
  }
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(CodecWriter& ar, const cereal::BinaryData<T>& data) {
  ar.write_bytes(data.data, static_cast<std::size_t>(data.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(CodecReader& ar, cereal::BinaryData<T>& data) {
  ar.read_bytes(data.data, static_cast<std::size_t>(data.size));
}

// A shared object inside a message: its name, as a string.
template <travels_by_name T>
void CEREAL_SAVE_FUNCTION_NAME(CodecWriter& ar, const T& object) {
  const std::string name = object.name_to_travel();
  ar(name);
}

// Messages with a shared object inside (the object itself, a tuple or a vector holding some) are
// read part by part, each built as it is read: a shared object has no empty state to load into.
template <class T>
struct carries_shared_objects : std::bool_constant<travels_by_name<T>> {};
template <class... Ts>
struct carries_shared_objects<std::tuple<Ts...>> : std::bool_constant<(carries_shared_objects<Ts>::value || ...)> {};
template <class T>
struct carries_shared_objects<std::vector<T>> : carries_shared_objects<T> {};

template <class T>
T read_part(CodecReader& archive);

template <class... Ts>
std::tuple<Ts...> read_parts(CodecReader& archive, std::type_identity<std::tuple<Ts...>> /*unused*/) {
  return std::tuple<Ts...>{read_part<Ts>(archive)...};  // braced: read left to right
}
template <class T>
std::vector<T> read_parts(CodecReader& archive, std::type_identity<std::vector<T>> /*unused*/) {
  cereal::size_type count = 0;
  archive(cereal::make_size_tag(count));  // checked against the bytes left (see SizeTag above)
  std::vector<T> parts;
  parts.reserve(static_cast<std::size_t>(count));
  for (cereal::size_type i = 0; i < count; ++i) {
    parts.push_back(read_part<T>(archive));
  }
  return parts;
}

template <class T>
T read_part(CodecReader& archive) {
  if constexpr (travels_by_name<T>) {
    std::string name;
    archive(name);
    return T(open, name);
  } else if constexpr (carries_shared_objects<T>::value) {
    return read_parts(archive, std::type_identity<T>{});
  } else {
    T value{};
    archive(value);
    return value;
  }
}

}  // namespace detail

// True when T travels as its own bytes.
template <class T>
inline constexpr bool bitwise_message = std::is_trivially_copyable_v<T>;

// A type may instead bring its own byte format, for speed on a hot path:
//   static void encode_bytes(const T&, std::vector<std::byte>& out);   // replaces out
//   static T decode_bytes(std::span<const std::byte>);                  // throws DecodeError
template <class T>
concept own_byte_format = requires(const T& value, std::vector<std::byte>& out, std::span<const std::byte> in) {
  T::encode_bytes(value, out);
  { T::decode_bytes(in) } -> std::same_as<T>;
};

// Replaces `out` with the bytes of `value`.
template <class T>
void encode(const T& value, std::vector<std::byte>& out) {
  out.clear();
  if constexpr (own_byte_format<T>) {
    T::encode_bytes(value, out);
  } else if constexpr (bitwise_message<T>) {
    out.resize(sizeof(T));
    std::memcpy(out.data(), &value, sizeof(T));
  } else {
    detail::CodecWriter archive(out);
    archive(value);
  }
}

// The bytes of `value`, in a vector of their own.
template <class T>
std::vector<std::byte> encode(const T& value) {
  std::vector<std::byte> out;
  encode(value, out);
  return out;
}

// The T whose bytes `in` holds; DecodeError if they are not exactly one T.
template <class T>
T decode(std::span<const std::byte> in) {
  if constexpr (own_byte_format<T>) {
    return T::decode_bytes(in);
  } else if constexpr (bitwise_message<T>) {
    if (in.size() != sizeof(T)) {
      throw DecodeError("multiproc codec: " + std::to_string(in.size()) + " bytes cannot be a " +
                        std::to_string(sizeof(T)) + "-byte value");
    }
    T value;
    std::memcpy(&value, in.data(), sizeof(T));
    return value;
  } else if constexpr (detail::carries_shared_objects<T>::value) {
    detail::CodecReader archive(in);
    T value = [&] {
      try {
        return detail::read_part<T>(archive);
      } catch (const cereal::Exception& e) {
        throw DecodeError(std::string("multiproc codec: ") + e.what());
      }
    }();
    if (archive.bytes_left() != 0) {
      throw DecodeError("multiproc codec: " + std::to_string(archive.bytes_left()) + " bytes left after the message");
    }
    return value;
  } else {
    T value{};
    try {
      detail::CodecReader archive(in);
      archive(value);
      if (archive.bytes_left() != 0) {
        throw DecodeError("multiproc codec: " + std::to_string(archive.bytes_left()) + " bytes left after the message");
      }
    } catch (const cereal::Exception& e) {
      throw DecodeError(std::string("multiproc codec: ") + e.what());
    }
    return value;
  }
}

}  // namespace multiproc

CEREAL_SETUP_ARCHIVE_TRAITS(multiproc::detail::CodecReader, multiproc::detail::CodecWriter)

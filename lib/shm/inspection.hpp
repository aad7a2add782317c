#pragma once
// Internal: how each kind of object describes itself to `multiproc ls` and `multiproc inspect`
// (the registry layer), without the registry knowing any kind's private control block. Each kind's
// implementation registers a KindInspector for its ObjectKind when the library is loaded; the
// registry reads the segment (read-only, a snapshot) and hands it to the inspector of its kind.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <multiproc/segment.hpp>

namespace multiproc::detail {

// A read-only mapping of one named object whose header has been checked (header_problem() found
// nothing). Every read is bounds-checked: the bytes are another process's and may be hostile.
class SegmentSnapshot {
 public:
  SegmentSnapshot(const std::byte* base, std::uint64_t bytes, const SegmentHeader& header) noexcept
      : base_(base), bytes_(bytes), header_(header) {}

  [[nodiscard]] const SegmentHeader& header() const noexcept { return header_; }

  // A copy of the T at `offset`, or empty when it would not lie inside the first `limit` bytes.
  template <class T>
  [[nodiscard]] std::optional<T> read_at(std::uint64_t offset, std::uint64_t limit) const {
    static_assert(std::is_trivially_copyable_v<T>);
    if (offset > limit || limit - offset < sizeof(T) || limit > bytes_) {
      return std::nullopt;
    }
    T copy;
    std::memcpy(&copy, base_ + offset, sizeof(T));
    return copy;
  }
  // The prefix (control block) as a T, if it is at least that big.
  template <class T>
  [[nodiscard]] std::optional<T> control() const {
    if (header_.prefix_bytes < sizeof(T)) {
      return std::nullopt;
    }
    return read_at<T>(header_.prefix_offset, header_.prefix_offset + header_.prefix_bytes);
  }
  // The first element as a T, if the elements are Ts.
  template <class T>
  [[nodiscard]] std::optional<T> element() const {
    if (header_.element_size != sizeof(T) || header_.element_count < 1) {
      return std::nullopt;
    }
    return read_at<T>(header_.elements_offset, bytes_);
  }
  // The element bytes from `offset` (relative to the first element), at most `most`.
  [[nodiscard]] std::vector<std::byte> element_bytes(std::uint64_t offset, std::uint64_t most) const;

 private:
  const std::byte* base_;
  std::uint64_t bytes_;
  SegmentHeader header_;
};

// The fields an inspector reports, in order.
class FieldList {
 public:
  template <class V>
  void add(std::string key, V value) {
    if constexpr (std::is_same_v<V, bool>) {
      fields_.push_back({std::move(key), value});
    } else if constexpr (std::is_floating_point_v<V>) {
      fields_.push_back({std::move(key), static_cast<double>(value)});
    } else if constexpr (std::is_signed_v<V>) {
      fields_.push_back({std::move(key), static_cast<std::int64_t>(value)});
    } else if constexpr (std::is_unsigned_v<V>) {
      fields_.push_back({std::move(key), static_cast<std::uint64_t>(value)});
    } else {
      fields_.push_back({std::move(key), std::string(value)});
    }
  }
  [[nodiscard]] std::vector<StateField> take() noexcept { return std::move(fields_); }

 private:
  std::vector<StateField> fields_;
};

struct KindInspector {
  // The type a user wrote, from the demangled stored element type: a queue's message type rather
  // than its ring slot, nothing for objects whose elements are the library's own state.
  std::string (*shown_type)(const std::string& element);
  // Appends the live state; false when the control block does not fit where the header puts it.
  bool (*inspect)(const SegmentSnapshot& snapshot, FieldList& out);
};

// Called once per kind when the library loads (a namespace-scope initialiser in the kind's file).
// The table it fills is constant-initialised, so the order of those initialisers does not matter.
bool register_inspector(ObjectKind kind, KindInspector inspector) noexcept;
// The inspector of a kind recorded in a header; nullptr for a kind no part of the library
// registered (anonymous-only kinds, or a number this version does not know).
const KindInspector* inspector_of(std::uint32_t kind) noexcept;

// shown_type for kinds whose element type is the user's own (Value, Array, SpscRing).
inline std::string element_type_as_is(const std::string& element) { return element; }
// shown_type for kinds whose elements are the library's state (locks, events...): nothing.
inline std::string no_element_type(const std::string&) { return {}; }

}  // namespace multiproc::detail

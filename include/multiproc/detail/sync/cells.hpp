#pragma once
// Internal: the storage shared by Value, RawValue, Array and RawArray: one segment whose prefix
// holds a LockState (for the locked forms) and whose elements are `count` objects of T. A locked
// form may be guarded by a Lock the user passes in instead (Python's `lock=`); its own LockState
// then stays in the segment unused, so both kinds of handle open the same segment.
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include <multiproc/error.hpp>
#include <multiproc/lock.hpp>
#include <multiproc/segment.hpp>

namespace multiproc::detail {

struct NoLock {};

template <class T, bool Locked>
class Cells {
  static_assert(std::is_trivially_copyable_v<T>,
                "multiproc: the element type of Value/Array must be trivially copyable, because it lives "
                "in shared memory and other processes read its bytes as they are (no pointers, no "
                "std::string: use a fixed-size char array, or a Queue, whose codec serialises)");

 public:
  // Empty for an anonymous object.
  [[nodiscard]] const std::string& name() const noexcept { return segment_.name(); }
  // The name it travels by to another process (see codec.hpp). ValueError when anonymous, or when
  // guarded by a Lock passed in (the receiver would open it with its own lock).
  [[nodiscard]] const std::string& name_to_travel() const {
    if (borrowed_ != nullptr) {
      throw ValueError("multiproc: a Value or Array guarded by a Lock passed in cannot be sent to another process: open "
                       "it there by name with the same lock");
    }
    return segment_.name_to_travel("Value or Array");
  }

 protected:
  static Segment::Layout layout(ObjectKind kind, std::size_t count) {
    if constexpr (Locked) {
      return {kind, fingerprint_of<T>(), sizeof(LockState), alignof(LockState), count};
    } else {
      return {kind, fingerprint_of<T>(), 0, 1, count};
    }
  }

  // `fill(T* elements, std::size_t count)` constructs the elements of a segment the caller created.
  template <class Fill>
  static Segment::Initialiser initialiser(Fill fill) {
    return [fill = std::move(fill)](Segment& segment) {
      if constexpr (Locked) {
        Lock::initialise(*static_cast<LockState*>(segment.prefix()));
      }
      fill(static_cast<T*>(segment.elements()), segment.count());
    };
  }

  explicit Cells(Segment segment)
      : segment_(std::move(segment)), data_(static_cast<T*>(segment_.elements())), lock_(make_lock(segment_)) {}

  [[nodiscard]] std::size_t count() const noexcept { return segment_.count(); }

  // The lock that guards the elements: the user's, if given, else the segment's own.
  [[nodiscard]] Lock& guard() const noexcept
    requires Locked
  {
    return borrowed_ != nullptr ? *borrowed_ : lock_;
  }

  Segment segment_;
  T* data_;
  // A view of the LockState in the prefix. mutable: const readers such as load() take it too.
  [[no_unique_address]] mutable std::conditional_t<Locked, Lock, NoLock> lock_;
  // The user's lock (kept alive by the user), or nullptr.
  Lock* borrowed_ = nullptr;

 private:
  static auto make_lock(Segment& segment) {
    if constexpr (Locked) {
      return Lock(Lock::borrow_t{}, *static_cast<LockState*>(segment.prefix()));
    } else {
      return NoLock{};
    }
  }
};

}  // namespace multiproc::detail

#pragma once
// Array<T> and RawArray<T>: a fixed number of T in shared memory, as Python's
// multiprocessing.Array/RawArray.
//
//   multiproc::Array<int> a{10};            // ten zeros (like Array('i', 10))
//   multiproc::Array<int> b{1, 2, 3};       // these three values
//   multiproc::Array<double> c{some_vector}; // a copy of any forward range
//   multiproc::Array<int> d{multiproc::open, "samples"};   // size read from the segment
//
// A single braced number is a size, as in Python, not a one-element list: Array<int>{5} holds five
// zeros. Element access (operator[], iteration, span()) is unsynchronised; hold get_lock() around
// compound updates, or use load(i)/store(i, v), which take it. RawArray<T> has no lock.
#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <iterator>
#include <memory>
#include <mutex>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include <multiproc/detail/sync/cells.hpp>
#include <multiproc/error.hpp>

namespace multiproc {

namespace detail {
template <class R, class T>
concept range_of = std::ranges::forward_range<R> && std::convertible_to<std::ranges::range_reference_t<R>, T>;
}  // namespace detail

template <class T, bool Locked>
class BasicArray : public detail::Cells<T, Locked> {
  using Base = detail::Cells<T, Locked>;
  static constexpr ObjectKind kind = Locked ? ObjectKind::array : ObjectKind::raw_array;

  static Segment::Initialiser zeros() {
    return Base::initialiser([](T* elements, std::size_t n) { std::uninitialized_value_construct_n(elements, n); });
  }
  template <class R>
  static Segment::Initialiser copy_of(R& values) {
    return Base::initialiser([&values](T* elements, std::size_t n) {
      std::ranges::uninitialized_copy(values, std::span(elements, n));
    });
  }

 public:
  explicit BasicArray(std::size_t n) : Base(Segment(Base::layout(kind, n), zeros())) {}
  template <detail::range_of<T> R>
  explicit BasicArray(R&& values)
      : Base(Segment(Base::layout(kind, static_cast<std::size_t>(std::ranges::distance(values))), copy_of(values))) {}
  template <class... U>
    requires(sizeof...(U) >= 2 && (std::convertible_to<U, T> && ...))
  BasicArray(U&&... values) : BasicArray(std::array<T, sizeof...(U)>{static_cast<T>(std::forward<U>(values))...}) {}

  BasicArray(create_t how, std::string_view name, std::size_t n)
      : Base(Segment(how, name, Base::layout(kind, n), zeros())) {}
  template <detail::range_of<T> R>
  BasicArray(create_t how, std::string_view name, R&& values)
      : Base(Segment(how, name, Base::layout(kind, static_cast<std::size_t>(std::ranges::distance(values))),
                     copy_of(values))) {}
  BasicArray(open_t how, std::string_view name) : Base(Segment(how, name, Base::layout(kind, 0))) {}
  BasicArray(open_or_create_t how, std::string_view name, std::size_t n)
      : Base(Segment(how, name, Base::layout(kind, n), zeros())) {}

  // Guarded by `lock` instead of a lock of its own (Python's `Array(t, n, lock=l)`); see Value.
  BasicArray(std::size_t n, Lock& lock)
    requires(Locked)
      : BasicArray(n) {
    this->borrowed_ = &lock;
  }
  template <detail::range_of<T> R>
  BasicArray(R&& values, Lock& lock)
    requires(Locked)
      : BasicArray(std::forward<R>(values)) {
    this->borrowed_ = &lock;
  }
  BasicArray(create_t how, std::string_view name, std::size_t n, Lock& lock)
    requires(Locked)
      : BasicArray(how, name, n) {
    this->borrowed_ = &lock;
  }
  BasicArray(open_t how, std::string_view name, Lock& lock)
    requires(Locked)
      : BasicArray(how, name) {
    this->borrowed_ = &lock;
  }

  [[nodiscard]] std::size_t size() const noexcept { return this->count(); }
  [[nodiscard]] T* data() noexcept { return this->data_; }
  [[nodiscard]] const T* data() const noexcept { return this->data_; }
  [[nodiscard]] std::span<T> span() noexcept { return {this->data_, size()}; }
  [[nodiscard]] std::span<const T> span() const noexcept { return {this->data_, size()}; }
  [[nodiscard]] T* begin() noexcept { return this->data_; }
  [[nodiscard]] T* end() noexcept { return this->data_ + size(); }
  [[nodiscard]] const T* begin() const noexcept { return this->data_; }
  [[nodiscard]] const T* end() const noexcept { return this->data_ + size(); }

  // Unsynchronised element access.
  [[nodiscard]] T& operator[](std::size_t i) noexcept { return this->data_[i]; }
  [[nodiscard]] const T& operator[](std::size_t i) const noexcept { return this->data_[i]; }
  // Bounds-checked; throws IndexError.
  [[nodiscard]] T& at(std::size_t i) { return this->data_[checked(i)]; }
  [[nodiscard]] const T& at(std::size_t i) const { return this->data_[checked(i)]; }

  // One element copied in or out under the array's lock (Array only).
  [[nodiscard]] T load(std::size_t i) const
    requires(Locked)
  {
    std::scoped_lock guard(this->guard());
    return this->data_[checked(i)];
  }
  void store(std::size_t i, const T& value)
    requires(Locked)
  {
    std::scoped_lock guard(this->guard());
    this->data_[checked(i)] = value;
  }

  // The lock guarding this array (Array only): the one passed in, or its own.
  [[nodiscard]] Lock& get_lock() const noexcept
    requires(Locked)
  {
    return this->guard();
  }

 private:
  [[nodiscard]] std::size_t checked(std::size_t i) const {
    if (i >= size()) {
      throw IndexError("multiproc::Array: index " + std::to_string(i) + " out of range for size " +
                              std::to_string(size()));
    }
    return i;
  }
};

template <class T>
using Array = BasicArray<T, true>;
template <class T>
using RawArray = BasicArray<T, false>;

}  // namespace multiproc

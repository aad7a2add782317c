#pragma once
// Value<T> and RawValue<T>: one T in shared memory, as Python's multiprocessing.Value/RawValue.
//
//   multiproc::Value<long> hits{0};                       // anonymous: children forked later share it
//   multiproc::Value<long> c{multiproc::create, "hits"};  // named: any process may open "hits"
//   { std::scoped_lock guard(hits.get_lock()); hits.value() += 1; }
//
// value() is a plain reference: reading or writing it from several processes at once is a race, as
// `v.value += 1` is in Python. load() and store() take the Value's lock; atomic() gives lock-free
// atomic access for types the CPU can handle atomically. RawValue<T> has no lock.
#include <atomic>
#include <memory>
#include <mutex>
#include <string_view>

#include <multiproc/detail/sync/cells.hpp>

namespace multiproc {

template <class T, bool Locked>
class BasicValue : public detail::Cells<T, Locked> {
  using Base = detail::Cells<T, Locked>;
  static constexpr ObjectKind kind = Locked ? ObjectKind::value : ObjectKind::raw_value;

  static Segment::Initialiser holding(const T& initial) {
    return Base::initialiser([initial](T* element, std::size_t) { std::construct_at(element, initial); });
  }

 public:
  explicit BasicValue(const T& initial = T{}) : Base(Segment(Base::layout(kind, 1), holding(initial))) {}
  BasicValue(create_t how, std::string_view name, const T& initial = T{})
      : Base(Segment(how, name, Base::layout(kind, 1), holding(initial))) {}
  BasicValue(open_t how, std::string_view name) : Base(Segment(how, name, Base::layout(kind, 1))) {}
  BasicValue(open_or_create_t how, std::string_view name, const T& initial = T{})
      : Base(Segment(how, name, Base::layout(kind, 1), holding(initial))) {}

  // Guarded by `lock` instead of a lock of its own (Python's `Value(t, v, lock=l)`), so that one
  // lock can cover several objects. The caller keeps `lock` alive and, for a named value, every
  // process that opens it passes the same lock (a handle opened without one uses the value's own).
  BasicValue(const T& initial, Lock& lock)
    requires(Locked)
      : BasicValue(initial) {
    this->borrowed_ = &lock;
  }
  BasicValue(create_t how, std::string_view name, const T& initial, Lock& lock)
    requires(Locked)
      : BasicValue(how, name, initial) {
    this->borrowed_ = &lock;
  }
  BasicValue(open_t how, std::string_view name, Lock& lock)
    requires(Locked)
      : BasicValue(how, name) {
    this->borrowed_ = &lock;
  }

  // A copy of the value; Value takes its lock for the copy, RawValue does not.
  [[nodiscard]] T load() const {
    if constexpr (Locked) {
      std::scoped_lock guard(this->guard());
      return *this->data_;
    } else {
      return *this->data_;
    }
  }
  void store(const T& value) {
    if constexpr (Locked) {
      std::scoped_lock guard(this->guard());
      *this->data_ = value;
    } else {
      *this->data_ = value;
    }
  }

  // Unsynchronised access, like Python's `.value`.
  [[nodiscard]] T& value() noexcept { return *this->data_; }
  [[nodiscard]] const T& value() const noexcept { return *this->data_; }

  // The lock guarding this value (Value only): the one passed in, or its own.
  [[nodiscard]] Lock& get_lock() const noexcept
    requires(Locked)
  {
    return this->guard();
  }

  // Lock-free atomic access, e.g. `hits.atomic().fetch_add(1)`. Do not mix with load()/store(),
  // which synchronise through the lock instead.
  [[nodiscard]] std::atomic_ref<T> atomic() const noexcept
    requires std::atomic_ref<T>::is_always_lock_free
  {
    return std::atomic_ref<T>(*this->data_);
  }
};

template <class T>
using Value = BasicValue<T, true>;
template <class T>
using RawValue = BasicValue<T, false>;

}  // namespace multiproc

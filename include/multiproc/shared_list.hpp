#pragma once
// SharedList<T>: Python's Manager().list() without a server process, on the same crash-safe store
// as SharedDict (entry i is stored under the key i). Any T the codec carries.
//
//   multiproc::SharedList<std::string> log{multiproc::create, "log"};
//   log.append("started");          // from any process; atomic
//   std::vector<std::string> all = log.snapshot();
//
// Every call is atomic; a process killed in the middle of one leaves the list consistent (an
// append either happened or not). Fixed size, as SharedDict: a call that does not fit throws Full.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <string>
#include <vector>

#include <multiproc/codec.hpp>
#include <multiproc/detail/store/shared_store.hpp>
#include <multiproc/error.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

template <class T>
class SharedList {
 public:
  static constexpr std::size_t default_bytes = std::size_t{1} << 20;

  explicit SharedList(std::size_t bytes = default_bytes) : store_(Where(), bytes) {}
  SharedList(create_t how, std::string_view name, std::size_t bytes = default_bytes) : store_(Where(how, name), bytes) {}
  SharedList(open_t how, std::string_view name) : store_(Where(how, name), 0) {}
  SharedList(open_or_create_t how, std::string_view name, std::size_t bytes = default_bytes)
      : store_(Where(how, name), bytes) {}

  void append(const T& value) {
    store_.with_lock([&](Locked& locked) { locked.set(index(locked.size()), encode(value)); });
  }
  // All or nothing: if the store fills up part-way, the values appended so far are taken back.
  template <class Range>
  void extend(const Range& values) {
    store_.with_lock([&](Locked& locked) {
      const std::size_t start = locked.size();
      try {
        for (const auto& value : values) locked.set(index(locked.size()), encode(value));
      } catch (...) {
        while (locked.size() > start) locked.erase(index(locked.size() - 1));
        throw;
      }
    });
  }
  // Removes and returns the last value; IndexError if empty.
  T pop() {
    std::optional<T> value;
    store_.with_lock([&](Locked& locked) {
      const std::size_t n = locked.size();
      if (n == 0) return;
      std::vector<std::byte> bytes;
      locked.get(index(n - 1), bytes);
      value = decode<T>(bytes);
      locked.erase(index(n - 1));
    });
    if (!value) {
      throw IndexError("multiproc::SharedList::pop: the list is empty");
    }
    return std::move(*value);
  }
  // A copy of element i; IndexError past the end.
  [[nodiscard]] T operator[](std::size_t i) {
    std::vector<std::byte> bytes;
    if (!store_.get(index(i), bytes)) {
      throw IndexError("multiproc::SharedList: index " + std::to_string(i) + " out of range");
    }
    return decode<T>(bytes);
  }
  // Replaces element i; IndexError past the end.
  void set(std::size_t i, const T& value) {
    bool inside = false;
    store_.with_lock([&](Locked& locked) {
      inside = i < locked.size();
      if (inside) locked.set(index(i), encode(value));
    });
    if (!inside) {
      throw IndexError("multiproc::SharedList::set: index " + std::to_string(i) + " out of range");
    }
  }

  // Python's l.insert(i, v): the values from i on move up one place; an i past the end appends.
  // Atomic for other callers. Entries move one at a time, so a process killed in the middle
  // leaves one value twice (never a gap); a Full in the middle is undone.
  void insert(std::size_t i, const T& value) {
    store_.with_lock([&](Locked& locked) {
      const std::size_t n = locked.size();
      const std::size_t at = std::min(i, n);
      std::size_t moved = n;  // entries [moved, n] now hold their left neighbour's value
      try {
        for (; moved > at; --moved) move_entry(locked, moved - 1, moved);
        locked.set(index(at), encode(value));
      } catch (...) {
        for (; moved < n; ++moved) move_entry(locked, moved + 1, moved);
        if (locked.size() > n) locked.erase(index(n));
        throw;
      }
    });
  }
  // Python's del l[i]: the values after i move down one place. IndexError past the end.
  // Atomic for other callers; a process killed in the middle leaves one value twice.
  void erase(std::size_t i) {
    bool inside = false;
    store_.with_lock([&](Locked& locked) {
      const std::size_t n = locked.size();
      inside = i < n;
      if (!inside) return;
      for (std::size_t k = i; k + 1 < n; ++k) move_entry(locked, k + 1, k);
      locked.erase(index(n - 1));
    });
    if (!inside) {
      throw IndexError("multiproc::SharedList::erase: index " + std::to_string(i) + " out of range");
    }
  }

  [[nodiscard]] std::size_t size() { return store_.size(); }
  [[nodiscard]] bool empty() { return size() == 0; }
  void clear() { store_.clear(); }
  // A consistent snapshot, in order.
  [[nodiscard]] std::vector<T> snapshot() {
    std::vector<std::pair<std::uint64_t, std::vector<std::byte>>> raw;
    store_.for_each([&](auto key, auto value) {
      raw.emplace_back(decode<std::uint64_t>(key), std::vector(value.begin(), value.end()));
    });
    std::sort(raw.begin(), raw.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<T> out;
    out.reserve(raw.size());
    for (const auto& [i, bytes] : raw) out.push_back(decode<T>(bytes));
    return out;
  }

  // Empty for an anonymous list.
  [[nodiscard]] const std::string& name() const noexcept { return store_.name(); }

 private:
  using Locked = detail::SharedStore::Locked;
  struct Store : detail::SharedStore {
    Store(const Where& where, std::size_t bytes)
        : detail::SharedStore(where, bytes, fingerprint_of<std::uint64_t>().name_hash, fingerprint_of<T>().name_hash,
                              "SharedList") {}
  };
  static std::vector<std::byte> index(std::size_t i) { return encode(static_cast<std::uint64_t>(i)); }
  static void move_entry(Locked& locked, std::size_t from, std::size_t to) {
    std::vector<std::byte> bytes;
    locked.get(index(from), bytes);
    locked.set(index(to), bytes);
  }

  Store store_;
};

}  // namespace multiproc

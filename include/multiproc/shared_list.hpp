#pragma once
// SharedList<T>: Python's Manager().list() without a server process, on the same crash-safe store
// as SharedDict (entry i is stored under the key i). Any T the codec carries.
//
//   multiproc::SharedList<std::string> log{multiproc::create, "log"};
//   log.append("started");          // from any process; atomic
//   log[-1]; log.pop(0); log.sort(); log.slice(1, std::nullopt);   // as Python's l[-1], l.pop(0)...
//   std::vector<std::string> all = log.snapshot();
//
// Every call is atomic; a process killed in the middle of one leaves the list consistent (an
// append either happened or not). Fixed size, as SharedDict: a call that does not fit throws Full.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
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
    store_.with_lock([&](Locked& locked) { locked.set(key_at(locked.size()), encode(value)); });
  }
  // All or nothing: if the store fills up part-way, the values appended so far are taken back.
  template <class Range>
  void extend(const Range& values) {
    store_.with_lock([&](Locked& locked) {
      const std::size_t start = locked.size();
      try {
        for (const auto& value : values) locked.set(key_at(locked.size()), encode(value));
      } catch (...) {
        while (locked.size() > start) locked.erase(key_at(locked.size() - 1));
        throw;
      }
    });
  }
  // Python's l.pop(i): removes and returns element i (the last by default; negative counts from
  // the end); IndexError if out of range. The values after it move down one place.
  T pop(std::ptrdiff_t i = -1) {
    std::optional<T> value;
    store_.with_lock([&](Locked& locked) {
      const std::size_t at = position(locked, i, "pop");
      std::vector<std::byte> bytes;
      locked.get(key_at(at), bytes);
      value = decode<T>(bytes);
      close_gap(locked, at);
    });
    return std::move(*value);
  }
  // A copy of element i (negative counts from the end); IndexError out of range.
  [[nodiscard]] T operator[](std::ptrdiff_t i) {
    std::vector<std::byte> bytes;
    store_.with_lock([&](Locked& locked) { locked.get(key_at(position(locked, i, "[]")), bytes); });
    return decode<T>(bytes);
  }
  // Replaces element i (negative counts from the end); IndexError out of range.
  void set(std::ptrdiff_t i, const T& value) {
    store_.with_lock([&](Locked& locked) { locked.set(key_at(position(locked, i, "set")), encode(value)); });
  }

  // Python's l.insert(i, v): the values from i on move up one place; an i past the end appends, a
  // negative i counts from the end (and one before the start inserts first). Atomic for other
  // callers. Entries move one at a time, so a process killed in the middle leaves one value twice
  // (never a gap); a Full in the middle is undone.
  void insert(std::ptrdiff_t i, const T& value) {
    store_.with_lock([&](Locked& locked) {
      const std::size_t n = locked.size();
      const auto signed_n = static_cast<std::ptrdiff_t>(n);
      const std::size_t at = static_cast<std::size_t>(std::clamp(i < 0 ? i + signed_n : i, std::ptrdiff_t{0}, signed_n));
      std::size_t moved = n;  // entries [moved, n] now hold their left neighbour's value
      try {
        for (; moved > at; --moved) move_entry(locked, moved - 1, moved);
        locked.set(key_at(at), encode(value));
      } catch (...) {
        for (; moved < n; ++moved) move_entry(locked, moved + 1, moved);
        if (locked.size() > n) locked.erase(key_at(n));
        throw;
      }
    });
  }
  // Python's del l[i] (negative counts from the end): the values after i move down one place.
  // IndexError out of range. Atomic for other callers; a process killed in the middle leaves one
  // value twice.
  void erase(std::ptrdiff_t i) {
    store_.with_lock([&](Locked& locked) { close_gap(locked, position(locked, i, "erase")); });
  }
  // Python's l.remove(v): erases the first element equal to `value`; ValueError if there is none.
  void remove(const T& value) {
    store_.with_lock([&](Locked& locked) {
      const auto at = find(locked, value, 0, locked.size());
      if (!at) {
        throw ValueError("multiproc::SharedList::remove: the value is not in the list");
      }
      close_gap(locked, *at);
    });
  }
  // Python's l.index(v, start, stop): the first position in [start, stop) (negative counts from
  // the end) holding `value`; ValueError if there is none.
  [[nodiscard]] std::size_t index(const T& value, std::ptrdiff_t start = 0,
                                  std::ptrdiff_t stop = std::numeric_limits<std::ptrdiff_t>::max()) {
    std::optional<std::size_t> at;
    store_.with_lock([&](Locked& locked) {
      const auto [from, to, step] = bounds(locked.size(), start, stop, 1);
      at = find(locked, value, static_cast<std::size_t>(from), static_cast<std::size_t>(std::max(from, to)));
    });
    if (!at) {
      throw ValueError("multiproc::SharedList::index: the value is not in the list");
    }
    return *at;
  }
  // Python's l.count(v).
  [[nodiscard]] std::size_t count(const T& value) {
    std::size_t found = 0;
    for (const T& element : snapshot()) found += element == value ? 1 : 0;
    return found;
  }
  // Python's l.sort(): in place, stable, by `less` (operator< by default). Atomic for other
  // callers. Values move one at a time through a spare entry past the end, so a process killed in
  // the middle leaves every value in the list (one of them twice, at the end); a Full part-way
  // leaves every value exactly once, partly sorted.
  template <class Less = std::less<>>
  void sort(Less less = {}) {
    store_.with_lock([&](Locked& locked) {
      const std::size_t n = locked.size();
      std::vector<T> values;
      values.reserve(n);
      for (std::size_t i = 0; i < n; ++i) values.push_back(element(locked, i));
      std::vector<std::size_t> source(n);  // source[j]: where the value that belongs at j is now
      std::iota(source.begin(), source.end(), std::size_t{0});
      std::stable_sort(source.begin(), source.end(),
                       [&](std::size_t a, std::size_t b) { return less(values[a], values[b]); });
      std::vector<bool> placed(n, false);
      for (std::size_t first = 0; first < n; ++first) {
        if (placed[first] || source[first] == first) continue;
        move_entry(locked, first, n);  // the spare keeps the value the cycle overwrites first
        std::size_t at = first;
        try {
          for (; source[at] != first; at = source[at]) {
            move_entry(locked, source[at], at);
            placed[at] = true;
          }
          move_entry(locked, n, at);
          placed[at] = true;
        } catch (...) {
          move_entry(locked, n, at);  // position `at` holds a value also found elsewhere: undo that
          locked.erase(key_at(n));
          throw;
        }
      }
      if (locked.size() > n) locked.erase(key_at(n));
    });
  }
  // Python's l[start:stop:step], a copy (negative positions count from the end; nullopt is
  // Python's omitted bound). ValueError for step 0.
  [[nodiscard]] std::vector<T> slice(std::optional<std::ptrdiff_t> start, std::optional<std::ptrdiff_t> stop,
                                     std::ptrdiff_t step = 1) {
    if (step == 0) {
      throw ValueError("multiproc::SharedList::slice: step must not be 0");
    }
    std::vector<T> out;
    store_.with_lock([&](Locked& locked) {
      const auto n = static_cast<std::ptrdiff_t>(locked.size());
      const std::ptrdiff_t from = start.value_or(step > 0 ? 0 : n - 1);
      const std::ptrdiff_t to = stop ? *stop : (step > 0 ? n : -n - 1);
      const auto [first, last, by] = bounds(locked.size(), from, to, step);
      for (std::ptrdiff_t i = first; by > 0 ? i < last : i > last; i += by) {
        out.push_back(element(locked, static_cast<std::size_t>(i)));
      }
    });
    return out;
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
  // The name it travels by to another process (see codec.hpp); ValueError when anonymous.
  [[nodiscard]] const std::string& name_to_travel() const { return store_.name_to_travel("SharedList"); }

 private:
  using Locked = detail::SharedStore::Locked;
  struct Store : detail::SharedStore {
    Store(const Where& where, std::size_t bytes)
        : detail::SharedStore(where, bytes, fingerprint_of<std::uint64_t>().name_hash, fingerprint_of<T>().name_hash,
                              "SharedList") {}
  };
  static std::vector<std::byte> key_at(std::size_t i) { return encode(static_cast<std::uint64_t>(i)); }
  static void move_entry(Locked& locked, std::size_t from, std::size_t to) {
    std::vector<std::byte> bytes;
    locked.get(key_at(from), bytes);
    locked.set(key_at(to), bytes);
  }
  static T element(Locked& locked, std::size_t i) {
    std::vector<std::byte> bytes;
    locked.get(key_at(i), bytes);
    return decode<T>(bytes);
  }
  // Python's index normalisation: negative counts from the end; IndexError out of range.
  static std::size_t position(Locked& locked, std::ptrdiff_t i, const char* what) {
    const auto n = static_cast<std::ptrdiff_t>(locked.size());
    const std::ptrdiff_t at = i < 0 ? i + n : i;
    if (at < 0 || at >= n) {
      throw IndexError(std::string("multiproc::SharedList::") + what + ": index " + std::to_string(i) +
                       " out of range for size " + std::to_string(n));
    }
    return static_cast<std::size_t>(at);
  }
  // Python's slice.indices: start and stop clamped for a list of n and this step's direction.
  struct Bounds {
    std::ptrdiff_t start, stop, step;
  };
  static Bounds bounds(std::size_t size, std::ptrdiff_t start, std::ptrdiff_t stop, std::ptrdiff_t step) {
    const auto n = static_cast<std::ptrdiff_t>(size);
    const auto clamp = [&](std::ptrdiff_t i) {
      if (i < 0) i = std::max<std::ptrdiff_t>(i + n, step > 0 ? 0 : -1);  // -1: before the first, going down
      return std::min<std::ptrdiff_t>(i, step > 0 ? n : n - 1);
    };
    return {clamp(start), clamp(stop), step};
  }
  static std::optional<std::size_t> find(Locked& locked, const T& value, std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      if (element(locked, i) == value) return i;
    }
    return std::nullopt;
  }
  // Erases entry `at` of a list whose entries after it move down one place.
  static void close_gap(Locked& locked, std::size_t at) {
    const std::size_t n = locked.size();
    for (std::size_t k = at; k + 1 < n; ++k) move_entry(locked, k + 1, k);
    locked.erase(key_at(n - 1));
  }

  Store store_;
};

}  // namespace multiproc

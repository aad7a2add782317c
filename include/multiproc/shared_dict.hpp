#pragma once
// SharedDict<K, V>: Python's Manager().dict() without a server process. A hash table in a named
// or anonymous segment (a Boost.Interprocess managed heap), guarded by a robust Lock, for any key
// and value types the codec carries: numbers, std::string, structs, containers.
//
//   multiproc::SharedDict<std::string, long> results{multiproc::create, "results"};
//   results.set("worker-1", 42);                       // from any process
//   results.update("hits", [](long n) { return n + 1; }, 0L);   // atomic read-modify-write
//   std::map<std::string, long> all = results.snapshot();   // a consistent snapshot
//   for (auto& [worker, n] : results) { ... }          // iterates over one, too
//
// Every call is atomic (it holds the lock). A process killed in the middle of a call leaves the
// dict consistent: the next caller rebuilds it from the entries that were complete (see
// detail/shared_store.hpp). Size is fixed at creation: half of it is kept free so that a rebuild
// always has room. A call that does not fit throws Full and changes nothing.
#include <cstddef>
#include <functional>
#include <iterator>
#include <memory>
#include <ranges>
#include <tuple>
#include <map>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include <multiproc/codec.hpp>
#include <multiproc/detail/store/shared_store.hpp>
#include <multiproc/error.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

template <class K, class V>
class SharedDict {
 public:
  static constexpr std::size_t default_bytes = std::size_t{1} << 20;

  // `bytes`: the whole segment (each entry costs its encoded key and value plus about 40 bytes,
  // and room is kept for a rebuild: about half of it holds entries).
  explicit SharedDict(std::size_t bytes = default_bytes) : store_(Where(), bytes) {}
  SharedDict(create_t how, std::string_view name, std::size_t bytes = default_bytes) : store_(Where(how, name), bytes) {}
  SharedDict(open_t how, std::string_view name) : store_(Where(how, name), 0) {}
  SharedDict(open_or_create_t how, std::string_view name, std::size_t bytes = default_bytes)
      : store_(Where(how, name), bytes) {}

  void set(const K& key, const V& value) { store_.set(encode(key), encode(value)); }
  [[nodiscard]] std::optional<V> get(const K& key) {
    std::vector<std::byte> value;
    if (!store_.get(encode(key), value)) {
      return std::nullopt;
    }
    return decode<V>(value);
  }
  [[nodiscard]] V get(const K& key, const V& otherwise) { return get(key).value_or(otherwise); }
  // Python's d[key]: throws KeyError if absent.
  [[nodiscard]] V at(const K& key) {
    auto value = get(key);
    if (!value) {
      throw KeyError("multiproc::SharedDict: no such key");
    }
    return std::move(*value);
  }
  [[nodiscard]] bool contains(const K& key) { return store_.contains(encode(key)); }
  bool erase(const K& key) { return store_.erase(encode(key)); }
  // Removes the key and returns its value, if it was there.
  std::optional<V> pop(const K& key) {
    std::optional<V> value;
    store_.with_lock([&](detail::SharedStore::Locked& locked) {
      std::vector<std::byte> bytes;
      if (locked.get(encode(key), bytes)) {
        value = decode<V>(bytes);
        locked.erase(encode(key));
      }
    });
    return value;
  }
  // Replaces the value with change(value) (or change(initial) if absent), atomically: what
  // `d[k] += 1` should have been in Python, where it races. Returns the new value.
  template <class Change>
  V update(const K& key, Change change, const V& initial = V{}) {
    V result{};
    store_.with_lock([&](detail::SharedStore::Locked& locked) {
      std::vector<std::byte> bytes;
      result = change(locked.get(encode(key), bytes) ? decode<V>(bytes) : initial);
      locked.set(encode(key), encode(result));
    });
    return result;
  }

  // Python's d.setdefault(key, default): the value of `key`, after storing `otherwise` under it if
  // it was absent. Atomic.
  V setdefault(const K& key, const V& otherwise = V{}) {
    std::optional<V> found;
    store_.with_lock([&](detail::SharedStore::Locked& locked) {
      std::vector<std::byte> bytes;
      if (locked.get(encode(key), bytes)) {
        found = decode<V>(bytes);
      } else {
        locked.set(encode(key), encode(otherwise));
      }
    });
    return found ? std::move(*found) : otherwise;
  }
  // Python's d.popitem(): removes one entry and returns it; KeyError if the dict is empty. Which
  // entry is unspecified (the store keeps no order; Python's takes the last inserted).
  std::pair<K, V> popitem() {
    std::optional<std::pair<std::vector<std::byte>, std::vector<std::byte>>> taken;
    store_.with_lock([&](detail::SharedStore::Locked& locked) {
      locked.for_each([&](auto key, auto value) {
        if (!taken) taken.emplace(std::vector(key.begin(), key.end()), std::vector(value.begin(), value.end()));
      });
      if (taken) locked.erase(taken->first);
    });
    if (!taken) {
      throw KeyError("multiproc::SharedDict::popitem: the dict is empty");
    }
    return {decode<K>(taken->first), decode<V>(taken->second)};
  }
  // Python's d.update(other): sets every (key, value) of `pairs` (a std::map, a vector of pairs...),
  // atomically and all or nothing: if the store fills up part-way, what was set is taken back.
  template <class Pairs>
    requires requires(const Pairs& pairs) {
      { std::get<0>(*std::ranges::begin(pairs)) } -> std::convertible_to<const K&>;
      { std::get<1>(*std::ranges::begin(pairs)) } -> std::convertible_to<const V&>;
    }
  void update(const Pairs& pairs) {
    store_.with_lock([&](detail::SharedStore::Locked& locked) {
      std::vector<std::pair<std::vector<std::byte>, std::optional<std::vector<std::byte>>>> undo;
      try {
        for (const auto& [key, value] : pairs) {
          auto encoded_key = encode(static_cast<const K&>(key));
          std::vector<std::byte> before;
          const bool had = locked.get(encoded_key, before);
          locked.set(encoded_key, encode(static_cast<const V&>(value)));
          undo.emplace_back(std::move(encoded_key), had ? std::optional(std::move(before)) : std::nullopt);
        }
      } catch (...) {
        for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
          it->second ? locked.set(it->first, *it->second) : (void)locked.erase(it->first);
        }
        throw;
      }
    });
  }

  [[nodiscard]] std::size_t size() { return store_.size(); }
  [[nodiscard]] bool empty() { return size() == 0; }
  void clear() { store_.clear(); }

  // `for (auto& [key, value] : dict)`: iterates over a consistent snapshot taken by begin(), as
  // items() (changing the pairs changes the copy, not the dict; other processes' later changes
  // are not seen).
  class iterator {
   public:
    using value_type = std::pair<K, V>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(std::vector<std::pair<K, V>> items)
        : items_(std::make_shared<std::vector<std::pair<K, V>>>(std::move(items))) {}
    value_type& operator*() const { return (*items_)[at_]; }
    value_type* operator->() const { return &(*items_)[at_]; }
    iterator& operator++() {
      ++at_;
      return *this;
    }
    iterator operator++(int) {
      iterator before = *this;
      ++at_;
      return before;
    }
    bool operator==(std::default_sentinel_t) const noexcept { return items_ == nullptr || at_ == items_->size(); }
    bool operator==(const iterator& other) const noexcept { return items_ == other.items_ && at_ == other.at_; }

   private:
    std::shared_ptr<std::vector<std::pair<K, V>>> items_;
    std::size_t at_ = 0;
  };
  [[nodiscard]] iterator begin() { return iterator(items()); }
  [[nodiscard]] std::default_sentinel_t end() const noexcept { return std::default_sentinel; }

  // Snapshots, each taken under the lock: consistent, in no particular order (snapshot() is sorted).
  [[nodiscard]] std::vector<std::pair<K, V>> items() {
    std::vector<std::pair<std::vector<std::byte>, std::vector<std::byte>>> raw;
    store_.for_each([&](auto key, auto value) { raw.emplace_back(std::vector(key.begin(), key.end()), std::vector(value.begin(), value.end())); });
    std::vector<std::pair<K, V>> out;
    out.reserve(raw.size());
    for (const auto& [key, value] : raw) {
      out.emplace_back(decode<K>(key), decode<V>(value));
    }
    return out;
  }
  [[nodiscard]] std::vector<K> keys() {
    std::vector<K> out;
    for (auto& [key, value] : items()) out.push_back(std::move(key));
    return out;
  }
  [[nodiscard]] std::vector<V> values() {
    std::vector<V> out;
    for (auto& [key, value] : items()) out.push_back(std::move(value));
    return out;
  }
  [[nodiscard]] std::map<K, V> snapshot() {
    auto all = items();
    return std::map<K, V>(std::make_move_iterator(all.begin()), std::make_move_iterator(all.end()));
  }

  // Empty for an anonymous dict.
  [[nodiscard]] const std::string& name() const noexcept { return store_.name(); }
  // The name it travels by to another process (see codec.hpp); ValueError when anonymous.
  [[nodiscard]] const std::string& name_to_travel() const { return store_.name_to_travel("SharedDict"); }

 private:
  struct Store : detail::SharedStore {
    Store(const Where& where, std::size_t bytes)
        : detail::SharedStore(where, bytes, fingerprint_of<K>().name_hash, fingerprint_of<V>().name_hash, "SharedDict") {}
  };

  Store store_;
};

}  // namespace multiproc

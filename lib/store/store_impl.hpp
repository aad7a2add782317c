#pragma once
// Internal (lib/store/): what a SharedStore handle holds, and the hash table of the live half.
// store_table.cpp reads and changes the table (every offset read from the segment checked);
// shared_store.cpp makes the segment and runs each operation under the store's robust Lock.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <boost/interprocess/managed_external_buffer.hpp>

#include <multiproc/detail/store/shared_store.hpp>
#include <multiproc/error.hpp>

namespace multiproc::detail {

namespace store {

namespace bip = boost::interprocess;

// The heap of one half: no internal mutex (the store's robust Lock guards it; a mutex of Boost's
// own would stay locked forever if its holder were killed).
using Heap = bip::basic_managed_external_buffer<char, bip::rbtree_best_fit<bip::null_mutex_family>, bip::iset_index>;

// An entry: this header, the key bytes, the value bytes. Written once, before its cell commits it.
struct NodeHeader {
  std::uint64_t hash;
  std::uint32_t key_bytes;
  std::uint32_t value_bytes;
};

constexpr std::uint64_t empty_cell = 0;
constexpr std::uint64_t tombstone = 1;
constexpr std::size_t heap_offset = 64;  // a half: [HalfHeader][pad to 64][heap]
constexpr std::uint64_t min_capacity = 16;
constexpr std::size_t min_half = 4096;

}  // namespace store

struct SharedStore::Impl {
  using Heap = store::Heap;
  using NodeHeader = store::NodeHeader;

  Segment segment;
  StoreControl* control;
  Lock lock;
  const char* what;
  Heap heap;  // this process's view of the live half's heap
  std::uint64_t heap_rebuilds = ~0ull;

  Impl(Segment s, const char* kind_name)
      : segment(std::move(s)),
        control(static_cast<StoreControl*>(segment.prefix())),
        lock(Lock::borrow_t{}, control->lock),
        what(kind_name) {}

  [[nodiscard]] std::uint64_t half_bytes() const noexcept { return control->half_bytes; }
  [[nodiscard]] std::byte* half(std::uint64_t which) const noexcept {
    return static_cast<std::byte*>(segment.elements()) + which * half_bytes();
  }
  [[nodiscard]] std::uint64_t live() const noexcept { return control->active & 1; }
  [[nodiscard]] HalfHeader& header(std::uint64_t which) const noexcept {
    return *reinterpret_cast<HalfHeader*>(half(which));
  }

  [[noreturn]] void corrupt(const char* why) const {
    throw LayoutMismatch(std::string("multiproc::") + what + " \"" + segment.name() + "\" is corrupt: " + why);
  }

  // ---- reading a half, every offset checked (store_table.cpp) ------------------------------------

  // The cells of `which`'s table, or empty if its table word or capacity is out of bounds.
  [[nodiscard]] std::span<std::uint64_t> cells(std::uint64_t which) const noexcept;
  // The node a cell points to, or null if it would not lie inside the half.
  [[nodiscard]] const NodeHeader* node(std::uint64_t which, std::uint64_t at) const noexcept;
  static std::span<const std::byte> key_of(const NodeHeader* n) noexcept {
    return {reinterpret_cast<const std::byte*>(n + 1), n->key_bytes};
  }
  static std::span<const std::byte> value_of(const NodeHeader* n) noexcept {
    return {reinterpret_cast<const std::byte*>(n + 1) + n->key_bytes, n->value_bytes};
  }

  struct Found {
    bool found;
    std::size_t cell;  // the match, or where to insert (cells.size() if nowhere)
  };
  Found find(std::span<std::uint64_t> table, std::span<const std::byte> key, std::uint64_t hash) const;
  [[nodiscard]] std::span<std::uint64_t> live_cells() const;

  // ---- the live heap (store_table.cpp) ------------------------------------------------------------

  [[noreturn]] void full(std::size_t bytes) const;
  // Memory in `h` (of half `which`), as an offset from the half's start; 0 if there is no room.
  std::uint64_t allocate(Heap& h, std::uint64_t which, std::size_t bytes) const;
  void release(std::uint64_t at);
  // A new table block in half `which` holding `capacity` empty cells; 0 if there is no room.
  std::uint64_t new_table(Heap& h, std::uint64_t which, std::uint64_t capacity) const;
  static void place(std::span<std::uint64_t> table, std::uint64_t hash, std::uint64_t cell) noexcept;
  static std::uint64_t capacity_for(std::uint64_t entries) noexcept;

  // ---- changes (store_table.cpp) -------------------------------------------------------------------

  void set(std::span<const std::byte> key, std::span<const std::byte> value);
  // A table for the live entries with room to spare, dropping tombstones. False if no room.
  bool grow();
  bool erase(std::span<const std::byte> key);
  bool get(std::span<const std::byte> key, std::vector<std::byte>* value) const;
  // Copies the live half's entries (`keep`), or none, into a fresh heap in the other half, then
  // makes that half live. Entries whose cells or nodes fail the bounds checks are dropped.
  void rebuild(bool keep);

  // ---- under the lock (shared_store.cpp) -----------------------------------------------------------

  // After taking the lock: rebuild if a holder died, and make `heap` this process's view of the
  // live half.
  void prepare();

  template <class F>
  auto locked(F body) {
    std::scoped_lock guard(lock);
    prepare();
    return body();
  }
};

}  // namespace multiproc::detail

#pragma once
// Internal: the crash-safe key-value store under SharedDict and SharedList. Keys and values are
// byte strings (the codec's encodings); the store knows nothing of their types.
//
// Layout of the segment's payload: two halves of equal size. Each half starts with a HalfHeader,
// followed by a Boost.Interprocess managed heap (basic_managed_external_buffer, no internal mutex:
// the store's robust Lock guards everything). The live half holds the entries; the other is
// spare.
//
// Crash safety. Every change happens under the robust lock and becomes visible through exactly
// one 8-byte store (the commit point):
//   * set: the node (hash, key, value) is written into freshly allocated memory, then its offset
//     is stored into a table cell; a replaced node is freed after.
//   * erase: the cell is overwritten with a tombstone; the node is freed after.
//   * growing the table: a new table is filled, then the table word in the HalfHeader is stored.
//   * rebuild (clear, and recovery): the spare half gets a fresh heap, a table and copies of the
//     entries to keep, then `active` in the control block flips to it.
// A writer killed anywhere leaves the committed cells of the live half intact, but maybe a heap
// in the middle of an allocation, a leaked node or a stale count. So whoever next takes the lock
// and finds it recovered rebuilds: it copies every committed entry (each offset and length
// checked against the half) into the spare half and flips. A rebuild killed half-way leaves the
// old half live, and the next taker rebuilds again.
#include <cstddef>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/export.hpp>
#include <multiproc/lock.hpp>
#include <multiproc/segment.hpp>

namespace multiproc::detail {

// The control block, in the segment's prefix. Fixed layout, trivially copyable.
// key_type, value_type, half_bytes: written once by the creator before the segment is published,
// read-only afterwards (openers check them). active, rebuilds, the HalfHeaders and the cells:
// read and written only under `lock`, which orders them between living processes. The commit
// stores are also release stores: should their writer die right after one, what it wrote before
// (the node, the table, the fresh half) is in memory before the store that publishes it.
struct StoreControl {
  LockState lock;
  std::uint64_t key_type;    // name hash of the key type
  std::uint64_t value_type;  // name hash of the value type
  std::uint64_t half_bytes;  // size of each half
  std::uint64_t active;      // 0 or 1: the live half (the commit point of a rebuild)
  std::uint64_t rebuilds;    // bumped by every rebuild, so handles know to reopen the live heap
};
static_assert(std::is_trivially_copyable_v<StoreControl> && alignof(StoreControl) == 8 &&
              sizeof(StoreControl) == sizeof(LockState) + 5 * sizeof(std::uint64_t) &&
              offsetof(StoreControl, key_type) == sizeof(LockState));
static_assert(atomic_across_processes<std::uint64_t>);

// The start of each half. Under the lock, as above.
struct HalfHeader {
  // Offset from the half's start of the table block: its capacity (a power of two), then that many
  // 8-byte cells: 0 empty, 1 tombstone, else the offset of a node. Stored last when the table is
  // replaced (the commit point of a grow).
  std::uint64_t table;
  std::uint64_t count;       // live entries (recomputed by every rebuild)
  std::uint64_t cells_used;  // cells not empty (live or tombstone): the table grows before half
};
static_assert(std::is_trivially_copyable_v<HalfHeader> && sizeof(HalfHeader) == 24 && alignof(HalfHeader) == 8);

class MULTIPROC_API SharedStore {
 public:
  using Bytes = std::span<const std::byte>;

  // `bytes`: the whole store, both halves (each entry costs its key and value plus ~40 bytes, and
  // 16 bytes of table per entry at most). `key_type`/`value_type`: what openers must match.
  SharedStore(const Where& where, std::size_t bytes, std::uint64_t key_type, std::uint64_t value_type,
              const char* what);
  SharedStore(SharedStore&&) noexcept;
  SharedStore& operator=(SharedStore&&) noexcept;
  ~SharedStore();

  // Throws Full (nothing changed) when the store has no room for it.
  void set(Bytes key, Bytes value);
  // Copies the value into `value`; false if the key is absent.
  bool get(Bytes key, std::vector<std::byte>& value);
  bool contains(Bytes key);
  bool erase(Bytes key);
  std::size_t size();
  void clear();
  // Calls `visit` for every entry, under the lock (a consistent snapshot): keep it short, and do
  // not call the store from it.
  void for_each(const std::function<void(Bytes key, Bytes value)>& visit);
  // Runs `body` under the store's lock (with the live half ready): for operations that must be
  // atomic across several calls, such as SharedList::append. The store's own calls are made
  // through the Locked they receive.
  class Locked;
  void with_lock(const std::function<void(Locked&)>& body);

  [[nodiscard]] const std::string& name() const noexcept;
  [[nodiscard]] const std::string& name_to_travel(std::string_view type) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class MULTIPROC_API SharedStore::Locked {
 public:
  void set(Bytes key, Bytes value);
  bool get(Bytes key, std::vector<std::byte>& value);
  bool erase(Bytes key);
  [[nodiscard]] std::size_t size() const;
  // Calls `visit` for every entry; it must not change the store (collect, then change).
  void for_each(const std::function<void(Bytes key, Bytes value)>& visit);

 private:
  friend class SharedStore;
  explicit Locked(SharedStore::Impl& impl) : impl_(impl) {}
  SharedStore::Impl& impl_;
};

}  // namespace multiproc::detail

#include <multiproc/detail/store/shared_store.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/interprocess/managed_external_buffer.hpp>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/error.hpp>

namespace bip = boost::interprocess;

namespace multiproc::detail {

namespace {

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

std::uint64_t hash_of(std::span<const std::byte> key) noexcept {
  return fnv1a(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
}

// The commit point of every change: a release store, so the node or table it points to is
// complete in memory before the cell or word that publishes it.
void commit(std::uint64_t& word, std::uint64_t value) noexcept {
  shared_atomic(word).store(value, std::memory_order_release);
}

}  // namespace

struct SharedStore::Impl {
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

  // ---- reading a half, every offset checked ------------------------------------------------------

  // The cells of `which`'s table, or empty if its table word or capacity is out of bounds.
  [[nodiscard]] std::span<std::uint64_t> cells(std::uint64_t which) const noexcept {
    const std::uint64_t at = header(which).table;
    if (at < heap_offset || at % 8 != 0 || at > half_bytes() - 8) {
      return {};
    }
    auto* block = reinterpret_cast<std::uint64_t*>(half(which) + at);
    const std::uint64_t capacity = block[0];
    if (!std::has_single_bit(capacity) || capacity > (half_bytes() - at - 8) / 8) {
      return {};
    }
    return {block + 1, static_cast<std::size_t>(capacity)};
  }

  // The node a cell points to, or null if it would not lie inside the half.
  [[nodiscard]] const NodeHeader* node(std::uint64_t which, std::uint64_t at) const noexcept {
    if (at < heap_offset || at % alignof(NodeHeader) != 0 || at > half_bytes() - sizeof(NodeHeader)) {
      return nullptr;
    }
    const auto* n = reinterpret_cast<const NodeHeader*>(half(which) + at);
    if (std::uint64_t{n->key_bytes} + n->value_bytes > half_bytes() - at - sizeof(NodeHeader)) {
      return nullptr;
    }
    return n;
  }
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
  Found find(std::span<std::uint64_t> table, std::span<const std::byte> key, std::uint64_t hash) const {
    const std::size_t mask = table.size() - 1;
    std::size_t free_cell = table.size();
    for (std::size_t probe = 0, at = hash & mask; probe < table.size(); ++probe, at = (at + 1) & mask) {
      const std::uint64_t cell = table[at];
      if (cell == empty_cell) {
        return {false, free_cell != table.size() ? free_cell : at};
      }
      if (cell == tombstone) {
        free_cell = std::min(free_cell, at);
        continue;
      }
      const NodeHeader* n = node(live(), cell);
      if (n == nullptr) {
        corrupt("a table cell points outside the store");
      }
      const auto k = key_of(n);
      if (n->hash == hash && k.size() == key.size() && std::equal(k.begin(), k.end(), key.begin())) {
        return {true, at};
      }
    }
    return {false, free_cell};
  }

  [[nodiscard]] std::span<std::uint64_t> live_cells() const {
    const auto table = cells(live());
    if (table.empty()) {
      corrupt("its table lies outside the store");
    }
    return table;
  }

  // ---- the live heap -----------------------------------------------------------------------------

  // After taking the lock: rebuild if a holder died, and make `heap` this process's view of the
  // live half.
  void prepare() {
    if (lock.recovered()) {
      rebuild(true);
    }
    if (heap_rebuilds != control->rebuilds) {
      heap = Heap(bip::open_only, half(live()) + heap_offset, half_bytes() - heap_offset);
      heap_rebuilds = control->rebuilds;
    }
  }

  [[noreturn]] void full(std::size_t bytes) const {
    throw Full(std::string("multiproc::") + what + " \"" + segment.name() + "\": no room for " +
               std::to_string(bytes) + " more bytes in its " + std::to_string(2 * half_bytes()) +
               "-byte segment (half of it is kept free for recovery); nothing was changed. Create it larger.");
  }

  // Memory in `h` (of half `which`), as an offset from the half's start; 0 if there is no room.
  std::uint64_t allocate(Heap& h, std::uint64_t which, std::size_t bytes) const {
    void* memory = h.allocate(bytes, std::nothrow);
    return memory == nullptr ? 0 : static_cast<std::uint64_t>(static_cast<std::byte*>(memory) - half(which));
  }
  void release(std::uint64_t at) { heap.deallocate(half(live()) + at); }

  // A new table block in half `which` holding `capacity` empty cells; 0 if there is no room.
  std::uint64_t new_table(Heap& h, std::uint64_t which, std::uint64_t capacity) const {
    const std::uint64_t at = allocate(h, which, 8 * (capacity + 1));
    if (at != 0) {
      auto* block = reinterpret_cast<std::uint64_t*>(half(which) + at);
      block[0] = capacity;
      std::fill(block + 1, block + 1 + capacity, empty_cell);
    }
    return at;
  }
  static void place(std::span<std::uint64_t> table, std::uint64_t hash, std::uint64_t cell) noexcept {
    const std::size_t mask = table.size() - 1;
    std::size_t at = hash & mask;
    while (table[at] != empty_cell) {
      at = (at + 1) & mask;
    }
    table[at] = cell;
  }
  static std::uint64_t capacity_for(std::uint64_t entries) noexcept {
    return std::max(min_capacity, std::bit_ceil(entries * 4));
  }

  // ---- changes -------------------------------------------------------------------------------------

  void set(std::span<const std::byte> key, std::span<const std::byte> value) {
    if (key.size() > UINT32_MAX || value.size() > UINT32_MAX) {
      full(key.size() + value.size());
    }
    const std::uint64_t hash = hash_of(key);
    const std::size_t bytes = sizeof(NodeHeader) + key.size() + value.size();
    const std::uint64_t at = allocate(heap, live(), bytes);
    if (at == 0) {
      full(bytes);
    }
    auto* n = reinterpret_cast<NodeHeader*>(half(live()) + at);
    *n = {hash, static_cast<std::uint32_t>(key.size()), static_cast<std::uint32_t>(value.size())};
    if (!key.empty()) std::memcpy(n + 1, key.data(), key.size());
    if (!value.empty()) std::memcpy(reinterpret_cast<std::byte*>(n + 1) + key.size(), value.data(), value.size());

    HalfHeader& h = header(live());
    auto found = find(live_cells(), key, hash);
    if (found.found) {
      const std::uint64_t old = live_cells()[found.cell];
      commit(live_cells()[found.cell], at);
      release(old);
      return;
    }
    if ((h.cells_used + 1) * 2 > live_cells().size()) {
      if (!grow()) {
        release(at);
        full(8 * capacity_for(h.count + 1));
      }
      found = find(live_cells(), key, hash);
    }
    const bool was_empty = live_cells()[found.cell] == empty_cell;
    commit(live_cells()[found.cell], at);
    ++h.count;
    h.cells_used += was_empty ? 1 : 0;
  }

  // A table for the live entries with room to spare, dropping tombstones. False if no room.
  bool grow() {
    HalfHeader& h = header(live());
    const auto old_table = live_cells();
    const std::uint64_t old_at = h.table;
    const std::uint64_t at = new_table(heap, live(), capacity_for(h.count + 1));
    if (at == 0) {
      return false;
    }
    auto* block = reinterpret_cast<std::uint64_t*>(half(live()) + at);
    const std::span<std::uint64_t> table(block + 1, static_cast<std::size_t>(block[0]));
    for (const std::uint64_t cell : old_table) {
      if (cell != empty_cell && cell != tombstone) {
        place(table, node(live(), cell)->hash, cell);  // live cells were checked by find() as they were made
      }
    }
    commit(h.table, at);
    h.cells_used = h.count;
    release(old_at);
    return true;
  }

  bool erase(std::span<const std::byte> key) {
    const auto found = find(live_cells(), key, hash_of(key));
    if (!found.found) {
      return false;
    }
    const std::uint64_t old = live_cells()[found.cell];
    commit(live_cells()[found.cell], tombstone);
    --header(live()).count;
    release(old);
    return true;
  }

  bool get(std::span<const std::byte> key, std::vector<std::byte>* value) const {
    const auto found = find(live_cells(), key, hash_of(key));
    if (found.found && value != nullptr) {
      const auto v = value_of(node(live(), live_cells()[found.cell]));
      value->assign(v.begin(), v.end());
    }
    return found.found;
  }

  // Copies the live half's entries (`keep`), or none, into a fresh heap in the other half, then
  // makes that half live. Entries whose cells or nodes fail the bounds checks are dropped.
  void rebuild(bool keep) {
    const std::uint64_t from = live();
    const std::uint64_t to = 1 - from;
    Heap fresh(bip::create_only, half(to) + heap_offset, half_bytes() - heap_offset);
    std::vector<const NodeHeader*> kept;
    if (keep) {
      for (const std::uint64_t cell : cells(from)) {
        if (cell == empty_cell || cell == tombstone) continue;
        if (const NodeHeader* n = node(from, cell)) kept.push_back(n);
      }
    }
    const std::uint64_t table_at = new_table(fresh, to, capacity_for(kept.size()));
    if (table_at == 0) {
      full(8 * capacity_for(kept.size()));
    }
    auto* block = reinterpret_cast<std::uint64_t*>(half(to) + table_at);
    const std::span<std::uint64_t> table(block + 1, static_cast<std::size_t>(block[0]));
    for (const NodeHeader* n : kept) {
      const std::size_t bytes = sizeof(NodeHeader) + n->key_bytes + n->value_bytes;
      const std::uint64_t at = allocate(fresh, to, bytes);
      if (at == 0) {
        full(bytes);
      }
      std::memcpy(half(to) + at, n, bytes);
      place(table, n->hash, at);
    }
    header(to) = HalfHeader{table_at, kept.size(), kept.size()};
    commit(control->active, to);
    ++control->rebuilds;
    heap = std::move(fresh);
    heap_rebuilds = control->rebuilds;
  }

  template <class F>
  auto locked(F body) {
    std::scoped_lock guard(lock);
    prepare();
    return body();
  }
};

namespace {

Segment::Layout store_layout(std::size_t bytes, const char* what) {
  const std::size_t half = bytes / 2 / 64 * 64;
  if (half < min_half) {
    throw ValueError(std::string("multiproc::") + what + ": at least " + std::to_string(2 * min_half) +
                                " bytes, not " + std::to_string(bytes));
  }
  const auto kind = std::string_view(what) == "SharedList" ? ObjectKind::shared_list : ObjectKind::shared_dict;
  return {kind, fingerprint_of<std::byte>(), sizeof(StoreControl), alignof(StoreControl), 2 * half};
}

}  // namespace

SharedStore::SharedStore(const Where& where, std::size_t bytes, std::uint64_t key_type, std::uint64_t value_type,
                         const char* what) {
  // open ignores the size (the segment's own is used): any valid one will do.
  const std::size_t requested = where.how == Where::How::open ? 2 * min_half : bytes;
  Segment segment(where, store_layout(requested, what), [&](Segment& s) {
    auto& control = *static_cast<StoreControl*>(s.prefix());
    Lock::initialise(control.lock);
    control.key_type = key_type;
    control.value_type = value_type;
    control.half_bytes = s.count() / 2;
    control.active = 0;
    control.rebuilds = 0;
    auto* half0 = static_cast<std::byte*>(s.elements());
    Heap heap(bip::create_only, half0 + heap_offset, control.half_bytes - heap_offset);
    void* table = heap.allocate(8 * (min_capacity + 1));
    auto* block = static_cast<std::uint64_t*>(table);
    block[0] = min_capacity;
    std::fill(block + 1, block + 1 + min_capacity, empty_cell);
    *reinterpret_cast<HalfHeader*>(half0) =
        HalfHeader{static_cast<std::uint64_t>(static_cast<std::byte*>(table) - half0), 0, 0};
  });
  const auto& control = *static_cast<const StoreControl*>(segment.prefix());
  if (control.key_type != key_type || control.value_type != value_type) {
    throw LayoutMismatch(std::string("multiproc::") + what + ": \"" + segment.name() +
                         "\" holds keys or values of other types");
  }
  if (control.half_bytes < min_half || control.half_bytes % 64 != 0 || control.half_bytes * 2 != segment.count()) {
    throw LayoutMismatch(std::string("multiproc::") + what + ": \"" + segment.name() + "\" has a corrupt size");
  }
  impl_ = std::make_unique<Impl>(std::move(segment), what);
}

SharedStore::SharedStore(SharedStore&&) noexcept = default;
SharedStore& SharedStore::operator=(SharedStore&&) noexcept = default;
SharedStore::~SharedStore() = default;

void SharedStore::set(Bytes key, Bytes value) {
  impl_->locked([&] { impl_->set(key, value); });
}
bool SharedStore::get(Bytes key, std::vector<std::byte>& value) {
  return impl_->locked([&] { return impl_->get(key, &value); });
}
bool SharedStore::contains(Bytes key) {
  return impl_->locked([&] { return impl_->get(key, nullptr); });
}
bool SharedStore::erase(Bytes key) {
  return impl_->locked([&] { return impl_->erase(key); });
}
std::size_t SharedStore::size() {
  return impl_->locked([&] { return static_cast<std::size_t>(impl_->header(impl_->live()).count); });
}
void SharedStore::clear() {
  impl_->locked([&] { impl_->rebuild(false); });
}
void SharedStore::for_each(const std::function<void(Bytes, Bytes)>& visit) {
  with_lock([&](Locked& locked) { locked.for_each(visit); });
}
void SharedStore::with_lock(const std::function<void(Locked&)>& body) {
  impl_->locked([&] {
    Locked locked(*impl_);
    body(locked);
  });
}
const std::string& SharedStore::name() const noexcept { return impl_->segment.name(); }

void SharedStore::Locked::set(Bytes key, Bytes value) { impl_.set(key, value); }
bool SharedStore::Locked::get(Bytes key, std::vector<std::byte>& value) { return impl_.get(key, &value); }
bool SharedStore::Locked::erase(Bytes key) { return impl_.erase(key); }
std::size_t SharedStore::Locked::size() const { return static_cast<std::size_t>(impl_.header(impl_.live()).count); }
void SharedStore::Locked::for_each(const std::function<void(Bytes, Bytes)>& visit) {
  for (const std::uint64_t cell : impl_.live_cells()) {
    if (cell == empty_cell || cell == tombstone) continue;
    const NodeHeader* n = impl_.node(impl_.live(), cell);
    if (n == nullptr) impl_.corrupt("a table cell points outside the store");
    visit(Impl::key_of(n), Impl::value_of(n));
  }
}

}  // namespace multiproc::detail

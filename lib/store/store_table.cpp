#include "store/store_impl.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
#include <string_view>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/error.hpp>

namespace multiproc::detail {

using namespace store;  // the table's own names

namespace {

std::uint64_t hash_of(std::span<const std::byte> key) noexcept {
  return fnv1a(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
}

// The commit point of every change: a release store, so the node or table it points to is
// complete in memory before the cell or word that publishes it.
void commit(std::uint64_t& word, std::uint64_t value) noexcept {
  shared_atomic(word).store(value, std::memory_order_release);
}

}  // namespace

// ---- reading a half, every offset checked ----------------------------------------------------------

std::span<std::uint64_t> SharedStore::Impl::cells(std::uint64_t which) const noexcept {
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

const store::NodeHeader* SharedStore::Impl::node(std::uint64_t which, std::uint64_t at) const noexcept {
  if (at < heap_offset || at % alignof(NodeHeader) != 0 || at > half_bytes() - sizeof(NodeHeader)) {
    return nullptr;
  }
  const auto* n = reinterpret_cast<const NodeHeader*>(half(which) + at);
  if (std::uint64_t{n->key_bytes} + n->value_bytes > half_bytes() - at - sizeof(NodeHeader)) {
    return nullptr;
  }
  return n;
}

SharedStore::Impl::Found SharedStore::Impl::find(std::span<std::uint64_t> table, std::span<const std::byte> key,
                                                  std::uint64_t hash) const {
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

std::span<std::uint64_t> SharedStore::Impl::live_cells() const {
  const auto table = cells(live());
  if (table.empty()) {
    corrupt("its table lies outside the store");
  }
  return table;
}

// ---- the live heap ---------------------------------------------------------------------------------

void SharedStore::Impl::full(std::size_t bytes) const {
  throw Full(std::string("multiproc::") + what + " \"" + segment.name() + "\": no room for " +
             std::to_string(bytes) + " more bytes in its " + std::to_string(2 * half_bytes()) +
             "-byte segment (half of it is kept free for recovery); nothing was changed. Create it larger.");
}

std::uint64_t SharedStore::Impl::allocate(Heap& h, std::uint64_t which, std::size_t bytes) const {
  void* memory = h.allocate(bytes, std::nothrow);
  return memory == nullptr ? 0 : static_cast<std::uint64_t>(static_cast<std::byte*>(memory) - half(which));
}

void SharedStore::Impl::release(std::uint64_t at) { heap.deallocate(half(live()) + at); }

std::uint64_t SharedStore::Impl::new_table(Heap& h, std::uint64_t which, std::uint64_t capacity) const {
  const std::uint64_t at = allocate(h, which, 8 * (capacity + 1));
  if (at != 0) {
    auto* block = reinterpret_cast<std::uint64_t*>(half(which) + at);
    block[0] = capacity;
    std::fill(block + 1, block + 1 + capacity, empty_cell);
  }
  return at;
}

void SharedStore::Impl::place(std::span<std::uint64_t> table, std::uint64_t hash, std::uint64_t cell) noexcept {
  const std::size_t mask = table.size() - 1;
  std::size_t at = hash & mask;
  while (table[at] != empty_cell) {
    at = (at + 1) & mask;
  }
  table[at] = cell;
}

std::uint64_t SharedStore::Impl::capacity_for(std::uint64_t entries) noexcept {
  return std::max(min_capacity, std::bit_ceil(entries * 4));
}

// ---- changes -----------------------------------------------------------------------------------------

void SharedStore::Impl::set(std::span<const std::byte> key, std::span<const std::byte> value) {
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

bool SharedStore::Impl::grow() {
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

bool SharedStore::Impl::erase(std::span<const std::byte> key) {
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

bool SharedStore::Impl::get(std::span<const std::byte> key, std::vector<std::byte>* value) const {
  const auto found = find(live_cells(), key, hash_of(key));
  if (found.found && value != nullptr) {
    const auto v = value_of(node(live(), live_cells()[found.cell]));
    value->assign(v.begin(), v.end());
  }
  return found.found;
}

void SharedStore::Impl::rebuild(bool keep) {
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

}  // namespace multiproc::detail

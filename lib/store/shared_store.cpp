#include <multiproc/detail/store/shared_store.hpp>

#include <algorithm>
#include <string>
#include <string_view>

#include <multiproc/error.hpp>

#include "store/store_impl.hpp"

namespace multiproc::detail {

using namespace store;  // the store's own names

void SharedStore::Impl::prepare() {
  if (lock.recovered()) {
    rebuild(true);
  }
  if (heap_rebuilds != control->rebuilds) {
    heap = Heap(bip::open_only, half(live()) + heap_offset, half_bytes() - heap_offset);
    heap_rebuilds = control->rebuilds;
  }
}

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
const std::string& SharedStore::name_to_travel(std::string_view type) const {
  return impl_->segment.name_to_travel(type);
}

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

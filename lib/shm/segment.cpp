#include <multiproc/segment.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>

#include <unistd.h>

#include <boost/interprocess/anonymous_shared_memory.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/error.hpp>

#include "os/demangle.hpp"
#include "os/futex.hpp"
#include "shm/segment_checks.hpp"

namespace bip = boost::interprocess;

namespace multiproc {

struct Segment::Mapping {
  bip::mapped_region region;
};

namespace {

// How long an opener waits for a creator that is between shm_open and publishing the header.
// Creation takes microseconds; only a creator that died mid-creation makes anyone wait this long.
constexpr auto initialisation_grace = std::chrono::seconds(2);
constexpr std::size_t cache_line = 64;

std::string quoted(std::string_view name) { return "\"" + std::string(name) + "\""; }

std::size_t align_up(std::size_t offset, std::size_t alignment) {
  return (offset + alignment - 1) / alignment * alignment;
}

// Where the parts of a segment go. Computed alike by creator and opener from the layout and the
// element count, so an opener can check every offset in a header against its own arithmetic.
struct Placement {
  std::size_t prefix_offset;
  std::size_t elements_offset;
  std::size_t total;
};

// Empty when the sizes overflow.
std::optional<Placement> place(const Segment::Layout& layout, std::uint64_t count) {
  Placement p{};
  p.prefix_offset = align_up(sizeof(SegmentHeader), std::max(layout.prefix_align, cache_line));
  // At least 16 so that std::atomic_ref of a 16-byte element finds its required alignment.
  p.elements_offset = align_up(p.prefix_offset + layout.prefix_bytes, std::max<std::size_t>(layout.element.align, 16));
  std::size_t element_bytes = 0;
  if (__builtin_mul_overflow(count, layout.element.size, &element_bytes) ||
      __builtin_add_overflow(p.elements_offset, element_bytes, &p.total)) {
    return std::nullopt;
  }
  return p;
}

Placement place_or_throw(const Segment::Layout& layout) {
  auto p = place(layout, layout.count);
  if (!p) {
    throw ValueError("multiproc: " + std::to_string(layout.count) + " elements of " +
                            std::to_string(layout.element.size) + " bytes do not fit in memory");
  }
  return *p;
}

std::uint32_t& magic_of(void* base) { return static_cast<SegmentHeader*>(base)->magic; }

void write_header(void* base, const Segment::Layout& layout, const Placement& p) {
  auto& h = *static_cast<SegmentHeader*>(base);
  h.layout_version = segment_layout_version;
  h.mapped_bytes = p.total;
  h.kind = static_cast<std::uint32_t>(layout.kind);
  h.creator_pid = static_cast<std::uint32_t>(::getpid());
  h.created_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  h.prefix_offset = p.prefix_offset;
  h.prefix_bytes = layout.prefix_bytes;
  h.elements_offset = p.elements_offset;
  h.element_count = layout.count;
  h.element_name_hash = layout.element.name_hash;
  h.element_size = layout.element.size;
  h.element_align = layout.element.align;
  std::strncpy(h.element_name, layout.element.mangled_name, sizeof h.element_name - 1);
}

// The creator's last step: everything written before this release store is visible to any opener
// whose acquire load of `magic` reads segment_magic.
void publish(void* base, bool anyone_may_wait) {
  detail::shared_atomic(magic_of(base)).store(segment_magic, std::memory_order_release);
  if (anyone_may_wait) {
    detail::futex_wake(&magic_of(base), INT_MAX);
  }
}

// Throws LayoutMismatch unless the header describes exactly `want` in a mapping of `actual` bytes.
void check_header(const SegmentHeader& h, std::size_t actual, const Segment::Layout& want, std::string_view name) {
  const auto fail = [&](const std::string& why) {
    throw LayoutMismatch("multiproc: cannot open " + quoted(name) + ": " + why);
  };
  if (const std::string problem = detail::header_problem(h, actual); !problem.empty()) {
    fail(problem);
  }
  char stored_name[sizeof h.element_name + 1] = {};
  std::memcpy(stored_name, h.element_name, sizeof h.element_name);
  const auto type_text = [](std::string_view kind, const char* type, std::uint32_t size) {
    return std::string(kind) + "<" + detail::demangle(type) + "> (" + std::to_string(size) + "-byte elements)";
  };
  if (h.kind != static_cast<std::uint32_t>(want.kind) || h.element_name_hash != want.element.name_hash ||
      h.element_size != want.element.size || h.element_align != want.element.align ||
      h.prefix_bytes != want.prefix_bytes) {
    fail("it holds a " + type_text(kind_name(h.kind), stored_name, h.element_size) + ", not a " +
         type_text(kind_name(static_cast<std::uint32_t>(want.kind)), want.element.mangled_name, want.element.size));
  }
  const auto p = place(want, h.element_count);
  // The creator sized the file to exactly this total, so the element count is pinned by the size.
  if (!p || p->prefix_offset != h.prefix_offset || p->elements_offset != h.elements_offset || p->total != actual) {
    fail("its offsets or element count do not fit its size (corrupt)");
  }
}

[[noreturn]] void rethrow_as_multiproc(const bip::interprocess_exception& e, std::string_view name,
                                       const char* action) {
  const int err = e.get_native_error();
  const std::string what = "multiproc: cannot " + std::string(action) + " " + quoted(name);
  switch (err) {
    case ENOENT: throw NotFound(what + ": no such shared object");
    case EEXIST: throw AlreadyExists(what + ": the name is already in use");
    case ENAMETOOLONG: throw InvalidName(what + ": name too long for this system");
    case 0: throw Error(what + ": " + e.what());
    default: throw std::system_error(err, std::generic_category(), what);
  }
}

}  // namespace

std::string_view kind_name(std::uint32_t kind) noexcept {
  switch (static_cast<ObjectKind>(kind)) {
    case ObjectKind::value: return "Value";
    case ObjectKind::raw_value: return "RawValue";
    case ObjectKind::array: return "Array";
    case ObjectKind::raw_array: return "RawArray";
    case ObjectKind::lock: return "Lock";
    case ObjectKind::rlock: return "RLock";
    case ObjectKind::semaphore: return "Semaphore";
    case ObjectKind::bounded_semaphore: return "BoundedSemaphore";
    case ObjectKind::event: return "Event";
    case ObjectKind::condition: return "Condition";
    case ObjectKind::barrier: return "Barrier";
    case ObjectKind::spsc_ring: return "SpscRing";
    case ObjectKind::mpmc_ring: return "MpmcRing";
    case ObjectKind::queue: return "Queue";
    case ObjectKind::byte_queue: return "Queue (codec)";
    case ObjectKind::pipe: return "Pipe";
    case ObjectKind::shared_dict: return "SharedDict";
    case ObjectKind::shared_list: return "SharedList";
    case ObjectKind::pool_channels: return "Pool channels";
  }
  return "unknown object";
}

namespace detail {

void validate_name(std::string_view name) {
  if (name.empty()) {
    throw InvalidName("multiproc: a shared object's name must not be empty");
  }
  if (name.size() > max_name_length) {
    throw InvalidName("multiproc: name of " + std::to_string(name.size()) + " characters is longer than the " +
                      std::to_string(max_name_length) + " allowed");
  }
  for (const char c : name) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) == 0 && c != '.' && c != '_' && c != '-') {
      char shown[8];
      std::snprintf(shown, sizeof shown, std::isprint(byte) != 0 ? "'%c'" : "\\x%02x", byte);
      throw InvalidName("multiproc: name " + quoted(name) + " contains " + shown +
                        "; names use only letters, digits, '.', '_' and '-'");
    }
  }
}

std::string header_problem(const SegmentHeader& h, std::uint64_t actual) {
  if (h.magic != segment_magic) {
    if (h.magic == 0) {
      return "it is still being built, or its creator died while building it";
    }
    return h.magic == segment_abandoned ? "its creator failed while building it" : "it is not a multiproc object";
  }
  if (h.layout_version != segment_layout_version) {
    return "it has layout version " + std::to_string(h.layout_version) + ", this library reads version " +
           std::to_string(segment_layout_version);
  }
  if (h.mapped_bytes != actual) {
    return "its header says " + std::to_string(h.mapped_bytes) + " bytes but it has " + std::to_string(actual) +
           " (truncated or corrupt)";
  }
  std::uint64_t prefix_end = 0;
  std::uint64_t element_bytes = 0;
  std::uint64_t elements_end = 0;
  if (h.prefix_offset < sizeof(SegmentHeader) || __builtin_add_overflow(h.prefix_offset, h.prefix_bytes, &prefix_end) ||
      prefix_end > h.elements_offset || __builtin_mul_overflow(h.element_count, h.element_size, &element_bytes) ||
      __builtin_add_overflow(h.elements_offset, element_bytes, &elements_end) || elements_end > actual ||
      h.element_align == 0 || (h.element_align & (h.element_align - 1)) != 0 || h.elements_offset % h.element_align != 0) {
    return "its offsets or element count do not fit its size (corrupt)";
  }
  return {};
}

}  // namespace detail

std::string shm_file_name(std::string_view name) { return "multiproc." + std::string(name); }

bool unlink(std::string_view name) {
  detail::validate_name(name);
  return bip::shared_memory_object::remove(shm_file_name(name).c_str());
}

ScopedUnlink::~ScopedUnlink() {
  try {
    unlink(name_);
  } catch (...) {  // a malformed name was never created; nothing to remove
  }
}

Segment::Segment() noexcept = default;
Segment::Segment(Segment&&) noexcept = default;
Segment& Segment::operator=(Segment&&) noexcept = default;
Segment::~Segment() = default;

const SegmentHeader* Segment::header() const noexcept {
  return mapping_ ? static_cast<const SegmentHeader*>(mapping_->region.get_address()) : nullptr;
}

void Segment::adopt(std::unique_ptr<Mapping> mapping) {
  mapping_ = std::move(mapping);
  auto* base = static_cast<char*>(mapping_->region.get_address());
  const auto& h = *header();
  prefix_ = base + h.prefix_offset;
  elements_ = base + h.elements_offset;
  count_ = static_cast<std::size_t>(h.element_count);
}

Segment::Segment(const Layout& layout, const Initialiser& init) {
  const Placement p = place_or_throw(layout);
  auto mapping = std::make_unique<Mapping>(Mapping{bip::anonymous_shared_memory(p.total)});
  write_header(mapping->region.get_address(), layout, p);
  adopt(std::move(mapping));
  init(*this);
  publish(mapping_->region.get_address(), false);
}

Segment::Segment(create_t how, std::string_view name, const Layout& layout, const Initialiser& init) : name_(name) {
  detail::validate_name(name);
  const Placement p = place_or_throw(layout);
  const std::string file = shm_file_name(name);
  bip::shared_memory_object shm;
  try {
    shm = bip::shared_memory_object(bip::create_only, file.c_str(), bip::read_write,
                                    bip::permissions(static_cast<int>(how.permissions)));
  } catch (const bip::interprocess_exception& e) {
    rethrow_as_multiproc(e, name, "create");
  }
  // From here the name exists: any failure removes it again, so nothing half-built is left behind,
  // and marks the header so that an opener already waiting fails at once instead of timing out.
  try {
    std::unique_ptr<Mapping> mapping;
    try {
      shm.truncate(static_cast<bip::offset_t>(p.total));
      mapping = std::make_unique<Mapping>(Mapping{bip::mapped_region(shm, bip::read_write)});
    } catch (const bip::interprocess_exception& e) {
      rethrow_as_multiproc(e, name, "size");
    }
    write_header(mapping->region.get_address(), layout, p);
    adopt(std::move(mapping));
    init(*this);
  } catch (...) {
    if (mapping_) {
      detail::shared_atomic(magic_of(mapping_->region.get_address()))
          .store(segment_abandoned, std::memory_order_release);
      detail::futex_wake(&magic_of(mapping_->region.get_address()), INT_MAX);
      mapping_.reset();
    }
    bip::shared_memory_object::remove(file.c_str());
    throw;
  }
  publish(mapping_->region.get_address(), true);
}

Segment::Segment(open_t, std::string_view name, const Layout& layout) : name_(name) {
  detail::validate_name(name);
  const std::string file = shm_file_name(name);
  const auto deadline = detail::Clock::now() + initialisation_grace;
  try {
    bip::shared_memory_object shm(bip::open_only, file.c_str(), bip::read_write);
    // A size of 0 means the creator has not yet sized it: wait (briefly) for it to do so.
    bip::offset_t size = 0;
    for (auto pause = std::chrono::microseconds(50); shm.get_size(size) && size == 0; pause *= 2) {
      if (detail::Clock::now() >= deadline) {
        throw LayoutMismatch("multiproc: cannot open " + quoted(name) + ": it stayed empty (its creator died?)");
      }
      std::this_thread::sleep_for(std::min<std::chrono::microseconds>(pause, std::chrono::milliseconds(10)));
    }
    if (static_cast<std::size_t>(size) < sizeof(SegmentHeader)) {
      throw LayoutMismatch("multiproc: cannot open " + quoted(name) + ": " + std::to_string(size) +
                           " bytes is too small for a multiproc object");
    }
    auto mapping = std::make_unique<Mapping>(Mapping{bip::mapped_region(shm, bip::read_write)});
    auto& magic = magic_of(mapping->region.get_address());
    const auto published = detail::shared_atomic(magic);
    // Acquire pairs with the creator's release in publish(): the header and payload it wrote
    // before publishing are visible once we read segment_magic.
    while (published.load(std::memory_order_acquire) == 0) {
      if (!detail::futex_wait_until(&magic, 0, &deadline)) {
        throw LayoutMismatch("multiproc: cannot open " + quoted(name) +
                             ": its creator never finished building it (died?)");
      }
    }
    check_header(*static_cast<const SegmentHeader*>(mapping->region.get_address()), mapping->region.get_size(),
                 layout, name);
    adopt(std::move(mapping));
  } catch (const bip::interprocess_exception& e) {
    rethrow_as_multiproc(e, name, "open");
  }
}

Segment::Segment(const Where& where, const Layout& layout, const Initialiser& init) {
  switch (where.how) {
    case Where::How::anonymous: *this = Segment(layout, init); break;
    case Where::How::create: *this = Segment(create_t{where.permissions}, where.name, layout, init); break;
    case Where::How::open: *this = Segment(open, where.name, layout); break;
    case Where::How::open_or_create:
      *this = Segment(open_or_create_t{where.permissions}, where.name, layout, init);
      break;
  }
}

Segment::Segment(open_or_create_t how, std::string_view name, const Layout& layout, const Initialiser& init) {
  // Each round either creates the name or opens it; a round fails only when another process
  // removes the name between our two attempts, which a bounded number of retries outlasts.
  constexpr int rounds = 100;
  for (int round = 1;; ++round) {
    try {
      *this = Segment(create_t{how.permissions}, name, layout, init);
      return;
    } catch (const AlreadyExists&) {
    }
    try {
      *this = Segment(open, name, layout);
      if (count_ != layout.count) {
        throw LayoutMismatch("multiproc: cannot open " + quoted(name) + ": it holds " + std::to_string(count_) +
                             " elements, not " + std::to_string(layout.count));
      }
      return;
    } catch (const NotFound&) {
      if (round == rounds) {
        throw;
      }
    }
  }
}

}  // namespace multiproc

#include <multiproc/segment.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <system_error>

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <multiproc/detail/os/shared_layout.hpp>
#include <multiproc/error.hpp>

#include "os/demangle.hpp"
#include "shm/segment_checks.hpp"
#include "shm/segment_files.hpp"

namespace bip = boost::interprocess;

namespace multiproc {

using detail::allocate_pages;
using detail::building_file;
using detail::hold_shared;
using detail::link_name;
using detail::mebibytes;
using detail::path_of;
using detail::quoted;
using detail::throw_errno;

// A named segment: the open object and its mapping. The object's descriptor stays open as long as
// the mapping: it carries this process's shared flock (see segment.hpp). An anonymous segment: a
// memfd's pages, mapped (the descriptor is closed once mapped).
struct Segment::Mapping {
  bip::shared_memory_object object;  // named only
  bip::mapped_region region;         // named only
  void* anonymous = nullptr;
  std::size_t anonymous_bytes = 0;

  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (anonymous != nullptr) {
      ::munmap(anonymous, anonymous_bytes);
    }
  }
  [[nodiscard]] void* base() const noexcept { return anonymous != nullptr ? anonymous : region.get_address(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return anonymous != nullptr ? anonymous_bytes : region.get_size(); }
};

namespace {

constexpr std::size_t cache_line = 64;

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

// The creator's last step before the object gets its name: everything written before this release
// store is visible to any opener whose acquire load of `magic` reads segment_magic.
void publish(void* base) { detail::shared_atomic(magic_of(base)).store(segment_magic, std::memory_order_release); }

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


int descriptor_of(const bip::shared_memory_object& object) { return object.get_mapping_handle().handle; }

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
    case ObjectKind::joinable_queue: return "JoinableQueue";
    case ObjectKind::joinable_byte_queue: return "JoinableQueue (codec)";
    case ObjectKind::pipe: return "Pipe";
    case ObjectKind::shared_dict: return "SharedDict";
    case ObjectKind::shared_list: return "SharedList";
    case ObjectKind::pool_channels: return "Pool channels";
    case ObjectKind::spilled_message: return "Queue message (spilled)";
  }
  return "unknown object";
}

Segment::Segment() noexcept = default;
Segment::Segment(Segment&&) noexcept = default;
Segment& Segment::operator=(Segment&&) noexcept = default;
Segment::~Segment() = default;

const SegmentHeader* Segment::header() const noexcept {
  return mapping_ ? static_cast<const SegmentHeader*>(mapping_->base()) : nullptr;
}

const std::string& Segment::name_to_travel(std::string_view type) const {
  if (name_.empty()) {
    throw ValueError("multiproc: an anonymous " + std::string(type) +
                     " cannot be sent to another process: it is shared only with children forked after it "
                     "was made; create it with a name (multiproc::create, \"...\") and it travels by that name");
  }
  return name_;
}

void Segment::adopt(std::unique_ptr<Mapping> mapping) {
  mapping_ = std::move(mapping);
  auto* base = static_cast<char*>(mapping_->base());
  const auto& h = *header();
  prefix_ = base + h.prefix_offset;
  elements_ = base + h.elements_offset;
  count_ = static_cast<std::size_t>(h.element_count);
}

// Anonymous: a memfd (shmem, as /dev/shm is, but not limited by it), its pages allocated up front,
// mapped shared so that children forked later share it.
Segment::Segment(const Layout& layout, const Initialiser& init) {
  const Placement p = place_or_throw(layout);
  const std::string what = "multiproc: cannot make an anonymous " + std::string(kind_name(static_cast<std::uint32_t>(layout.kind)));
  const int fd = ::memfd_create("multiproc", MFD_CLOEXEC);
  if (fd < 0) {
    throw_errno(errno, what);
  }
  auto mapping = std::make_unique<Mapping>();
  try {
    if (::ftruncate(fd, static_cast<off_t>(p.total)) != 0) {
      throw_errno(errno == EINVAL ? EFBIG : errno, what + " of " + mebibytes(p.total));
    }
    if (layout.pages == Layout::Pages::up_front) {
      allocate_pages(fd, p.total, what, false);
    }
    void* base = ::mmap(nullptr, p.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
      throw_errno(errno, what + ": cannot map " + mebibytes(p.total));
    }
    mapping->anonymous = base;
    mapping->anonymous_bytes = p.total;
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  write_header(mapping->base(), layout, p);
  adopt(std::move(mapping));
  init(*this);
  publish(mapping_->base());
}

// Named, created: built whole in a file of its own, then given its name (see segment.hpp).
Segment::Segment(create_t how, std::string_view name, const Layout& layout, const Initialiser& init) : name_(name) {
  detail::validate_name(name);
  if ((how.permissions & ~0777u) != 0) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", how.permissions);
    throw ValueError("multiproc: cannot create " + quoted(name) + " with mode " + mode +
                     ": only permission bits (0 to 0777) are allowed, no setuid, setgid or sticky bit");
  }
  const Placement p = place_or_throw(layout);
  const std::string what = "multiproc: cannot create " + quoted(name);
  const std::string building = building_file();
  auto mapping = std::make_unique<Mapping>();
  try {
    mapping->object = bip::shared_memory_object(bip::create_only, building.c_str(), bip::read_write,
                                                bip::permissions(static_cast<int>(how.permissions)));
  } catch (const bip::interprocess_exception& e) {
    rethrow_as_multiproc(e, name, "create");
  }
  // From here, any failure removes the file: nothing half-built is left behind.
  try {
    const int fd = descriptor_of(mapping->object);
    hold_shared(fd, what);
    try {
      mapping->object.truncate(static_cast<bip::offset_t>(p.total));
      if (layout.pages == Layout::Pages::up_front) {
        allocate_pages(fd, p.total, what, true);
      }
      mapping->region = bip::mapped_region(mapping->object, bip::read_write);
    } catch (const bip::interprocess_exception& e) {
      rethrow_as_multiproc(e, name, "size");
    }
    write_header(mapping->base(), layout, p);
    adopt(std::move(mapping));
    init(*this);
    publish(mapping_->base());
    // The name appears now, on a complete object.
    link_name(building, shm_file_name(name), what);
  } catch (...) {
    mapping_.reset();
    ::unlink(path_of(building).c_str());
    throw;
  }
  ::unlink(path_of(building).c_str());
}

Segment::Segment(open_t, std::string_view name, const Layout& layout) : name_(name) {
  detail::validate_name(name);
  const std::string file = shm_file_name(name);
  const std::string what = "multiproc: cannot open " + quoted(name);
  auto mapping = std::make_unique<Mapping>();
  try {
    mapping->object = bip::shared_memory_object(bip::open_only, file.c_str(), bip::read_write);
    const int fd = descriptor_of(mapping->object);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      throw_errno(errno, what);
    }
    if (!S_ISREG(st.st_mode)) {
      throw LayoutMismatch(what + ": it is not a regular file (not a multiproc object)");
    }
    hold_shared(fd, what);
    // Removed between our open and our lock (by `multiproc gc`, which found it unused)?
    if (::fstat(fd, &st) != 0 || st.st_nlink == 0) {
      throw NotFound(what + ": it was removed as it was being opened");
    }
    const auto file_bytes = static_cast<std::uint64_t>(st.st_size);
    const char* leftover = ": it holds no object (a leftover whose creator died before finishing it; create it anew)";
    if (file_bytes == 0) {
      throw NotFound(what + leftover);
    }
    if (file_bytes < sizeof(SegmentHeader)) {
      throw LayoutMismatch(what + ": " + std::to_string(file_bytes) + " bytes, too small for a header (not a multiproc object)");
    }
    mapping->region = bip::mapped_region(mapping->object, bip::read_write);
    // acquire: pairs with the creator's release in publish(); names appear only on complete objects.
    const std::uint32_t magic = detail::shared_atomic(magic_of(mapping->base())).load(std::memory_order_acquire);
    if (detail::never_published(file_bytes, magic)) {
      throw NotFound(what + leftover);
    }
    check_header(*static_cast<const SegmentHeader*>(mapping->base()), mapping->bytes(), layout, name);
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
  // Each round either opens the name or creates it; a round fails only when another process
  // creates or removes the name between our two attempts, which a bounded number of rounds outlasts.
  constexpr int rounds = 100;
  for (int round = 1;; ++round) {
    try {
      *this = Segment(open, name, layout);
      if (count_ != layout.count) {
        throw LayoutMismatch("multiproc: cannot open " + quoted(name) + ": it holds " + std::to_string(count_) +
                             " elements, not " + std::to_string(layout.count));
      }
      return;
    } catch (const NotFound&) {
    }
    try {
      *this = Segment(create_t{how.permissions}, name, layout, init);
      return;
    } catch (const AlreadyExists&) {
      if (round == rounds) {
        throw;
      }
    }
  }
}

}  // namespace multiproc

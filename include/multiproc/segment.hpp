#pragma once
// Shared-memory segments: the bottom layer every shared object is built on.
//
// A segment is either anonymous (mmap MAP_SHARED|MAP_ANONYMOUS, shared with children forked after
// it was made) or named (a POSIX shared-memory object through Boost.Interprocess, reachable by any
// process that knows the name). Both start with the same SegmentHeader, followed by the payload:
//
//   [SegmentHeader][pad][prefix: prefix_bytes][pad][count elements of element.size bytes]
//
// The prefix holds per-object state (a Lock's mutex, a ring's indices); the elements hold the data.
// A named segment records the kind of object and the element type it was made for, so opening it
// as anything else throws LayoutMismatch instead of reinterpreting foreign bytes.
#include <cstddef>
#include <type_traits>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <variant>

#include <multiproc/export.hpp>
#include <multiproc/object_tags.hpp>

namespace multiproc {

// ---- Where an object lives: anonymous, or named and created or opened ------------------------

// One of the tags of object_tags.hpp with its name, or anonymous: what an object's constructors pass down, so that
// each kind of object builds its segment in one place.
struct Where {
  enum class How { anonymous, create, open, open_or_create };
  How how = How::anonymous;
  std::string_view name;
  unsigned permissions = 0600;

  Where() = default;
  Where(create_t c, std::string_view n) : how(How::create), name(n), permissions(c.permissions) {}
  Where(open_t, std::string_view n) : how(How::open), name(n) {}
  Where(open_or_create_t c, std::string_view n) : how(How::open_or_create), name(n), permissions(c.permissions) {}
};

// Removes a name; mappings already made stay valid until their owners go. Returns false when the
// name did not exist. Throws InvalidName for a malformed name.
MULTIPROC_API bool unlink(std::string_view name);

// Removes the name when it goes out of scope: for tests, and for the creator of a service's
// objects. Never throws.
class MULTIPROC_API ScopedUnlink {
 public:
  // A sink: the caller's string is moved in, not copied. (cppcheck's passedByValue misreads it.)
  // cppcheck-suppress passedByValue
  explicit ScopedUnlink(std::string name) noexcept : name_(std::move(name)) {}
  ScopedUnlink(const ScopedUnlink&) = delete;
  ScopedUnlink& operator=(const ScopedUnlink&) = delete;
  ~ScopedUnlink();

 private:
  std::string name_;
};

// The file under /dev/shm that holds a named object: "multiproc." + name. The prefix lets the
// library and its tools tell their own segments from other programs'.
MULTIPROC_API std::string shm_file_name(std::string_view name);

// Longest name accepted (the prefix and NAME_MAX leave room for this and more).
inline constexpr std::size_t max_name_length = 200;

// ---- Layout records ----------------------------------------------------------------------------

enum class ObjectKind : std::uint32_t {
  value = 1,
  raw_value = 2,
  array = 3,
  raw_array = 4,
  lock = 5,
  rlock = 6,
  semaphore = 7,
  bounded_semaphore = 8,
  event = 9,
  condition = 10,
  barrier = 11,
  spsc_ring = 12,
  mpmc_ring = 13,
  queue = 14,
  byte_queue = 15,
  pipe = 16,
  shared_dict = 17,
  shared_list = 18,
  pool_channels = 19,  // anonymous: a Pool's channels to its workers
  joinable_queue = 20,       // a JoinableQueue is not a Queue: neither opens the other
  joinable_byte_queue = 21,
  spilled_message = 22,  // one message too big for its codec queue's ring (detail/channel/spilled_message.hpp)
};

// "Queue", "Lock"... for a kind recorded in a header; "unknown object" for any other number.
MULTIPROC_API std::string_view kind_name(std::uint32_t kind) noexcept;

// What a named object records of the type it stores. Two programs agree on it when they were
// built with the same type definitions: the name hash is over the Itanium-ABI mangled name, which
// g++ and clang++ spell alike.
struct TypeFingerprint {
  std::uint64_t name_hash;
  std::uint32_t size;
  std::uint32_t align;
  const char* mangled_name;  // process-local; only its first bytes are copied into the header
};

namespace detail {
constexpr std::uint64_t fnv1a(std::string_view text) noexcept {
  std::uint64_t hash = 14695981039346656037ull;
  for (const char c : text) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return hash;
}
}  // namespace detail

template <class T>
TypeFingerprint fingerprint_of() noexcept {
  const char* name = typeid(T).name();
  return {detail::fnv1a(name), static_cast<std::uint32_t>(sizeof(T)),
          static_cast<std::uint32_t>(alignof(T)), name};
}

// The first bytes of every segment. Fixed layout, trivially copyable, so a tool can copy it out and
// read it without knowing the payload type.
//
// Writer: the creator, once, before publication (all fields but `magic`), then `magic` last with a
// release store. Readers: openers and tools, after an acquire load of `magic` returned
// segment_magic; from then on nothing in the header changes. Every size or offset read from here
// is checked against the mapping's real size before use: a hostile or corrupt segment yields
// LayoutMismatch, never an out-of-bounds access.
struct SegmentHeader {
  std::uint32_t magic;            // 0 while the creator builds it (under a temporary file: the name
                                  // appears only after segment_magic is stored); segment_abandoned
                                  // only in leftovers of older versions, whose creators built under
                                  // the name itself.
  std::uint32_t layout_version;   // segment_layout_version of the library that made it
  std::uint64_t mapped_bytes;     // total size the creator gave the segment
  std::uint32_t kind;             // ObjectKind
  std::uint32_t creator_pid;      // for `multiproc ls`; not trusted for anything else
  std::int64_t created_unix_ns;   // wall clock at creation, for `multiproc ls`
  std::uint64_t prefix_offset;    // from the segment start
  std::uint64_t prefix_bytes;
  std::uint64_t elements_offset;  // from the segment start
  std::uint64_t element_count;
  std::uint64_t element_name_hash;
  std::uint32_t element_size;
  std::uint32_t element_align;
  char element_name[64];          // mangled type name, NUL-terminated, possibly truncated
};
static_assert(std::is_trivially_copyable_v<SegmentHeader> && alignof(SegmentHeader) == 8 && sizeof(SegmentHeader) == 144);
static_assert(offsetof(SegmentHeader, magic) == 0 && offsetof(SegmentHeader, mapped_bytes) == 8 &&
              offsetof(SegmentHeader, prefix_offset) == 32 && offsetof(SegmentHeader, element_size) == 72 &&
              offsetof(SegmentHeader, element_name) == 80);

inline constexpr std::uint32_t segment_magic = 0x4d505347;      // "MPSG"
inline constexpr std::uint32_t segment_abandoned = 0x4d504142;  // "MPAB"
inline constexpr std::uint32_t segment_layout_version = 2;  // 2: LockState records its holder and depth

// One piece of a named object's live state, as `multiproc inspect` (inspect_segment in
// <multiproc/registry.hpp>) reports it; each kind of object says what its state is.
struct StateField {
  std::string key;  // e.g. "depth", "held_by_pid"
  std::variant<std::uint64_t, std::int64_t, double, bool, std::string> value;
};

// ---- Segment ------------------------------------------------------------------------------------

// One mapping of a segment. Owns the mapping (unmapped on destruction), never the name: a named
// segment lives until unlink(). Movable, not copyable. A default-constructed Segment maps nothing.
//
// A named segment appears whole: it is built under a temporary file name no user name can take,
// and gets its name only once complete (link(2), which fails if the name exists). So an opener
// never sees half an object, and a creator killed while building leaves no name behind.
// While a process maps a named segment it keeps the object's file open, holding a shared flock on
// it: the kernel's own record, across PID namespaces and containers, that the object is in use
// (`multiproc gc` removes only objects no process holds). Each named object a process maps costs
// it one file descriptor.
class MULTIPROC_API Segment {
 public:
  // What a shared object asks of its segment.
  struct Layout {
    ObjectKind kind;
    TypeFingerprint element;
    std::size_t prefix_bytes = 0;
    std::size_t prefix_align = 1;
    std::size_t count = 1;  // ignored by open; open_or_create requires the existing count to match
    // up_front: every page is allocated when the segment is made, so that a shortage of shared
    // memory is an error there and then, not a SIGBUS at the first write past it. on_touch: pages
    // come as they are first written (for memory the library itself fills a little at a time).
    enum class Pages { up_front, on_touch } pages = Pages::up_front;
  };
  // Builds the payload of a segment this call created, before any other process can see it.
  using Initialiser = std::function<void(Segment&)>;

  Segment() noexcept;
  Segment(const Layout& layout, const Initialiser& init);  // anonymous
  Segment(create_t how, std::string_view name, const Layout& layout, const Initialiser& init);
  Segment(open_t how, std::string_view name, const Layout& layout);
  Segment(open_or_create_t how, std::string_view name, const Layout& layout, const Initialiser& init);
  // Any of the above (the initialiser is unused by open).
  Segment(const Where& where, const Layout& layout, const Initialiser& init);
  Segment(Segment&&) noexcept;
  Segment& operator=(Segment&&) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  [[nodiscard]] void* prefix() const noexcept { return prefix_; }
  [[nodiscard]] void* elements() const noexcept { return elements_; }
  [[nodiscard]] std::size_t count() const noexcept { return count_; }
  // Empty for an anonymous segment.
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  // The name by which a handle of `type` (its class, for the message) travels to another process,
  // which opens it by that name (see codec.hpp). ValueError for an anonymous segment: only the
  // children forked after it can share it (Python: "should only be shared through inheritance").
  [[nodiscard]] const std::string& name_to_travel(std::string_view type) const;
  [[nodiscard]] const SegmentHeader* header() const noexcept;

 private:
  struct Mapping;
  void adopt(std::unique_ptr<Mapping> mapping);

  std::unique_ptr<Mapping> mapping_;
  std::string name_;
  void* prefix_ = nullptr;
  void* elements_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace multiproc

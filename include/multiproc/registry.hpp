#pragma once
// The named objects of this machine, as the library sees them: what `multiproc ls`, `inspect`,
// `rm` and `gc` are built on, and what a program may use to find segments leaked by a crash.
//
// The naming convention is the registry: every named object is the file /dev/shm/multiproc.<name>
// (shm_file_name), and begins with a SegmentHeader that records its kind, element type, creator
// and creation time. Nothing else is kept anywhere, so there is no registry to fall out of date
// when a process dies.
//
// Everything here only reads: segments are mapped read-only, nothing is locked, and the state an
// inspection reports is a snapshot that may already have changed when it is returned.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <sys/types.h>

#include <multiproc/export.hpp>
#include <multiproc/segment.hpp>

namespace multiproc {

// What the header of one named object says, read without knowing the object's type.
struct SegmentInfo {
  std::string name;            // as given to the library, without the "multiproc." prefix
  std::uint64_t file_bytes = 0;
  enum class Health {
    ok,           // a complete header, consistent with the file
    being_built,  // no header published yet: being created now, or its creator died doing so
    abandoned,    // its creator failed while building it (and could not remove it)
    corrupt,      // anything else: a foreign file with our prefix, a damaged or truncated header
  };
  Health health = Health::ok;
  // Empty when the header is a complete multiproc header consistent with the file's size;
  // otherwise why not ("still being created", "its creator failed while building it", "corrupt:
  // ..."), and only `name`, `file_bytes`, `creator_pid`, `created` and `mapped_by` are meaningful.
  std::string problem;
  std::uint32_t kind = 0;      // an ObjectKind
  // What the object holds, demangled: a Value's or Array's element type, a queue's or ring's
  // message type ("long"), "(serialised)" for a codec queue, empty for locks, events and the like.
  std::string type;
  std::uint32_t element_size = 0;
  std::uint64_t element_count = 0;
  pid_t creator_pid = 0;
  // The creator still runs. A process that merely reuses the creator's pid (started after the
  // object was created) does not count.
  bool creator_alive = false;
  std::chrono::system_clock::time_point created{};
  // Processes that map the object now, the caller included if it does, ascending: those whose /proc/<pid>/maps this process may read (all of
  // them for root; for other users, their own processes, which are the only ones that can open
  // the 0600 objects they made).
  std::vector<pid_t> mapped_by;
};

// Every file under /dev/shm with the "multiproc." prefix, sorted by name. Files that vanish
// while being read are left out.
MULTIPROC_API std::vector<SegmentInfo> list_segments();

// One named object. Throws InvalidName or NotFound.
MULTIPROC_API SegmentInfo describe_segment(std::string_view name);

// The live state of a named object, by kind: for a queue or ring its capacity, depth, whether it
// is closed and whether producers or consumers are asleep; for a lock whether it is held and by
// which thread id; for a semaphore or event its count or flag and sleepers; for a value or array
// its bytes in hex, and the values themselves when the element type is a built-in arithmetic
// type. Throws InvalidName, NotFound, or LayoutMismatch when the header is not usable.
MULTIPROC_API std::vector<StateField> inspect_segment(std::string_view name);

// Named objects that nobody can still be using: no process maps them, and either the creator is
// dead (complete or abandoned headers), or no header was published for 10 s (its creator died
// while creating it). Corrupt ones are left for an explicit unlink: they may not be ours. With a
// non-empty `name_prefix`, only names that start with it. `multiproc gc` removes these with
// unlink(); a process that opens one between this call and the unlink keeps its mapping, only the
// name goes.
MULTIPROC_API std::vector<SegmentInfo> find_leaked_segments(std::string_view name_prefix = {});

}  // namespace multiproc

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
  std::string name;            // as given to the library, without the "multiproc." prefix; empty for
                               // a temporary file of a creation (see `file`)
  std::string file;            // its file in /dev/shm: "multiproc.<name>", or "multiproc~building-..."
  std::uint64_t file_bytes = 0;
  enum class Health {
    ok,           // a complete header, consistent with the file
    being_built,  // the temporary file of a creation in progress, or of one whose creator died
    abandoned,    // a leftover that never became an object (written by an older library)
    corrupt,      // a foreign file with our prefix, a damaged or truncated header
    unreadable,   // cannot be opened or is not a regular file (another user's, a FIFO, a symlink)
  };
  Health health = Health::ok;
  // Empty when the header is a complete multiproc header consistent with the file's size;
  // otherwise why not ("permission denied", "a symbolic link, not a regular file", "corrupt: ..."),
  // and only `name`, `file`, `file_bytes`, `creator_pid`, `created`, `in_use` and `mapped_by` are
  // meaningful.
  std::string problem;
  std::uint32_t kind = 0;      // an ObjectKind
  // What the object holds, demangled: a Value's or Array's element type, a queue's or ring's
  // message type ("long"), "(serialised)" for a codec queue, empty for locks, events and the like.
  std::string type;
  std::uint32_t element_size = 0;
  std::uint64_t element_count = 0;
  pid_t creator_pid = 0;
  // The creator still runs. A process that merely reuses the creator's pid (started after the
  // object was created) does not count. Informational: pids of other PID namespaces are not seen.
  bool creator_alive = false;
  std::chrono::system_clock::time_point created{};
  // Some process on the machine holds the object (every process that maps it keeps its file open
  // with a shared flock): the kernel's own record, true across PID namespaces and containers.
  // False for an unreadable entry (it cannot be asked).
  bool in_use = false;
  // Processes that map the object now, the caller included if it does, ascending: those whose
  // /proc/<pid>/maps this process may read (all of them for root in this PID namespace; for other
  // users, their own processes).
  std::vector<pid_t> mapped_by;
};

// Every file under /dev/shm with the "multiproc." prefix (and the temporary files of creations),
// sorted by file name. One bad entry never stops the listing: what cannot be read is listed as
// unreadable, with the reason. Files that vanish while being read are left out.
MULTIPROC_API std::vector<SegmentInfo> list_segments();

// One named object. Throws InvalidName or NotFound.
MULTIPROC_API SegmentInfo describe_segment(std::string_view name);

// The live state of a named object, by kind: for a queue or ring its capacity, depth, whether it
// is closed and whether producers or consumers are asleep; for a lock whether it is held and by
// which thread id; for a semaphore or event its count or flag and sleepers; for a value or array
// its bytes in hex, and the values themselves when the element type is a built-in arithmetic
// type. Throws InvalidName, NotFound, or LayoutMismatch when the header is not usable.
MULTIPROC_API std::vector<StateField> inspect_segment(std::string_view name);

// Named objects that nobody can still be using: no process holds them (see `in_use`), and they
// are complete objects, temporary files of creations whose creator died, or leftovers that never
// became objects. A spilled queue message (a message too big for its queue's ring) whose queue is
// still in use and holds its reference is in flight, not leaked. Corrupt and unreadable entries are left for an explicit unlink: they may not be
// ours. With a non-empty `name_prefix`, only names (or temporary files) that start with it.
MULTIPROC_API std::vector<SegmentInfo> find_leaked_segments(std::string_view name_prefix = {});

// Removes the file of a leaked object, if it is still unused: the check and the removal are one
// step (under the exclusive flock), so an object opened meanwhile is never removed. False if it is
// in use now, or gone. `multiproc gc --force` is this over find_leaked_segments().
MULTIPROC_API bool remove_if_unused(const SegmentInfo& leaked);

}  // namespace multiproc
